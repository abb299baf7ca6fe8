"""A large cache kept as one signed head file and shard files beside it, so that a run that changed a few
of its items rewrites only the shards that hold them.

The parse cache (`parsed.pickle`) and the site state (`site-HASH.pickle`) hold one item per entry or page:
at 10,000 systems they are 40 and 120 MB, and pickling them again after one edit took longer than the
rest of the rebuild's writing. Here each item goes to one of `SHARDS` shards by a key its owner picks (an
entry's file, a page's entity), and a shard whose items are the very objects it was loaded with is not
written again: the new head names it as it stands.

- The head holds the cache's small or fast-changing parts, and the name and SHA-256 digest of each shard.
  It is signed with the user's key (kb/signing.py), so a planted head is ignored; a shard is
  read only if its digest is the one the signed head names, so a planted or damaged shard is too.
- A shard file's name holds its digest and is never rewritten in place: the head is replaced last (by
  rename), and a shard no head names any more is removed after that. A run cut off at any point leaves
  either the old head with its shards or the new one with its own.
- Any problem reading the head or one of its shards (missing, damaged, from another version) means no
  cache: the caller starts afresh, as without one.
- The head may also hold a *summary* of each shard, made by the owner's function from the shard's items when
  it is written (`save(summary=…)`): what a run needs of the items it does not load (kb/site/incremental.py
  keeps there what each page read, its files and each row's CSV line, so that a rebuild loads the shards of
  the pages a change touches, not all 256).
"""
from __future__ import annotations

import copyreg
import hashlib
import io
import os
import pickle
import zlib
from pathlib import Path

import rdflib
from rdflib import Literal, URIRef

from .namespaces import INTERNED

SHARDS = 256
_CORRUPT = (OSError, ValueError, pickle.PickleError, EOFError, KeyError, AttributeError, ImportError, TypeError,
            IndexError)


class Packed:
    """A value as a cache keeps it, pickled on its own and unpickled when first used (`open`), with an
    optional `plain` part at hand without that. A rebuild after one edit uses few of the 10,000 table rows
    the site state loads (each with its links, figures and rendered HTML: 0.18 s to unpickle them all at
    10,000 systems), and of most only the CSV line (`plain`); the parse cache's key lines are read only to
    report a problem."""

    __slots__ = ("data", "plain", "_value")
    _UNOPENED = object()
    UNREADABLE = object()  # what `open` gives if the bytes cannot be unpickled: the caller makes the value afresh

    def __init__(self, data, plain=None):
        self.data, self.plain, self._value = data, plain, Packed._UNOPENED

    @classmethod
    def of(cls, value, plain=None) -> "Packed":
        return cls(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), plain)

    @classmethod
    def later(cls, fetch, plain=None) -> "Packed":
        """A value whose bytes `fetch()` gives when first needed: an item of a shard not read yet, of which
        only `plain` (kept in the shard's summary) is at hand."""
        return cls(fetch, plain)

    def _bytes(self) -> bytes:
        if callable(self.data):
            self.data = self.data()
        return self.data

    def open(self):
        """The value; `Packed.UNREADABLE` if it cannot be unpickled, or fetched (as a shard that cannot be
        read is no cache)."""
        if self._value is Packed._UNOPENED:
            try:
                self._value = pickle.loads(self._bytes())
            except _CORRUPT:
                self._value = Packed.UNREADABLE
        return self._value

    def __reduce__(self):
        return Packed, (self._bytes(), self.plain)


def _digest(raw: bytes) -> bytes:
    """A shard's digest: SHA-256, which this machine's CPU computes three times as fast as BLAKE2b (SHA
    extensions): 0.1 s instead of 0.3 s for the 150 MB of a 10,000-system site state."""
    return hashlib.sha256(raw).digest()


