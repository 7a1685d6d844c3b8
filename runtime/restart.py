"""Docker's restart policies, `--restart no|on-failure[:N]|always|unless-stopped`, as the
container monitor applies them when the container exits. With no daemon to come back up,
`always` and `unless-stopped` act alike: both end with `berth stop`, `rm -f` or the monitor."""

from __future__ import annotations

from typing import NamedTuple

POLICIES = ("no", "on-failure", "always", "unless-stopped")


class Restart(NamedTuple):
    policy: str = "no"
    max_retries: int = 0  # on-failure only; 0: no limit

    @classmethod
    def parse(cls, value: str) -> Restart:
        """From docker's syntax; raises ValueError."""
        policy, colon, count = value.partition(":")
        if policy not in POLICIES:
            raise ValueError(f"invalid restart policy {value!r}: use {', '.join(POLICIES)}")
        if not colon:
            return cls(policy)
        if policy != "on-failure":
            raise ValueError(f"maximum retry count cannot be used with restart policy {policy!r}")
        if not count.isdigit():
            raise ValueError(f"invalid maximum retry count {count!r}")
        return cls(policy, int(count))

    def __str__(self) -> str:
        return f"{self.policy}:{self.max_retries}" if self.max_retries else self.policy

    def again(self, exit_code: int, restarts: int, stopped: bool) -> bool:
        """Whether to start the container again after it exited with `exit_code`, having
        been restarted `restarts` times; never after `berth stop`."""
        if stopped or self.policy == "no":
            return False
        if self.policy == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restarts < self.max_retries)
        return True


def delay(restarts: int) -> float:
    """Docker's back-off between restarts: 100 ms, doubling, at most a minute."""
    return min(0.1 * 2.0**restarts, 60.0)
