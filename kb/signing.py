"""Signing the caches in `.kb-cache/` with a key of this user's.

Unpickling runs code, and `.kb-cache/` sits inside the knowledge base, which may come from anyone (a clone,
an archive). So a cache file is signed with a key kept outside every knowledge base: a cache this user's
milkb did not write is ignored, never unpickled (or, for `kb/uptodate.py`'s record, never believed).
Nothing heavy is imported here.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path


def key() -> bytes:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "milkb"
    path = base / "cache-key"
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        except FileExistsError:  # another milkb made it meanwhile
            pass
    return path.read_bytes()


def signature(data: bytes) -> bytes:
    return hmac.new(key(), data, hashlib.sha256).digest()


def signed(data: bytes) -> bytes:
    """`data` with its signature in front, as `verified` reads it."""
    return signature(data) + data


def verified(blob: bytes) -> bytes:
    """The data in `blob` if its signature is this user's; ValueError otherwise."""
    mark, data = blob[:32], blob[32:]
    if len(mark) != 32 or not hmac.compare_digest(mark, signature(data)):
        raise ValueError("not written by this user's milkb")
    return data