def shard_of(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % SHARDS


_PRELOADED: dict = {}  # head path → (its identity, stamp, what `load` found): `preload`
TAKEN: list = []  # the head paths whose `load` took what `preload` found


def _identity(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def preload(path: Path, stamp) -> None:
    """Load the cache at `path` ahead of a `Shards(path).load(stamp)` to come in this process (kb serve's next
    rebuild process, waiting for a change: kb/site/rebuild.py). That load takes what this one found if the
    head file is still the very file read here (the same device, inode, size and modification time: `save`
    replaces it by a rename), and loads the cache itself otherwise. Once: a second load reads the files."""
    shards = Shards(path)
    try:
        before = _identity(path)
        if not _room_for(path):
            return
        found = shards.load(stamp)
        if found is not None and _identity(path) == before:
            _PRELOADED[path] = (before, stamp, (found, shards._loaded, shards._summaries))
    except OSError:
        pass


def preloaded_head(path: Path):
    """The head of the cache at `path` that `preload` found, if it found one (still to be taken by `load`)."""
    ahead = _PRELOADED.get(path)
    return ahead[2][0][0] if ahead is not None else None


def _room_for(path: Path) -> bool:
    """Whether the cache at `path`, loaded, fits in half the memory available now: a process waiting with it
    must not push the rest of the machine into swap, nor its container past its limit. Loaded, it is counted
    as 3 times its files' size (the caches of a 10,000-system knowledge base take 1.7 times); without
    /proc/meminfo, 1 GB is counted free."""
    size = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))
    try:
        with open("/proc/meminfo", "rb") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith(b"MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        available = 2**30
    left = _left_in_cgroup()
    if left is not None:
        available = min(available, left)
    return 3 * size <= available / 2


def _left_in_cgroup() -> int | None:
    """The memory the control group of this process (a container's) may still take, if it has a limit:
    cgroup v2 (`memory.max`) or v1 (`memory.limit_in_bytes`)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, group = line.split(":", 2)
        if not controllers:
            folder, limit, used = Path("/sys/fs/cgroup" + group), "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory" + group)
            limit, used = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        try:
            cap = (folder / limit).read_text().strip()
            if cap != "max" and int(cap) < 2**60:  # v1 writes "no limit" as about 2^63
                return int(cap) - int((folder / used).read_text())
        except (OSError, ValueError):
            continue
    return None


class Shards:
    """The items of one cache file: `load` returns them, `save` writes back those that changed."""

    def __init__(self, path: Path):
        self.path = path
        self._loaded: dict[int, tuple[str, bytes, dict]] = {}  # shard → (file name, digest, items as loaded)
        self._names: dict[int, tuple[str, bytes]] | None = None  # every shard's, after `load_head`
        self._head: tuple | None = None  # (stamp, head) read by `load_head`: `load` then reads only the shards
        self._summaries: dict[int, object] = {}  # shard → its summary (`save`), as the head names them

    def load(self, stamp) -> tuple[object, dict] | None:
        """(head, items) if saved under `stamp` and intact, else None. The head is unpickled only if its
        stamp matches, so a cache of another version costs one small read."""
        from .signing import verified

        found = self._preloaded(stamp)
        if found is not None:
            return found
        if self._head is not None and self._head[0] == stamp:  # the rest, after `load_head`
            try:
                items: dict = {}
                for shard in self._names:
                    items.update(self.shard(shard))
                return self._head[1], items
            except _CORRUPT:
                self._loaded = {}
                return None
        self._loaded = {}
        try:
            data = io.BytesIO(verified(self.path.read_bytes()))
            if pickle.load(data) != (stamp, rdflib.__version__):  # its terms are pickled by value (below)
                return None
            head, names, self._summaries = pickle.load(data)
            self._names = names
            items: dict = {}
            for shard, (name, digest) in names.items():
                raw = (self.path.parent / name).read_bytes()
                if _digest(raw) != digest:
                    raise ValueError(f"shard {name} is not the one the head names")
                part = pickle.loads(raw)
                self._loaded[shard] = (name, digest, part)
                items.update(part)
            return head, items
        except _CORRUPT:
            self._loaded = {}
            return None

    def _preloaded(self, stamp) -> tuple | None:
        """What `preload` found, if it is still the cache on disk (then `_loaded` is what it loaded)."""
        ahead = _PRELOADED.pop(self.path, None)
        if ahead is not None and ahead[1] == stamp:
            try:
                if _identity(self.path) == ahead[0]:
                    found, self._loaded, self._summaries = ahead[2]
                    self._names = {shard: loaded[:2] for shard, loaded in self._loaded.items()}
                    TAKEN.append(self.path)
                    return found
            except OSError:
                pass
        return None

    def load_head(self, stamp):
        """Only the head, if saved under `stamp` and intact (else None); then `shard` reads the shards one by
        one, and `update` writes back the ones changed. A run that changed a few entries reads a few shards."""
        from .signing import verified

        found = self._preloaded(stamp)
        if found is not None:
            self._head = (stamp, found[0])
            return found[0]
        self._loaded, self._names, self._head = {}, None, None
        try:
            data = io.BytesIO(verified(self.path.read_bytes()))
            if pickle.load(data) != (stamp, rdflib.__version__):
                return None
            head, self._names, self._summaries = pickle.load(data)
            self._head = (stamp, head)
            return head
        except _CORRUPT:
            return None

    def names(self) -> set[int]:
        """After `load` or `load_head`: the numbers of the shards the head names."""
        return set(self._names or ())

    def summaries(self) -> dict[int, object]:
        """After `load` or `load_head`: the summary of each shard, as `save` made it (none without a `summary`)."""
        return self._summaries

    def complete(self) -> bool:
        """After `load_head`: whether every shard it names is there (a stat each, not a read)."""
        try:
            return all((self.path.parent / name).stat().st_size > 0 for name, _ in self._names.values())
        except OSError:
            return False

    def shard(self, number: int) -> dict:
        """The items of shard `number` after `load_head` (none if it has none); raises ValueError (or
        another `_CORRUPT` error) if it is not the shard the head names."""
        loaded = self._loaded.get(number)
        if loaded is None:
            found = self._names.get(number)
            if found is None:
                return {}
            name, digest = found
            raw = (self.path.parent / name).read_bytes()
            if _digest(raw) != digest:
                raise ValueError(f"shard {name} is not the one the head names")
            loaded = self._loaded[number] = (name, digest, pickle.loads(raw))
        return loaded[2]

    def update(self, stamp, head, put: dict, drop: set, shard_key, summary=None) -> None:
        """After `load_head`: keep `head`, with the items `put` in (by `shard_key`, as `save`) and those in `drop`
        out; the shards they are in are written again, the others stay as the head named them (with their
        summaries)."""
        touched = {shard_of(shard_key(key)) for key in (*put, *drop)}
        items = {}
        for number in touched:
            items.update(self.shard(number))
        for key in drop:
            items.pop(key, None)
        items.update(put)
        names = {n: found for n, found in self._names.items() if n not in touched}
        self._write(stamp, head, items, shard_key, names, summary)

    def save(self, stamp, head, items: dict, shard_key, summary=None) -> None:
        """Keep `head` and `items`, each item in the shard `shard_key(key)` picks, and `summary(items of a
        shard)` of each shard in the head. Raises OSError or PickleError (the caller decides whether a cache
        that cannot be written matters)."""
        self._write(stamp, head, items, shard_key, {}, summary)

    def _write(self, stamp, head, items: dict, shard_key, names: dict, summary) -> None:
        """`save`, the shards in `names` kept as they are."""
        from .files import write_atomically
        from .signing import signed

        groups: dict[int, dict] = {}
        for key, value in items.items():
            groups.setdefault(shard_of(shard_key(key)), {})[key] = value
        names = dict(names)
        summaries = {n: self._summaries[n] for n in names if n in self._summaries} if summary is not None else {}
        for shard, part in groups.items():
            loaded = self._loaded.get(shard)
            if loaded is not None and _same(loaded[2], part):
                names[shard] = loaded[:2]
            else:
                raw = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
                digest = _digest(raw)
                name = f"{self.path.name}.{shard:03d}.{digest.hex()}"
                write_atomically(self.path.parent / name, raw, durable=False)
                names[shard] = (name, digest)
            if summary is not None:
                kept = self._summaries.get(shard) if loaded is not None and names[shard] == loaded[:2] else None
                summaries[shard] = kept if kept is not None else summary(part)
        data = (pickle.dumps((stamp, rdflib.__version__), protocol=pickle.HIGHEST_PROTOCOL)
                + pickle.dumps((head, names, summaries), protocol=pickle.HIGHEST_PROTOCOL))
        write_atomically(self.path, signed(data), durable=False)  # (torn by a crash: its signature fails)
        self._loaded = {shard: (*names[shard], groups[shard]) for shard in groups}
        self._names, self._head, self._summaries = names, None, summaries
        named = {name for name, _ in names.values()}
        for old in self.path.parent.glob(f"{self.path.name}.*"):
            if old.name not in named:
                old.unlink(missing_ok=True)


def _same(loaded: dict, now: dict) -> bool:
    """Whether a shard holds the very objects it was loaded with (kept references: no id is reused)."""
    return len(loaded) == len(now) and all(now.get(key, _same) is value for key, value in loaded.items())


# rdflib's terms pickled by value: unpickling them through their constructors checks and converts every IRI
# and literal again (0.8 s for the parse cache at 10,000 systems; 0.27 s this way). They were checked when
# made, a cache is read only when its signed head names it, and only by the rdflib version that wrote it.
# An IRI is read back as the one object of `namespaces.INTERNED` however many times it occurs (a predicate,
# a linked entity): 0.2 s less at 10,000 systems when the graph is loaded.
def _uriref(value: str) -> URIRef:
    term = INTERNED.get(value)
    if term is None:
        term = INTERNED[value] = str.__new__(URIRef, value)
    return term


def _literal(lexical: str, language, datatype, value, ill_typed) -> Literal:
    literal = str.__new__(Literal, lexical)
    literal._language, literal._datatype, literal._value, literal._ill_typed = language, datatype, value, ill_typed
    return literal


copyreg.pickle(URIRef, lambda term: (_uriref, (str(term),)))
copyreg.pickle(Literal, lambda term: (_literal, (str(term), term._language, term._datatype, term._value,
                                                  term._ill_typed)))
