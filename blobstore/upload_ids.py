"""Upload ids: 32 lowercase hex digits, random (unguessable: the id is the upload's only
capability besides push access to its repository)."""

from __future__ import annotations

import os
import re
from typing import Final

UPLOAD_ID: Final = re.compile(r"[0-9a-f]{32}")


def new_upload_id() -> str:
    # 128 random bits, as uuid4 (which spends most of its time making the UUID object).
    return os.urandom(16).hex()
