import runtime


def test_public_api_is_pinned() -> None:
    assert sorted(runtime.__all__) == sorted([
        "RUNTIMES", "create", "start", "remove", "kill", "make_spec", "write_bundle", "StartError",
        "Container", "ContainerNotFound", "ContainerState", "ContainerStore", "is_running",
        "finished", "NameInUse", "stop", "detach",
        "RunOptions", "Volume", "OptionError", "parse_memory", "parse_cpus", "parse_volume",
        "parse_env", "ExecUser", "UserError", "resolve_user", "build_spec", "command_line",
        "environment", "Mount", "parse_options", "overlay_mount", "mount_image", "unmount",
    ])  # fmt: skip
    for name in runtime.__all__:
        assert hasattr(runtime, name), name
