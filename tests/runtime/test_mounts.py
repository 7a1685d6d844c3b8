from pathlib import Path

import pytest

from runtime import Mount, overlay_mount, parse_options
from runtime.cgroups import parse_layout
from runtime.mounts import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    from_spec,
)
from runtime.overlay import PAGE_LIMIT, image_view, layer_links


def test_options_split_into_flags_propagation_and_data() -> None:
    flags, propagation, data = parse_options(
        ["nosuid", "noexec", "nodev", "ro", "mode=755", "size=65536k", "rprivate"]
    )
    assert flags == MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY
    assert propagation == MS_PRIVATE | MS_REC
    assert data == "mode=755,size=65536k"
    assert parse_options(["ro", "rw"])[0] == 0
    assert parse_options(["rbind"])[0] == MS_BIND | MS_REC


def test_spec_entry_to_mount() -> None:
    m = from_spec(
        {"destination": "/data", "type": "bind", "source": "/h", "options": ["rbind", "ro"]}
    )
    assert m == Mount("bind", "/h", "/data", MS_BIND | MS_REC | MS_RDONLY)
    assert m.is_bind
    assert m.readonly


def test_overlay_lists_the_top_layer_first() -> None:
    layers = [Path("/s/base"), Path("/s/mid"), Path("/s/top")]
    m = overlay_mount(layers, Path("/c/upper"), Path("/c/work"), Path("/c/rootfs"))
    assert m.type == "overlay"
    assert m.target == "/c/rootfs"
    assert m.cwd is None
    assert m.data == "lowerdir=/s/top:/s/mid:/s/base,upperdir=/c/upper,workdir=/c/work"


def test_long_layer_lists_go_relative_to_fit_one_page() -> None:
    root = "/var/lib/berth/snapshots/"
    layers = [Path(root + f"{i:064x}/fs") for i in range(45)]
    m = overlay_mount(
        layers,
        Path("/var/lib/berth/containers/c/upper"),
        Path("/var/lib/berth/containers/c/work"),
        Path("/r"),
    )
    assert m.cwd == "/var/lib/berth"
    assert len(m.data) <= PAGE_LIMIT
    assert m.data.startswith(f"lowerdir=snapshots/{44:064x}/fs:")
    assert m.data.endswith(",upperdir=containers/c/upper,workdir=containers/c/work")


def test_very_long_layer_lists_go_through_short_links() -> None:
    layers = [Path(f"/var/lib/berth/snapshots/{i:064x}/fs") for i in range(128)]
    c = Path("/var/lib/berth/containers/c")
    m = overlay_mount(layers, c / "upper", c / "work", Path("/r"), links=c / "l")
    assert m.cwd == str(c)
    assert m.data.startswith("lowerdir=l/7f:l/7e:")
    assert m.data.endswith(":l/0,upperdir=upper,workdir=work")
    assert layer_links(layers, c / "l")[10] == (c / "l" / "a", layers[10])


def test_too_many_layers_and_bad_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        overlay_mount([], Path("/u"), Path("/w"), Path("/r"))
    with pytest.raises(ValueError, match="do not fit"):
        overlay_mount([Path(f"/{i:0200x}") for i in range(40)], Path("/u"), Path("/w"), Path("/r"))
    with pytest.raises(ValueError, match="must not contain"):
        overlay_mount([Path("/a:b")], Path("/u"), Path("/w"), Path("/r"))


def test_image_view_is_read_only_nodev_nosuid_and_pads_one_layer() -> None:
    s = Path("/s")
    view = image_view([s / "a" / "fs", s / "b" / "fs"], Path("/m"), empty=s / ".e", links=s / "l")
    assert view.mount.flags == MS_RDONLY | MS_NODEV | MS_NOSUID
    assert view.mount.data == "lowerdir=/s/b/fs:/s/a/fs"
    assert view.links == ()
    one = image_view([s / "a" / "fs"], Path("/m"), empty=s / ".e", links=s / "l")
    assert one.mount.data == "lowerdir=/s/a/fs:/s/.e"


def test_image_view_of_many_layers_names_them_through_links() -> None:
    layers = [Path(f"/var/lib/berth/snapshots/{i:064x}/fs") for i in range(125)]
    links = Path("/var/lib/berth/.mount-x/l")
    view = image_view(layers, Path("/m"), empty=Path("/e"), links=links)
    assert view.mount.cwd == str(links)
    assert view.mount.data == "lowerdir=" + ":".join(format(i, "x") for i in reversed(range(125)))
    assert view.links[0] == (links / "0", layers[0])
    assert len(view.links) == 125
    with pytest.raises(ValueError, match="at most 500"):
        image_view([*layers] * 5, Path("/m"), empty=Path("/e"), links=links)


HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_cgroup_layouts() -> None:
    hybrid = parse_layout(HYBRID)
    assert hybrid.unified is None
    assert hybrid.v1["memory"] == "/sys/fs/cgroup/memory"
    assert hybrid.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert "systemd" not in hybrid.v1
    assert "name=systemd" not in hybrid.v1
    unified = parse_layout(UNIFIED)
    assert unified.unified == "/sys/fs/cgroup"
    assert not unified.v1
