"""The UI in headless Chromium against a real `berth serve` (htpasswd auth) that docker
pushed to: browse to an image's layers, search, log in and out, delete a tag after the
confirmation, and be refused what the policy or a missing CSRF token forbids.

Users and rules are those of the auth end-to-end tests: alice may do everything under
authe2e/, puller may only pull there, anonymous may pull authe2e/public/*. Every page is
saved as a screenshot (the session prints where).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.auth.e2e_support import USERS, Docker, docker_for, get_token, write_config
from tests.support.browser import (
    browser,
    chromium,
    navigate,
    page_replaced,
    screenshot,
    screenshot_dir,
)
from tests.support.clients import run
from tests.support.server import RunningServer, start_berth

__all__ = ["browser", "chromium", "screenshot_dir"]  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

APP = "authe2e/web/app"
PUBLIC = "authe2e/public/tool"
OTHERS = ("authe2e/db/postgres", "authe2e/db/redis", "authe2e/web/frontend")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("ui-registry")
    config = write_config(base, {"ui": {"usage": {"interval": "1s"}}})
    running = start_berth(base / "data", extra_args=["--config", str(config)])
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback (most recent call last)" not in running.log(), running.log()[-5000:]


@pytest.fixture(scope="module")
def pushed(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A busybox image with a config worth showing, pushed by docker as alice to APP:1.0 and
    :2.0, PUBLIC:latest and OTHERS:1. Yields the local image name."""
    context = tmp_path_factory.mktemp("ui-image")
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "index.html").write_text("<h1>hello</h1>\n")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        "COPY index.html /srv/www/index.html\n"
        "ENV GREETING=hello PATH=/bin\n"
        "WORKDIR /srv/www\n"
        "EXPOSE 8080/tcp\n"
        'LABEL org.opencontainers.image.title="ui test image"\n'
        "USER 1000\n"
        'ENTRYPOINT ["/bin/busybox"]\n'
        'CMD ["httpd", "-f", "-p", "8080"]\n'
    )
    image = f"berth-ui-e2e/app:{uuid.uuid4().hex[:8]}"
    run(["docker", "build", "-q", "-t", image, str(context)], timeout=300)
    docker: Docker
    for docker in docker_for(tmp_path_factory.mktemp("ui-docker")):
        docker.login(server.host, "alice", USERS["alice"])
        refs = [f"{APP}:1.0", f"{APP}:2.0", f"{PUBLIC}:latest"] + [f"{r}:1" for r in OTHERS]
        for ref in refs:
            docker("push", docker.tag(image, f"{server.host}/{ref}"))
        yield image
    run(["docker", "rmi", "-f", image], check=False)


def api(
    server: RunningServer, path: str, user: str = "alice", scope: str = ""
) -> requests.Response:
    token = get_token(server.url, user, scope) if scope else get_token(server.url, user)
    return requests.get(
        f"{server.url}{path}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.docker.distribution.manifest.v2+json",
        },
        timeout=30,
    )


def tags_of(server: RunningServer, repo: str) -> list[str]:
    resp = api(server, f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["tags"])


def log_in(driver: webdriver.Chrome, server: RunningServer, user: str, password: str) -> None:
    driver.get(f"{server.url}/ui/")
    navigate(driver, driver.find_element(By.ID, "login-link"))
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    navigate(driver, driver.find_element(By.ID, "login-submit"))


