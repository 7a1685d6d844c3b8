import pytest

from runtime import OptionError, RunOptions, Volume, parse_cpus, parse_memory, parse_volume
from runtime.network.ports import PortMapping


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("64mb", 64 << 20),
        ("64MiB", 64 << 20),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("7000k", 7000 << 10),
        ("10485760", 10 << 20),
        ("2t", 2 << 40),
    ],
)
def test_memory_sizes_as_docker_reads_them(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "m", "-1m", "12x", "1.2.3m", "64 mbb"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(OptionError):
        parse_memory(text)


def test_memory_below_docker_minimum_is_refused() -> None:
    with pytest.raises(OptionError, match="6MB"):
        parse_memory("4m")


def test_cpus_become_quota_over_a_100ms_period() -> None:
    assert parse_cpus("0.5") == (50_000, 100_000)
    assert parse_cpus("2") == (200_000, 100_000)
    for bad in ("0", "abc", "-1"):
        with pytest.raises(OptionError):
            parse_cpus(bad)


def test_volumes() -> None:
    assert parse_volume("/a:/b") == Volume("/a", "/b", False)
    assert parse_volume("/a:/b:ro") == Volume("/a", "/b", True)
    assert parse_volume("/a:/b:rw") == Volume("/a", "/b", False)
    for bad in ("/a", "a:/b", "/a:b", "/a:/b:zz", "/a:/", ":/b"):
        with pytest.raises(OptionError):
            parse_volume(bad)


def test_run_options_refuse_bad_networks_and_zero_pids() -> None:
    assert RunOptions(network="bridge").network == "bridge"  # bridge networks: runtime.network
    for bad in ("container:web", "bad/name", "-x", ""):
        with pytest.raises(OptionError):
            RunOptions(network=bad)
    with pytest.raises(OptionError, match="-p needs a bridge network"):
        RunOptions(network="none", publish=(PortMapping(80),))
    with pytest.raises(OptionError):
        RunOptions(pids_limit=0)
