"""runtime.restart: docker's restart policies, parsed and applied to an exit."""

from __future__ import annotations

import pytest

from runtime.restart import Restart, delay


def test_parse_accepts_dockers_syntax() -> None:
    assert Restart.parse("no") == Restart()
    assert Restart.parse("on-failure") == Restart("on-failure")
    assert Restart.parse("on-failure:3") == Restart("on-failure", 3)
    assert str(Restart.parse("on-failure:3")) == "on-failure:3"
    assert str(Restart.parse("unless-stopped")) == "unless-stopped"


@pytest.mark.parametrize("value", ["sometimes", "always:2", "on-failure:x", "on-failure:-1", ""])
def test_parse_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"restart policy|retry count"):
        Restart.parse(value)


def test_again() -> None:
    on_failure = Restart("on-failure", 2)
    assert [on_failure.again(1, n, stopped=False) for n in range(3)] == [True, True, False]
    assert not on_failure.again(0, 0, stopped=False)
    assert Restart("on-failure").again(1, 1000, stopped=False)
    assert Restart("always").again(0, 5, stopped=False)
    assert not Restart("always").again(0, 5, stopped=True)
    assert not Restart().again(1, 0, stopped=False)
    assert [delay(n) for n in (0, 1, 2)] == [0.1, 0.2, 0.4]
    assert delay(30) == 60.0
