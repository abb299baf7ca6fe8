"""Parsed entries kept in `.kb-cache/parsed.pickle`, so that a run re-parses only the files that changed.

An entry is reused when its file has the same path, size, modification time and content hash (BLAKE2b of
its bytes) as when it was parsed; everything else goes through `loader.load_entry` as usual. The cache
holds entries as parsed, before the checks across files (duplicate ids), which are made afresh each run.
It is signed with a key kept outside the knowledge base (see `_key`), so a planted cache file is ignored.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import os
import pickle
from pathlib import Path

from .loader import Entry, discover, load_entry, mark_duplicate_ids, read_entry_file
from .problems import Problem
from .schema import Schema

FORMAT = 1  # bump when the parser's output changes shape


def load_entries_cached(root: Path, schema: Schema, cache_dir: Path) -> tuple[list[Entry], list[Problem]]:
    """As `loader.load_entries`, reusing the entries of unchanged files from the previous run."""
    path = cache_dir / "parsed.pickle"
    try:
        saved = pickle.loads(_verified(path.read_bytes()))
        cached = saved["entries"] if saved.get("format") == (FORMAT, _code_stamp()) else {}
    except (OSError, ValueError, pickle.PickleError, EOFError, KeyError, AttributeError, ImportError, TypeError):
        cached = {}
    files, problems = discover(root / "entries", root, schema)
    entries: list[Entry] = []
    fresh: dict = {}
    changed = len(cached) != len(files)
    for file, entry_id, cls in files:
        rel = file.relative_to(root).as_posix()
        data, problem = read_entry_file(file, rel)
        if problem:  # still an entry, so that links to it are not reported as well
            entries.append(Entry(entry_id, cls, rel, problems=[problem]))
            changed = True
            continue
        key = (rel, entry_id, str(cls), len(data), hashlib.blake2b(data, digest_size=16).digest())
        entry = cached.get(key)
        if entry is None:
            entry = load_entry(rel, entry_id, cls, data)
            changed = True
        fresh[key] = entry
        entries.append(copy.copy(entry))  # the same parse, a problem list of its own
        entries[-1].problems = list(entry.problems)
    if changed:
        _save(path, fresh)
    mark_duplicate_ids(entries)
    return entries, problems


def _save(path: Path, entries: dict) -> None:
    from .files import write_atomically

    try:
        data = pickle.dumps({"format": (FORMAT, _code_stamp()), "entries": entries}, protocol=pickle.HIGHEST_PROTOCOL)
        write_atomically(path, _signature(data) + data)
    except (OSError, pickle.PickleError):
        pass  # a read-only root still works, only slower


# Unpickling runs code, and `.kb-cache/` sits inside the knowledge base, which may come from anyone (a clone,
# an archive). So the file is signed with a key of this user's, kept outside every knowledge base: a cache
# this user's milkb did not write is ignored, never unpickled.

def _key() -> bytes:
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


def _signature(data: bytes) -> bytes:
    return hmac.new(_key(), data, hashlib.sha256).digest()


def _verified(blob: bytes) -> bytes:
    """The pickle in `blob` if its signature is this user's; ValueError otherwise."""
    signature, data = blob[:32], blob[32:]
    if len(signature) != 32 or not hmac.compare_digest(signature, _signature(data)):
        raise ValueError("not written by this user's milkb")
    return data


def _code_stamp() -> str:
    """The loader's own file: a new parser version never reads an old cache."""
    from . import loader

    st = os.stat(loader.__file__)
    return f"{st.st_size}-{st.st_mtime_ns}"
