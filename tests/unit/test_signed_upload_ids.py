"""Signed upload ids: only this registry's, for their repository, before they expire."""

from __future__ import annotations

import time

from blobstore.upload_ids import UPLOAD_ID
from registry.service.signed_upload_ids import SignedUploadIds

WEEK = 7 * 24 * 3600.0


def test_an_id_is_valid_for_its_repository_only() -> None:
    ids = SignedUploadIds(b"k" * 32, WEEK)
    upload_id = ids.new("team/app")
    assert UPLOAD_ID.fullmatch(upload_id)  # the blobstore's ingest id, as before
    assert ids.issued(upload_id, "team/app")
    assert not ids.issued(upload_id, "team/other")
    assert not ids.issued(upload_id, "team/app2")


def test_ids_differ_even_within_one_second() -> None:
    ids = SignedUploadIds(b"k" * 32, WEEK)
    now = time.time()
    made = {ids.new("r", now) for _ in range(1000)}
    assert len(made) == 1000


def test_made_up_tampered_and_foreign_ids_are_refused() -> None:
    ids = SignedUploadIds(b"k" * 32, WEEK)
    upload_id = ids.new("r")
    assert not ids.issued("0" * 32, "r")
    assert not ids.issued(upload_id[:-1], "r")
    assert not ids.issued(upload_id.upper(), "r")
    flipped = upload_id[:10] + ("0" if upload_id[10] != "0" else "1") + upload_id[11:]
    assert not ids.issued(flipped, "r")  # a byte of the random part
    assert not SignedUploadIds(b"other key" * 4, WEEK).issued(upload_id, "r")


def test_an_id_expires_after_the_age() -> None:
    ids = SignedUploadIds(b"k" * 32, 3600)
    issued = 1_800_000_000.0
    upload_id = ids.new("r", issued)
    assert ids.issued(upload_id, "r", issued + 3600)
    assert not ids.issued(upload_id, "r", issued + 3601)
    # Another replica whose clock is a little behind still takes it.
    assert ids.issued(upload_id, "r", issued - 30)
    assert not ids.issued(upload_id, "r", issued - 3600)