def texts(driver: webdriver.Chrome, selector: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_browse_from_the_repository_list_to_the_layers(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    browser.get(f"{server.url}/ui/")
    assert texts(browser, "a.repo") == [PUBLIC]  # anonymous: only the public repository
    screenshot(browser, screenshot_dir, "repositories-anonymous")
    log_in(browser, server, "alice", USERS["alice"])
    assert texts(browser, "a.repo") == sorted([APP, PUBLIC, *OTHERS])
    screenshot(browser, screenshot_dir, "repositories")
    navigate(browser, browser.find_element(By.LINK_TEXT, APP))
    assert browser.find_element(By.TAG_NAME, "h1").text == APP
    assert texts(browser, "a.tag") == ["1.0", "2.0"]
    pull = browser.find_element(By.CSS_SELECTOR, ".pull input").get_attribute("value")
    assert pull == f"docker pull {server.host}/{APP}:1.0"
    screenshot(browser, screenshot_dir, "repository")
    navigate(browser, browser.find_element(By.LINK_TEXT, "1.0"))
    manifest = api(server, f"/v2/{APP}/manifests/1.0", scope=f"repository:{APP}:pull").json()
    layers = browser.find_elements(By.CSS_SELECTOR, "#layers tr.layer")
    assert len(layers) == len(manifest["layers"]) == 2
    for row, layer in zip(layers, manifest["layers"], strict=True):
        digest = row.find_element(By.TAG_NAME, "code").get_attribute("title")
        assert digest == layer["digest"]
        assert layer["mediaType"] in row.text
    config = browser.find_element(By.ID, "config").text
    for shown in ("/srv/www", "1000", "8080/tcp", "GREETING=hello", "ui test image", "httpd"):
        assert shown in config
    history = browser.find_element(By.ID, "history").text
    assert "WORKDIR /srv/www" in history
    assert "in /bin/busybox" in history  # the COPY that made the first layer
    screenshot(browser, screenshot_dir, "manifest")
    browser.find_element(By.CSS_SELECTOR, "#raw summary").click()
    assert '"schemaVersion": 2' in browser.find_element(By.CSS_SELECTOR, "#raw pre").text


def test_storage(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    log_in(browser, server, "admin", USERS["admin"])
    navigate(browser, browser.find_element(By.LINK_TEXT, "Storage"))
    for _ in range(60):  # the snapshot is recomputed every second in this server
        if "authe2e" in browser.find_element(By.ID, "namespaces").text:
            break
        time.sleep(0.5)
        browser.refresh()
    namespaces = browser.find_element(By.ID, "namespaces").text
    assert "authe2e 5" in namespaces  # five repositories, one image: its blobs counted once
    assert "1.1 MB" in browser.find_element(By.ID, "totals").text
    screenshot(browser, screenshot_dir, "storage")


def test_search(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    log_in(browser, server, "puller", USERS["puller"])
    box = browser.find_element(By.ID, "search")
    box.send_keys("db/")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "form.search button"))
    assert texts(browser, "a.repo") == ["authe2e/db/postgres", "authe2e/db/redis"]
    assert "q=db%2F" in browser.current_url
    screenshot(browser, screenshot_dir, "search")
    browser.get(f"{server.url}/ui/?q=nothing-like-this")
    assert texts(browser, "a.repo") == []
    assert "No repositories match" in browser.find_element(By.CLASS_NAME, "empty").text


def test_log_in_and_out(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    log_in(browser, server, "alice", "not-her-password")
    assert "Incorrect user name or password" in browser.find_element(By.ID, "login-error").text
    screenshot(browser, screenshot_dir, "login-failed")
    assert "not-her-password" not in browser.current_url
    browser.find_element(By.ID, "username").clear()
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(USERS["alice"])
    navigate(browser, browser.find_element(By.ID, "login-submit"))
    assert browser.find_element(By.ID, "current-user").text == "alice"
    assert USERS["alice"] not in browser.current_url
    navigate(browser, browser.find_element(By.ID, "logout"))
    assert browser.find_elements(By.ID, "current-user") == []
    assert browser.find_element(By.ID, "login-link").is_displayed()
    assert texts(browser, "a.repo") == [PUBLIC]
    assert USERS["alice"] not in server.log()


def test_user_without_delete_rights_sees_no_delete_button(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    log_in(browser, server, "puller", USERS["puller"])
    browser.get(f"{server.url}/ui/r/{APP}")
    assert "1.0" in texts(browser, "a.tag")
    assert browser.find_elements(By.CSS_SELECTOR, ".delete-tag") == []
    screenshot(browser, screenshot_dir, "repository-puller")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "a.tag"))
    assert browser.find_elements(By.ID, "delete-manifest") == []
    browser.get(f"{server.url}/ui/r/{APP}/-/tags/1.0/delete")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
    screenshot(browser, screenshot_dir, "forbidden")


def test_delete_a_tag_with_confirmation_and_refuse_a_forged_one(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    log_in(browser, server, "alice", USERS["alice"])
    browser.get(f"{server.url}/ui/r/{APP}")
    # A form another page could post: no CSRF token. Refused, and the tag stays.
    page = browser.find_element(By.TAG_NAME, "html")
    browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post';"
        "f.action = arguments[0]; document.body.appendChild(f); f.submit();",
        f"/ui/r/{APP}/-/tags/2.0/delete",
    )
    WebDriverWait(browser, 30).until(lambda _: page_replaced(page))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
    assert "did not come from this site" in browser.find_element(By.ID, "error-message").text
    screenshot(browser, screenshot_dir, "forged-delete-refused")
    assert "2.0" in tags_of(server, APP)
    browser.get(f"{server.url}/ui/r/{APP}")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-tag="2.0"]')
    navigate(browser, row.find_element(By.CSS_SELECTOR, ".delete-tag"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Delete tag 2.0?"
    screenshot(browser, screenshot_dir, "confirm-delete")
    navigate(browser, browser.find_element(By.ID, "confirm-delete"))
    assert browser.find_element(By.ID, "notice").text == "Deleted 2.0."
    assert texts(browser, "a.tag") == ["1.0"]
    assert tags_of(server, APP) == ["1.0"]
    gone = api(server, f"/v2/{APP}/manifests/2.0", scope=f"repository:{APP}:pull")
    assert gone.status_code == 404


def test_reading_works_with_javascript_off(
    browser: webdriver.Chrome, server: RunningServer, pushed: str, screenshot_dir: Path
) -> None:
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get(f"{server.url}/ui/")
        navigate(browser, browser.find_element(By.LINK_TEXT, PUBLIC))
        copy = browser.find_element(By.CSS_SELECTOR, ".pull .copy-button")
        assert not copy.is_displayed()  # the script shows copy buttons; the text is there
        command = browser.find_element(By.CSS_SELECTOR, ".pull input").get_attribute("value")
        assert command == f"docker pull {server.host}/{PUBLIC}:latest"
        navigate(browser, browser.find_element(By.LINK_TEXT, "latest"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#layers tr.layer")) == 2
        browser.find_element(By.CSS_SELECTOR, "#raw summary").click()  # <details>: no script
        assert '"layers"' in browser.find_element(By.CSS_SELECTOR, "#raw pre").text
        screenshot(browser, screenshot_dir, "manifest-without-javascript")
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_a_docker_pull_shows_as_last_pulled(
    browser: webdriver.Chrome,
    server: RunningServer,
    pushed: str,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    def last_pulled() -> str:
        row = browser.find_element(By.CSS_SELECTOR, 'tr[data-tag="latest"]')
        return str(row.find_elements(By.TAG_NAME, "td")[5].text)

    browser.get(f"{server.url}/ui/r/{PUBLIC}")
    assert last_pulled() == "never"
    config = tmp_path / "docker-config"
    config.mkdir()
    run(["docker", "pull", f"{server.host}/{PUBLIC}:latest"], env={"DOCKER_CONFIG": str(config)})
    for _ in range(40):  # pulls are written every few seconds, off the response path
        browser.refresh()
        if last_pulled() != "never":
            break
        time.sleep(0.5)
    assert last_pulled() == "just now"
    screenshot(browser, screenshot_dir, "repository-pulled")
