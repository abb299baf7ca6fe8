"""The validated graph kept as an on-disk Oxigraph store in `.kb-cache/store`, reused while nothing it was
built from has changed, so that `kb query` answers in a fresh process without reading any entry.

The store is trusted only under the fingerprint it was saved with: the path, size and modification time
of every entry, ontology file and `kb.toml`, and the cache format. Any change, even a touched file, means
the next command loads and checks the entries as usual and saves a new store. Only a knowledge base
without errors is saved, so a cached answer never hides a broken entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .config import Config

FORMAT = "1"  # bump when the graph a given set of entries maps to changes


def fingerprint(config: Config) -> str:
    """A hash of (path, size, mtime) of everything the graph is built from."""
    found = []
    for folder in (config.entries_dir, config.ontology_dir):
        _stat_files(str(folder), found)
    try:
        st = (config.root / "kb.toml").stat()
        found.append(("kb.toml", st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    found.sort()
    return hashlib.sha256(f"milkb-store {FORMAT}\n{found!r}".encode("utf-8", "surrogateescape")).hexdigest()


def _stat_files(folder: str, found: list) -> None:
    """Add (path, size, mtime) of every entry or ontology file under `folder` to `found`. At 10,000 entries
    this is one stat call each, 45 ms, most of a warm `kb query`: keep it lean."""
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.endswith((".yaml", ".yml", ".ttl")):
                        st = e.stat()
                        found.append((e.path, st.st_size, st.st_mtime_ns))
        except OSError:
            continue


def _paths(config: Config) -> tuple[Path, Path]:
    return config.cache_dir / "store", config.cache_dir / "store.json"


def open_cached(config: Config, print_: str | None = None, *, lookups: bool = False):
    """(the saved store read-only, its prefixes) if saved under today's fingerprint; with `lookups`, also
    its ids and names (what `kb show` matches against; `kb query` does not read them)."""
    folder, meta = _paths(config)
    try:
        saved = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("fingerprint") != (print_ or fingerprint(config)) or not folder.is_dir():
        return None
    import pyoxigraph as ox

    try:
        found = (ox.Store.read_only(str(folder)), saved["prefixes"])
        if lookups:
            found += (json.loads(folder.with_name("store-lookups.json").read_text(encoding="utf-8")),)
        return found
    except (OSError, KeyError, ValueError):
        return None


def raw_query(store, text: str, origin: str, prefixes: dict[str, str], substitutions=None):
    """Oxigraph's own answer to `text`; a syntax error is a KBError at `origin:line`, worded by rdflib's
    parser where it can (it names the column and the token), else by Oxigraph's."""
    from .problems import KBError, Problem

    try:
        return store.query(text, prefixes=prefixes, substitutions=substitutions or None)
    except SyntaxError as e:
        from rdflib import Graph

        from .query import run_query

        run_query(Graph(), text, origin, base_iri=prefixes.get("id"))
        head = str(e).removeprefix("error at ").split(":", 1)[0]
        raise KBError([Problem(origin, int(head) if head.isdigit() else 1, f"SPARQL syntax error: {e}", "query-syntax")])
    except OSError as e:
        raise KBError([Problem(origin, 1, f"SPARQL evaluation error: {e}", "query-error")])


def save(config: Config, kb, print_: str) -> None:
    """Write the graph of `kb` as the store for fingerprint `print_` (a new folder, then swapped in), with
    the ids and names `kb show` matches against. Best effort: a read-only root only means the next command
    loads the entries again."""
    import pyoxigraph as ox

    from .export import graph_lines
    from .files import write_atomically

    folder, meta = _paths(config)
    fresh = folder.with_name(f"store.new-{os.getpid()}")
    try:
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(fresh, ignore_errors=True)
        store = ox.Store(str(fresh))  # Oxigraph reads the lines itself: no Python object per triple
        text = "\n".join(graph_lines(kb.mapped, kb.schema.ontology, kb.index))
        store.bulk_load(input=text.encode("utf-8"), format=ox.RdfFormat.TURTLE)
        store.flush()
        del store
        meta.unlink(missing_ok=True)  # no fingerprint names a store while the folders move
        old = folder.with_name(f"store.old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(fresh, folder)
        shutil.rmtree(old, ignore_errors=True)
        lookups = {"ids": sorted(kb.entity_ids), "names": [(str(s), kind, text) for s, kind, text in kb.names]}
        write_atomically(folder.with_name("store-lookups.json"), json.dumps(lookups, ensure_ascii=False))
        from .namespaces import PREFIXES

        prefixes = dict({k: str(v) for k, v in PREFIXES.items()}, id=config.base_iri)
        write_atomically(meta, json.dumps({"fingerprint": print_, "format": FORMAT, "prefixes": prefixes}))
    except OSError:
        shutil.rmtree(fresh, ignore_errors=True)
