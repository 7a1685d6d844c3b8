"""Bridge networks and published ports: `berth run -p`, `berth network create/ls/inspect/rm`,
containers reaching each other by name, beside docker doing the same on a user network
(dockerd here has no default bridge). Subnets are free /24s of 198.18.0.0/15: Berth's from
198.19.128.0/17, docker's from 198.18.128.0/17. Every bridge, veth and namespace a test makes
is removed, and checked gone, even when it fails."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import Berth, Images, sh
from tests.support.server import berth_executable, free_port
from tests.support.subnets import BERTH_POOL, DOCKER_POOL, free_subnet

pytestmark = pytest.mark.e2e

PAGE = "hello from the container\n"
WEB = f"mkdir -p /www && echo '{PAGE.strip()}' > /www/index.html && exec httpd -f -p 80 -h /www"


def fetch(url: str, attempts: int = 100) -> str:
    """GET `url`, retrying (by count) while the server in the container is starting."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _shape(ports: str) -> set[str]:
    """`docker ps`'s PORTS with the host ports left out: `0.0.0.0:*->81/tcp`, ..."""
    return {re.sub(r":\d+->", ":*->", p) for p in ports.split(", ")}


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
    except OSError:
        return False
    return True


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def namespaces() -> set[str]:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def _json(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


class BerthNetworks:
    """Networks and containers one test makes, all removed by `cleanup`."""

    def __init__(self, berth: Berth) -> None:
        self.berth = berth
        self.networks: list[str] = []
        self.containers: list[str] = []
        self.env = {**os.environ, "BERTH_BRIDGE_SUBNET": free_subnet(BERTH_POOL)}

    def create(self, *flags: str) -> tuple[str, str, str]:
        """(name, id, subnet) of a new user network."""
        name = f"berthnet-{uuid.uuid4().hex[:8]}"
        subnet = free_subnet(BERTH_POOL)
        made = self.berth.cli("network", "create", "--subnet", subnet, *flags, name)
        assert made.returncode == 0, made.stderr
        self.networks.append(name)
        return name, made.stdout.strip(), subnet

    def run_d(self, runtime: str, *args: str) -> str:
        started = self.berth.run(runtime, "-d", *args, env=self.env)
        assert started.returncode == 0, started.stderr
        cid = str(started.stdout).strip()
        self.containers.append(cid)
        return cid

    def inspect(self, ref: str) -> dict[str, Any]:
        return _json(self.berth.cli("inspect", ref))[0]

    def cleanup(self) -> None:
        for cid in self.containers:
            self.berth.cli("rm", "-f", cid)
        for name in [*self.networks, "bridge"]:
            self.berth.cli("network", "rm", name)
        leftovers = {f"berth-{cid}" for cid in self.containers} & namespaces()
        veths = {f"veth{cid[:11]}" for cid in self.containers} & links()
        for ns in leftovers:  # only after a failure above; then fail the test too
            sh("ip", "netns", "delete", ns, check=False)
        for veth in veths:
            sh("ip", "link", "delete", veth, check=False)
        assert not leftovers, leftovers
        assert not veths, veths


@pytest.fixture
def nets(berth: Berth) -> Iterator[BerthNetworks]:
    made = BerthNetworks(berth)
    before = {n for n in links() if n.startswith("br-")}
    try:
        yield made
    finally:
        made.cleanup()
        bridges = {n for n in links() if n.startswith("br-")} - before
        ours = {f"br-{json.loads(p.read_text())['id'][:12]}" for p in _network_files(berth)}
        assert not bridges & ours, bridges


def _network_files(berth: Berth) -> list[Path]:
    d = berth.root / "networks"
    return list(d.glob("*.json")) if d.is_dir() else []


class DockerNetwork:
    def __init__(self) -> None:
        self.name = f"berthrt-net-{uuid.uuid4().hex[:8]}"
        self.subnet = free_subnet(DOCKER_POOL)
        self.containers: list[str] = []
        sh("docker", "network", "create", "--subnet", self.subnet, self.name)

    def run_d(self, *args: str) -> str:
        cid = sh("docker", "run", "-d", "--network", self.name, *args).stdout.strip()
        self.containers.append(cid)
        return cid

    def cleanup(self) -> None:
        if self.containers:
            sh("docker", "rm", "-f", *self.containers, check=False)
        sh("docker", "network", "rm", self.name, check=False)


@pytest.fixture
def docker_net() -> Iterator[DockerNetwork]:
    net = DockerNetwork()
    try:
        yield net
    finally:
        net.cleanup()


def test_published_port_answers_from_the_host_as_with_docker(
    berth: Berth,
    registry_images: Images,
    runtime: str,
    nets: BerthNetworks,
    docker_net: DockerNetwork,
) -> None:
    network, _, subnet = nets.create()
    port = free_port()
    name = f"web-{uuid.uuid4().hex[:8]}"
    cid = nets.run_d(
        runtime, "--name", name, "--network", network, "-p", f"127.0.0.1:{port}:80",
        "-p", "81", registry_images.base, "sh", "-c", WEB,
    )  # fmt: skip
    assert fetch(f"http://127.0.0.1:{port}/") == PAGE
    row = next(line for line in berth.cli("ps").stdout.splitlines() if line.startswith(cid[:12]))
    ports = re.split(r" {3,}", row)[5]
    any_port = ports.split(", ")[1].split(":")[1].split("-")[0]  # -p 81: a free one, v4 and v6
    v6 = ["::"] if _has_ipv6() else []  # without IPv6, -p 81 listens on 0.0.0.0 alone
    assert set(ports.split(", ")) == {
        f"127.0.0.1:{port}->80/tcp", f"0.0.0.0:{any_port}->81/tcp",
        *(f"[::]:{any_port}->81/tcp" for _ in v6),
    }  # fmt: skip
    settings = nets.inspect(name)["NetworkSettings"]
    assert settings["Ports"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}],
        "81/tcp": [{"HostIp": ip, "HostPort": any_port} for ip in ["0.0.0.0", *v6]],
    }
    endpoint = settings["Networks"][network]
    assert ipaddress.ip_address(endpoint["IPAddress"]) in ipaddress.ip_network(subnet)
    listed = berth.cli("port", name)
    assert set(listed.stdout.splitlines()) == {
        f"80/tcp -> 127.0.0.1:{port}", f"81/tcp -> 0.0.0.0:{any_port}",
        *(f"81/tcp -> [::]:{any_port}" for _ in v6),
    }  # fmt: skip
    assert berth.cli("port", name, "80").stdout == f"127.0.0.1:{port}\n"
    assert settings["IPAddress"] == ""  # as docker: top-level fields are the default bridge's

    dport = free_port()
    did = docker_net.run_d(
        "-p", f"127.0.0.1:{dport}:80", "-p", "81", registry_images.base, "sh", "-c", WEB
    )  # fmt: skip
    assert fetch(f"http://127.0.0.1:{dport}/") == PAGE
    docker_ports = sh("docker", "ps", "--filter", f"id={did}", "--format", "{{.Ports}}").stdout
    assert f"127.0.0.1:{dport}->80/tcp" in docker_ports
    assert _shape(docker_ports.strip()) == _shape(ports)
    docker_port = sh("docker", "port", did).stdout.splitlines()
    assert {re.sub(r":\d+$", ":*", p) for p in docker_port} == {
        re.sub(r":\d+$", ":*", p) for p in listed.stdout.splitlines()
    }
    assert sh("docker", "port", did, "80").stdout == f"127.0.0.1:{dport}\n"
    docker_settings = json.loads(sh("docker", "inspect", did).stdout)[0]["NetworkSettings"]
    assert docker_settings["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dport)}]
    # dockerd 20.10 may pick another free port for :: than for 0.0.0.0; Berth takes the same
    assert [b["HostIp"] for b in docker_settings["Ports"]["81/tcp"]] == ["0.0.0.0", *v6]
    assert docker_settings["IPAddress"] == ""
    assert set(endpoint) <= set(docker_settings["Networks"][docker_net.name])

    assert berth.cli("rm", "-f", cid).returncode == 0
    assert refused(port)
    assert f"berth-{cid}" not in namespaces()
    assert f"veth{cid[:11]}" not in links()


def test_containers_on_a_user_network_reach_each_other_by_name(
    berth: Berth,
    registry_images: Images,
    runtime: str,
    nets: BerthNetworks,
    docker_net: DockerNetwork,
) -> None:
    network, _, _ = nets.create()
    web = f"web-{uuid.uuid4().hex[:8]}"
    nets.run_d(runtime, "--name", web, "--network", network, registry_images.base, "sh", "-c", WEB)
    client = f"for i in $(seq 50); do wget -qO- http://{web}/ && exit; sleep 0.1; done; exit 1"
    ours = berth.run(
        runtime, "--rm", "--network", network, registry_images.base, "sh", "-c", client
    )
    assert (ours.returncode, ours.stdout) == (0, PAGE), ours.stderr

    docker_net.run_d("--name", web, registry_images.base, "sh", "-c", WEB)
    theirs = sh(
        "docker", "run", "--rm", "--network", docker_net.name, registry_images.base,
        "sh", "-c", client, check=False,
    )  # fmt: skip
    assert (theirs.returncode, theirs.stdout) == (0, PAGE), theirs.stderr


def test_network_create_ls_inspect_rm_as_docker(
    berth: Berth, registry_images: Images, nets: BerthNetworks, docker_net: DockerNetwork
) -> None:
    network, nid, subnet = nets.create()
    assert len(nid) == 64
    ls = berth.cli("network", "ls")
    assert ls.stdout.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [nid[:12], network, "bridge", "local"] in [
        line.split() for line in ls.stdout.splitlines()
    ]
    docker_ls = sh("docker", "network", "ls").stdout.splitlines()[0]
    assert ls.stdout.splitlines()[0].split() == docker_ls.split()

    ours = _json(berth.cli("network", "inspect", network))[0]
    theirs = json.loads(sh("docker", "network", "inspect", docker_net.name).stdout)[0]
    assert set(ours) == set(theirs)
    assert set(ours["IPAM"]) == set(theirs["IPAM"])
    gateway = str(next(ipaddress.ip_network(subnet).hosts()))
    assert ours["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
    assert (ours["Name"], ours["Id"], ours["Driver"], ours["Containers"]) == (
        network, nid, "bridge", {}
    )  # fmt: skip
    bridge = ours["Options"]["com.docker.network.bridge.name"]
    assert bridge in links()

    # with a container on it: listed in both, as docker lists it; rm refuses
    cid = nets.run_d("berth", "--network", network, registry_images.base, "sleep", "60")
    docker_net.run_d(registry_images.base, "sleep", "60")
    ours = _json(berth.cli("network", "inspect", network))[0]
    theirs = json.loads(sh("docker", "network", "inspect", docker_net.name).stdout)[0]
    (entry,) = ours["Containers"].values()
    (docker_entry,) = theirs["Containers"].values()
    assert set(entry) == set(docker_entry)
    assert list(ours["Containers"]) == [cid]
    assert entry["IPv4Address"] == f"{ipaddress.ip_network(subnet)[2]}/24"
    refused_rm = berth.cli("network", "rm", network)
    assert refused_rm.returncode == 1
    assert "has active endpoints" in refused_rm.stderr

    # bad input: one line, nothing made
    again = berth.cli("network", "create", "--subnet", subnet, network)
    assert (again.returncode, again.stderr.count("\n")) == (1, 1)
    assert "already exists" in again.stderr
    overlap = berth.cli("network", "create", "--subnet", subnet, f"{network}-2")
    assert overlap.returncode == 1
    assert "overlaps" in overlap.stderr
    bad = berth.cli("network", "create", "--subnet", "198.19.0.1/24", f"{network}-3")
    assert bad.returncode == 1
    assert "invalid subnet" in bad.stderr
    missing = berth.run("berth", "--rm", "--network", "nosuchnet", registry_images.base, "true")
    assert missing.returncode == 125
    assert "network nosuchnet not found" in missing.stderr

    assert berth.cli("rm", "-f", cid).returncode == 0
    removed = berth.cli("network", "rm", network)
    assert (removed.returncode, removed.stdout) == (0, f"{network}\n")
    assert bridge not in links()
    gone = berth.cli("network", "inspect", network)
    assert gone.returncode == 1
    assert gone.stdout.strip() == "[]"


def test_addresses_are_released_at_rm_and_reclaimed_from_a_killed_monitor(
    berth: Berth, registry_images: Images, nets: BerthNetworks
) -> None:
    network, _, subnet = nets.create()
    hosts = ipaddress.ip_network(subnet)
    first = nets.run_d("berth", "--network", network, registry_images.base, "sleep", "60")
    second = nets.run_d("berth", "--network", network, registry_images.base, "sleep", "60")

    def address(cid: str) -> str:
        return str(nets.inspect(cid)["NetworkSettings"]["Networks"][network]["IPAddress"])

    assert (address(first), address(second)) == (str(hosts[2]), str(hosts[3]))
    assert berth.cli("rm", "-f", first).returncode == 0
    assert f"veth{first[:11]}" not in links()
    third = nets.run_d("berth", "--network", network, registry_images.base, "sleep", "60")
    assert address(third) == str(hosts[2])  # the lowest free one: first's, released

    # SIGKILL the monitor's whole process group: nothing cleans up, the container dies with
    # it; the next start on the network reclaims the address and deletes the devices
    monitor = json.loads((berth.root / "containers" / third / "state.json").read_text())
    os.killpg(os.getpgid(monitor["monitor_pid"]), signal.SIGKILL)
    for _ in range(100):
        if "Dead" in berth.cli("ps", "-a").stdout:
            break
        time.sleep(0.1)
    assert f"veth{third[:11]}" in links()  # left behind
    fourth = nets.run_d("berth", "--network", network, registry_images.base, "sleep", "60")
    assert address(fourth) == str(hosts[2])
    assert f"veth{third[:11]}" not in links()
    assert f"berth-{third}" not in namespaces()


def test_publish_alone_uses_the_default_bridge(
    berth: Berth, registry_images: Images, nets: BerthNetworks
) -> None:
    port = free_port()
    cid = nets.run_d("berth", "-p", f"127.0.0.1:{port}:80", registry_images.base, "sh", "-c", WEB)
    assert fetch(f"http://127.0.0.1:{port}/") == PAGE
    settings = nets.inspect(cid)["NetworkSettings"]
    subnet = ipaddress.ip_network(nets.env["BERTH_BRIDGE_SUBNET"])
    assert ipaddress.ip_address(settings["IPAddress"]) in subnet  # top-level, as docker's bridge
    assert list(settings["Networks"]) == ["bridge"]
    assert nets.inspect(cid)["HostConfig"]["NetworkMode"] == "bridge"

    taken = berth.run(
        "berth", "--rm", "-p", f"127.0.0.1:{port}:80", registry_images.base, "true", env=nets.env
    )
    assert taken.returncode == 125
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in taken.stderr
    none = berth.run("berth", "--rm", "--network", "none", "-p", "80", registry_images.base, "true")
    assert none.returncode == 125
    assert "-p needs a bridge network" in none.stderr


def test_nat_is_opt_in_and_its_rule_goes_with_the_network(
    berth: Berth, nets: BerthNetworks
) -> None:
    """Only the rule is checked: no test sends traffic off this machine."""
    plain, _, _ = nets.create()
    masqueraded, nid, subnet = nets.create("--nat")

    def rules() -> str:
        return str(sh("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout)

    ours = [line for line in rules().splitlines() if f"berth:{nid[:12]}" in line]
    assert ours == [
        f'-A POSTROUTING -s {subnet} ! -o br-{nid[:12]} -m comment --comment "berth:{nid[:12]}" '
        "-j MASQUERADE"
    ]
    options = _json(berth.cli("network", "inspect", masqueraded, plain))
    assert [o["Options"]["com.docker.network.bridge.enable_ip_masquerade"] for o in options] == [
        "true", "false"
    ]  # fmt: skip
    assert berth.cli("network", "rm", masqueraded).returncode == 0
    assert f"berth:{nid[:12]}" not in rules()


def test_concurrent_starts_get_distinct_addresses(
    berth: Berth, registry_images: Images, nets: BerthNetworks
) -> None:
    """Six `run -d` at once on one network: the lock hands each its own address."""
    network, _, subnet = nets.create()
    argv = [
        berth_executable(), "run", "-d", "--root", str(berth.root), "--network", network,
        registry_images.base, "sleep", "60",
    ]  # fmt: skip
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        nets.containers.append(out.strip())
    inspected = _json(berth.cli("network", "inspect", network))[0]["Containers"]
    assert sorted(inspected) == sorted(nets.containers)
    addresses = {c["IPv4Address"] for c in inspected.values()}
    hosts = ipaddress.ip_network(subnet)
    assert addresses == {f"{hosts[i]}/24" for i in range(2, 8)}
    # and each one's /etc/hosts names the five others, whichever wrote it last
    for cid in nets.containers:
        seen = sh(berth_executable(), "exec", "--root", str(berth.root), cid, "cat", "/etc/hosts")
        lines = [line.split() for line in seen.stdout.splitlines() if line.startswith("198.")]
        assert len(lines) == 6  # itself and five peers
        assert {other[:12] for other in nets.containers} <= {n for line in lines for n in line}


def test_a_peer_started_later_is_found_by_name(
    berth: Berth, registry_images: Images, runtime: str, nets: BerthNetworks
) -> None:
    """The waiting container's /etc/hosts gains the newcomer while it runs."""
    network, _, _ = nets.create()
    late = f"late-{uuid.uuid4().hex[:8]}"
    poll = f"for i in $(seq 300); do wget -qO- http://{late}/ && exit 0; sleep 0.1; done; exit 1"
    waiter = nets.run_d(runtime, "--network", network, registry_images.base, "sh", "-c", poll)
    nets.run_d(runtime, "--name", late, "--network", network, registry_images.base, "sh", "-c", WEB)
    waited = berth.cli("wait", waiter)
    assert waited.stdout == "0\n", berth.cli("logs", waiter).stderr
    assert berth.cli("logs", waiter).stdout == PAGE


def test_prune_removes_the_unused_networks(
    berth: Berth, registry_images: Images, nets: BerthNetworks
) -> None:
    used, _, _ = nets.create()
    unused, _, _ = nets.create()
    nets.run_d("berth", "--network", used, registry_images.base, "sleep", "60")
    asked = sh(berth_executable(), "network", "prune", "--root", str(berth.root), input="n\n")
    assert "Are you sure you want to continue? [y/N]" in asked.stdout
    names = [n["Name"] for n in _json(berth.cli("network", "inspect", used, unused))]
    assert names == [used, unused]
    pruned = berth.cli("network", "prune", "-f")
    assert (pruned.returncode, pruned.stdout) == (0, f"Deleted Networks:\n{unused}\n")
    assert berth.cli("network", "inspect", unused).returncode == 1
    assert _json(berth.cli("network", "inspect", used))[0]["Name"] == used


def test_a_fixed_address_with_ip(
    berth: Berth, registry_images: Images, nets: BerthNetworks, docker_net: DockerNetwork
) -> None:
    network, _, subnet = nets.create()
    hosts = ipaddress.ip_network(subnet)
    fixed = str(hosts[100])
    cid = nets.run_d(
        "berth", "--network", network, "--ip", fixed, registry_images.base, "sleep", "60"
    )
    assert nets.inspect(cid)["NetworkSettings"]["Networks"][network]["IPAddress"] == fixed
    again = berth.run(
        "berth", "--rm", "--network", network, "--ip", fixed, registry_images.base, "true"
    )
    assert again.returncode == 125
    assert f"Address already in use: {fixed}" in again.stderr
    outside = berth.run(
        "berth", "--rm", "--network", network, "--ip", "198.19.127.9", registry_images.base, "true"
    )
    assert outside.returncode == 125
    assert f"198.19.127.9 is not a free host address of {subnet}" in outside.stderr
    default = berth.run("berth", "--rm", "--ip", fixed, registry_images.base, "true")
    assert default.returncode == 125
    assert "--ip is supported only on user networks" in default.stderr
    # docker keeps the address the same way
    dfixed = str(ipaddress.ip_network(docker_net.subnet)[100])
    did = docker_net.run_d("--ip", dfixed, registry_images.base, "sleep", "60")
    networks = json.loads(sh("docker", "inspect", did).stdout)[0]["NetworkSettings"]["Networks"]
    assert networks[docker_net.name]["IPAddress"] == dfixed
