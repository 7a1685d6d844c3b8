"""Chain IDs, as the OCI image spec and containerd compute them.

ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
Two images with the same base layers have the same chain IDs, so they share snapshots.
"""

from __future__ import annotations

from blobstore import Digest


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """The chain ID of every prefix of `diff_ids`, base layer first."""
    chain: list[Digest] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            chain.append(Digest.of(f"{chain[-1]} {diff_id}".encode()))
    return chain
