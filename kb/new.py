"""Writing a new entry skeleton that validates as it is."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from .loader import ID_PATTERN
from .problems import UsageError

KINDS = {"system": "systems", "organization": "organizations", "country": "countries",
         "place": "places", "event": "events", "source": "sources"}
NEEDS_SOURCE = {"system", "organization", "place", "event"}


def slugify(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def skeleton(kind: str, name: str, source: str | None, category: str, system: str | None,
             source_kinds: list[str] = ()) -> str:
    lines = [f"name: {_quote(name)}"]
    if kind == "system":
        lines += [f"category: {category}", "# origin: country-id", "# in_service: 1990", "# crew: 3",
                  "# combat_mass: 40 t", "# caliber: 125 mm", "# operators: [country-id]"]
    if kind == "source":
        lines += [f"title: {_quote(name)}", "# publisher: ...",
                  "# kind: " + " | ".join(source_kinds),
                  "# url: https://...", "# published: 2024-01-31"]
    if kind == "place":
        lines += ["# coordinates: [latitude, longitude]", "# country: country-id"]
    if kind == "event":
        lines += ["date: 2022", f"systems: [{system}]", "action: used", "# place: place-id", "# evidence: reported"]
    lines.append("# description: one to three factual sentences")
    if source:
        lines.append(f"sources: [{source}]")
    return "\n".join(lines) + "\n"


def _source_kinds(root: Path) -> list[str]:
    """The ids of the kinds of source, from the knowledge base's ontology (the scheme kbc:source-kinds)."""
    from .config import load_config
    from .namespaces import KBC
    from .schema import load_ontology, read_schema

    schema = read_schema(load_ontology(load_config(root).ontology_dir))
    return list(schema.concepts.get(KBC["source-kinds"], {}))


def new_entry(root: Path, kind: str, name: str, entry_id: str | None = None, source: str | None = None,
              category: str = "weapon-system", system: str | None = None) -> Path:
    if kind not in KINDS:
        raise UsageError(f"unknown kind `{kind}`: use one of {', '.join(KINDS)}")
    entry_id = entry_id or slugify(name)
    if not ID_PATTERN.match(entry_id):
        raise UsageError(f"`{entry_id}` is not a valid id: use lowercase letters, digits and hyphens (--id)")
    if kind in NEEDS_SOURCE and not source:
        raise UsageError(f"a {kind} must cite a source: pass --source SOURCE-ID "
                         f"(create one first with `kb new source \"Publisher, date\"`)")
    if kind == "event" and not system:
        raise UsageError("an event involves a system: pass --system SYSTEM-ID")
    existing = list((root / "entries").rglob(f"{entry_id}.yaml"))
    if existing:
        raise UsageError(f"id `{entry_id}` is taken by {existing[0].relative_to(root)}; choose another with --id")
    path = root / "entries" / KINDS[kind] / f"{entry_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as f:
        f.write(skeleton(kind, name, source, category, system, _source_kinds(root) if kind == "source" else []))
    return path
