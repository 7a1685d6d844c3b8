"""Names for containers run without `--name`, as docker gives them: ADJECTIVE_NOUN, from
lists of our own (docker's pairs an adjective with a scientist's surname)."""

from __future__ import annotations

import os

ADJECTIVES = (
    "amber", "brave", "calm", "clever", "crisp", "daring", "eager", "fancy", "gentle", "happy",
    "humble", "jolly", "keen", "lively", "lucid", "mellow", "nimble", "patient", "quiet",
    "rapid", "serene", "sharp", "steady", "sturdy", "swift", "tender", "tidy", "vivid",
    "witty", "zealous",
)  # fmt: skip
NOUNS = (
    "anchor", "bay", "beacon", "buoy", "cable", "cargo", "cove", "crane", "dock", "ferry",
    "galley", "harbor", "hull", "jetty", "keel", "lantern", "mast", "mooring", "oar", "pier",
    "quay", "rudder", "sail", "skiff", "tide", "tugboat", "wharf", "yard", "helm", "ballast",
)  # fmt: skip


def generate(attempt: int = 0) -> str:
    """A random name; after a clash (`attempt` > 0) with a digit appended, as docker does."""
    a, b = os.urandom(2)
    name = f"{ADJECTIVES[a % len(ADJECTIVES)]}_{NOUNS[b % len(NOUNS)]}"
    return f"{name}{os.urandom(1)[0] % 10}" if attempt else name
