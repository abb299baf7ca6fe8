"""Finding the knowledge-base root (the folder holding kb.toml) and reading its settings."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .problems import KBError, Problem, UsageError

CONFIG_FILE = "kb.toml"


@dataclass(frozen=True)
class Config:
    root: Path
    title: str = "milkb"
    base_iri: str = "https://w3id.org/milkb/id/"
    dataset_iri: str = "https://w3id.org/milkb/dataset"
    base_url: str = ""
    license: str = ""
    license_name: str = ""
    version: str = ""
    sparql_endpoint: str = ""  # when set, the site's query page runs queries there in an editor

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def queries_dir(self) -> Path:
        return self.root / "queries"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".kb-cache"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` that holds kb.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise UsageError(f"no {CONFIG_FILE} found in {here} or any folder above it; "
                     "run kb inside a knowledge base or pass --root DIR")


def load_config(root: Path) -> Config:
    path = root / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{root} is not a knowledge base: it has no {CONFIG_FILE}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise KBError([Problem(CONFIG_FILE, getattr(e, "lineno", 1) or 1, f"invalid TOML: {e}")])
    known = {f for f in Config.__dataclass_fields__ if f != "root"}
    problems = [Problem(CONFIG_FILE, 1, f"unknown setting `{k}`", "unknown-setting")
                for k in data if k not in known]
    problems += [Problem(CONFIG_FILE, 1, f"setting `{k}` must be a string", "wrong-type")
                 for k in known if k in data and not isinstance(data[k], str)]
    if problems:
        raise KBError(problems)
    return Config(root=root, **{k: v for k, v in data.items() if k in known})
