"""Headless Chromium for browser tests: one browser per test session, driven by Selenium.

Debian's `chromium` and `chromium-driver` (no browser download). The browser may reach only
loopback: every other host goes to a proxy at 127.0.0.1:1, which refuses. `screenshot()`
saves the whole page as a PNG under `screenshot_dir` ($BERTH_SCREENSHOTS, or a session tmp
dir), which the session prints.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1280


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("BERTH_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is missing (scripts/test-env.sh installs chromium-driver)")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},900",
        # Loopback is reached directly (`<-loopback>` would send it to the proxy too).
        "--proxy-server=127.0.0.1:1",
        "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> webdriver.Chrome:
    """The session's browser with no cookies (so nobody is logged in), at a blank page."""
    chromium.get("about:blank")
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return chromium


def navigate(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or submit button and wait until the next page has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(lambda _: page_replaced(page))
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def page_replaced(page: WebElement) -> bool:
    """`staleness_of`, also when chromedriver, asked mid-navigation, reports the old page's
    node as not belonging to the document (an "unknown error", not a stale reference)."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False


def screenshot(driver: webdriver.Chrome, directory: Path, name: str) -> Path:
    """Save the whole page (the window is stretched to its height) as `<name>.png`."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(max(int(height), 600), 8000))
    path = directory / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 900)
    return path
