"""Hostile content is inert: entries full of `<script>`, HTML, Markdown link tricks and template syntax build
a site whose pages carry none of it as markup (checked in the HTML, then in Chromium: no script from an entry
runs, no link has a scheme but http(s)); dangerous URLs, invisible direction controls, ids that try path
traversal and symbolic links are refused with `path:line: message`, and nothing is written anywhere; and text
typed into `kb show` and `kb search` never reaches SPARQL."""
from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from kb.cli import app

from .conftest import REPO, make_root, require_chromium, run_kb, search_results
from .site_helpers import parse
from .test_site_browser import _QuietHandler

PWN = "window.__pwned"  # what every script an entry tries to run would set
HOSTILE = {  # all valid entries: the site is built from them
    "systems/hostile-script.yaml": f"""\
name: "<script>{PWN} = 'name'; alert('name')</script>"
aliases:
  - "<img src=x onerror=\\"{PWN}='alias'\\">"
  - {{label: "\\"><svg onload=alert('alias')>", lang: ru}}
category: main-battle-tank
origin: hostile-country
in_service: 1990
description: |
  Raw HTML: <script>{PWN} = 'description'</script> <img src=x onerror="{PWN}='img'">
  <iframe src="javascript:{PWN}='iframe'"></iframe> <a href="javascript:{PWN}='a'">a</a>
  <svg><script>{PWN}='svg'</script></svg> <math><mi xlink:href="javascript:{PWN}='math'">m</mi></math>

  Links: [plain](javascript:{PWN}='md1') [case](JaVaScRiPt:{PWN}='md2') [entity](&#106;avascript:{PWN}='md3')
  [named entity](javascript&colon;{PWN}='md4') [tab](java&#x09;script:{PWN}='md5')
  [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [data image](data:image/png;base64,AAAA)
  [svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+) [vb](vbscript:msgbox(1)) [file](file:///etc/passwd)
  [mail](mailto:someone@example.org) <javascript:{PWN}='autolink'> <https://example.org/ok>
  [reference][evil] ![image](javascript:{PWN}='image') [title](https://example.org/ "x\\" onclick=\\"{PWN}='title'")

  [evil]: javascript:{PWN}='reference'

  Templates: {{{{ 7 * 7 }}}} {{% raw %}} ${{7*7}} <%= 7*7 %> </script><script>{PWN}='breakout'</script> <!-- ]]> -->
combat_mass:
  - {{value: 46 t, source: hostile-source, preferred: true, note: "<b onmouseover=alert('note')>note</b>"}}
  - {{value: 44 t, source: hostile-source}}
sources: [hostile-source]
""",
    "systems/hostile-variant.yaml": f"""\
name: "</text><script>{PWN}='svg tree'</script>"
category: main-battle-tank
variant_of: hostile-script
in_service: 1995
sources: [hostile-source]
""",
    "sources/hostile-source.yaml": f"""\
name: "Source \\"><script>{PWN}='source'</script>"
title: "<script>{PWN}='title'</script>"
publisher: "<img src=x onerror={PWN}='publisher'>"
url: "https://example.org/\\"><script>{PWN}='url'</script>"
archive_url: "https://example.org/?q=javascript:{PWN}='archive'"
""",
    "countries/hostile-country.yaml": """\
name: "{{ 7*7 }} ${7*7} <% 7*7 %> {{ config }}"
aliases:
  - {label: "مصر", lang: ar}
sources: [hostile-source]
""",
    "organizations/hostile-org.yaml": """\
name: "<style>body { display: none }</style><base href='https://example.org/'>"
country: hostile-country
sources: [hostile-source]
""",
    "places/hostile-place.yaml": f"""\
name: "<a href='javascript:{PWN}=1'>place</a>"
country: hostile-country
coordinates: [48.5, 38.0]
sources: [hostile-source]
""",
    "events/hostile-event.yaml": f"""\
name: "</script><script>{PWN}='event'</script>"
date: 2022-11-04
place: hostile-place
systems: [hostile-script]
actor: hostile-country
action: used
sources: [hostile-source]
""",
}
NAME = f"<script>{PWN} = 'name'; alert('name')</script>"
INJECTED_TAGS = {"iframe", "img", "math", "style", "base", "object", "embed", "frame", "audio", "video", "template"}


def hostile_root(tmp_path: Path) -> Path:
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    for name, text in HOSTILE.items():
        (root / "entries" / name).write_text(text, encoding="utf-8")
    return root


def listing(folder: Path, skip: Path) -> dict[str, int]:
    """Every file under `folder` but `skip` and the conversion cache, with its size."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and skip not in p.parents and ".kb-cache" not in p.parts}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    root = hostile_root(tmp)
    out = tmp / "site"
    before = listing(tmp, out)
    result = run_kb("build", "-o", str(out), cwd=root)  # with the search index: searched in the browser below
    assert result.code == 0, result.stderr
    assert listing(tmp, out) == before  # nothing written outside the output folder
    return out


def as_browser_reads(url: str) -> str:
    """The scheme part as a browser sees it: leading controls and spaces, tabs and line breaks dropped."""
    return re.sub(r"^[\x00-\x20]+|[\t\n\r]", "", url)


def test_the_hostile_entries_are_valid(tmp_path):
    result = run_kb("validate", cwd=hostile_root(tmp_path))
    assert result.code == 0, result.stderr


def test_no_page_carries_markup_or_a_link_from_an_entry(built):
    pages = sorted(built.rglob("*.html"))
    assert len(pages) > 50
    for page in pages:
        parsed = parse(page)
        for tag, attrs in parsed.tags:
            assert not [a for a in attrs if a.startswith("on")], (page, tag, attrs)
            assert tag not in INJECTED_TAGS, (page, tag, attrs)
            for name in ("href", "src", "action", "formaction", "xlink:href"):
                if attrs.get(name) is not None:
                    assert urlsplit(as_browser_reads(attrs[name])).scheme in ("", "http", "https"), (page, attrs[name])
            if tag == "script":
                src = attrs.get("src")
                assert src is None and attrs.get("type") in ("application/ld+json", "application/json") or \
                    src and not urlsplit(src).scheme and src.rsplit("/", 2)[-2] in ("static", "pagefind"), (page, attrs)
        for attrs, text in parsed.inline_scripts:  # data blocks only, each a whole JSON document
            assert attrs.get("type") in ("application/ld+json", "application/json"), page
            json.loads(text)
        if "<script" in page.read_text(encoding="utf-8").replace("<script src=", "").replace(
                '<script type="application/ld+json">', "").replace('<script type="application/json"', ""):
            pytest.fail(f"an unexpected <script> in {page}")


def test_hostile_text_is_shown_as_text(built):
    page = parse(built / "id" / "hostile-script.html")
    text = "".join(page.text)
    assert NAME in text
    assert "Templates: {{ 7 * 7 }} {% raw %}" in text
    assert "</script><script>window.__pwned='breakout'</script> <!-- ]]> -->" in text
    assert "[plain](javascript:window.__pwned='md1')" in text  # a link it refuses stays visible as text
    assert page.links.count("https://example.org/ok") == 1 and page.links.count("https://example.org/") == 1
    assert "{{ 7*7 }} ${7*7} <% 7*7 %> {{ config }}" in "".join(parse(built / "id" / "hostile-country.html").text)
    assert "https://example.org/\"><script>window.__pwned='url'</script>" in parse(built / "sources.html").links


def test_the_embedded_json_ld_cannot_be_closed_by_an_entry(built):
    page = parse(built / "id" / "hostile-script.html")
    data = json.loads("".join(page.jsonld))
    assert NAME in json.dumps(data, ensure_ascii=False)


# --- in the browser --------------------------------------------------------------------------------

BROWSER_PAGES = ["id/hostile-script.html", "id/hostile-variant.html", "id/hostile-source.html",
                 "id/hostile-country.html", "id/hostile-org.html", "id/hostile-place.html", "id/hostile-event.html",
                 "index.html", "systems.html", "sources.html", "events.html", "organizations.html", "countries.html",
                 "category/main-battle-tank.html", "compare/main-battle-tank.html", "queries.html"]
LINKS_AND_HANDLERS = """() => {
  const other = [...document.querySelectorAll('[href], [src], [action], [formaction]')]
    .map(e => [e.tagName, ['href', 'src', 'action', 'formaction'].map(n => e.getAttribute(n)).find(v => v !== null)])
    .filter(([tag, value]) => !['http:', 'https:'].includes(new URL(value, document.baseURI).protocol));
  const handlers = [...document.querySelectorAll('*')]
    .flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'));
  return {other_schemes: other, handlers, pwned: window.__pwned ?? null};
}"""
PAGEFIND_FORM = ["FORM", "javascript:void(0);"]  # pagefind's own search form, which submits nowhere


@pytest.fixture(scope="module")
def served(built):
    require_chromium()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def watched(browser):
    """A page that records dialogs (alert, confirm, prompt), page errors and requests to other hosts."""
    context = browser.new_context()
    page = context.new_page()
    page.seen = {"dialogs": [], "errors": [], "foreign": []}
    page.on("dialog", lambda d: (page.seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.seen["errors"].append(str(e)))
    page.on("request", lambda r: urlsplit(r.url).hostname not in (None, "127.0.0.1")
            and page.seen["foreign"].append(r.url))
    yield page
    context.close()


@pytest.mark.parametrize("path", BROWSER_PAGES)
def test_no_script_from_an_entry_runs_in_the_browser(served, watched, path):
    watched.goto(served + path, wait_until="load")
    watched.wait_for_timeout(100)  # give any deferred handler its chance
    assert watched.evaluate(LINKS_AND_HANDLERS) == {"other_schemes": [], "handlers": [], "pwned": None}
    assert watched.seen == {"dialogs": [], "errors": [], "foreign": []}


def test_searching_for_the_hostile_entries_runs_none_of_them(served, watched):
    watched.goto(served + "search.html?q=script", wait_until="load")
    results = search_results(watched)
    assert results.count() >= 2
    assert NAME in results.all_inner_texts()
    assert watched.evaluate(LINKS_AND_HANDLERS) == {"other_schemes": [PAGEFIND_FORM], "handlers": [], "pwned": None}
    results.filter(has_text=NAME).first.click()
    watched.wait_for_url("**/id/hostile-script.html")
    assert watched.evaluate("window.__pwned ?? null") is None
    assert watched.seen == {"dialogs": [], "errors": [], "foreign": []}


# --- refused -------------------------------------------------------------------------------------

REFUSED = {  # file inside entries/ → its text, and the problems `kb validate` prints for it
    "sources/bad-urls.yaml": ("""\
name: Bad URLs
url: "javascript:alert(1)"
archive_url: "data:text/html,<script>alert(1)</script>"
""", ["entries/sources/bad-urls.yaml:2: `javascript:alert(1)` is not an http(s) URL — write the full address, starting "
      "with https://",
      "entries/sources/bad-urls.yaml:3: `data:text/html,<script>alert(1)</script>` is not an http(s) URL — write the "
      "full address, starting with https://"]),
    "sources/more-bad-urls.yaml": ("""\
name: More bad URLs
url: "  JAVASCRIPT:alert(1)"
archive_url: "vbscript:msgbox(1)"
""", ["entries/sources/more-bad-urls.yaml:2: `JAVASCRIPT:alert(1)` is not an http(s) URL — write the full address, "
      "starting with https://",
      "entries/sources/more-bad-urls.yaml:3: `vbscript:msgbox(1)` is not an http(s) URL — write the full address, "
      "starting with https://"]),
    "sources/file-url.yaml": ("""\
name: File URL
url: "file:///etc/passwd"
archive_url: "//example.org/no-scheme"
""", ["entries/sources/file-url.yaml:2: `file:///etc/passwd` is not an http(s) URL — write the full address, starting "
      "with https://",
      "entries/sources/file-url.yaml:3: `//example.org/no-scheme` is not an http(s) URL — write the full address, "
      "starting with https://"]),
    "countries/reversed-name.yaml": ('name: "Evil\\u202Egnp.exe"\n', [
        "entries/countries/reversed-name.yaml:1: the text contains the invisible control character U+202E "
        "(RIGHT-TO-LEFT OVERRIDE) — remove it: it can hide text or show it in a misleading order"]),
    "countries/isolated-alias.yaml": ('name: Isolated\naliases: ["a\\u2066b"]\n', [
        "entries/countries/isolated-alias.yaml:2: the text contains the invisible control character U+2066 "
        "(LEFT-TO-RIGHT ISOLATE) — remove it: it can hide text or show it in a misleading order"]),
    "countries/attribute-tricks.yaml": ("""\
name: Attribute tricks
aliases:
  - {label: x, lang: "en\\" onmouseover=\\"alert(1)"}
wikidata: "Q1\\" onmouseover=\\"alert(1)"
""", ['entries/countries/attribute-tricks.yaml:3: `en" onmouseover="alert(1)` is not a language tag — use e.g. `ru`, '
      '`uk`, `en`',
      'entries/countries/attribute-tricks.yaml:4: `Q1" onmouseover="alert(1)` is not a Wikidata id — write the item '
      'id, e.g. Q12345']),
    "systems/traversal-link.yaml": ("""\
name: Traversal link
category: main-battle-tank
variant_of: ../../../../tmp/pwned
based_on: ../sources/src-a
sources: [src-a]
""", ["entries/systems/traversal-link.yaml:3: `../../../../tmp/pwned` is not an entry",
      "entries/systems/traversal-link.yaml:4: `../sources/src-a` is not an entry"]),
}
TRAVERSAL_FILES = {  # file names that try to leave their folder, or to be read as another path
    "systems/evil..yaml": "entries/systems/evil..yaml:1: `evil.` is not a valid id (the file name): use lowercase "
                          "letters, digits and hyphens — rename it to evil.yaml",
    "systems/a..%2f..%2fevil.yaml": "entries/systems/a..%2f..%2fevil.yaml:1: `a..%2f..%2fevil` is not a valid id (the "
                                    "file name): use lowercase letters, digits and hyphens — rename it to "
                                    "a-2f-2fevil.yaml",
    "systems/a\\..\\..\\evil.yaml": "entries/systems/a\\..\\..\\evil.yaml:1: `a\\..\\..\\evil` is not a valid id "
                                    "(the file name): use lowercase letters, digits and hyphens — rename it to "
                                    "a-evil.yaml",
    "systems/<script>.yaml": "entries/systems/<script>.yaml:1: `<script>` is not a valid id (the file name): use "
                             "lowercase letters, digits and hyphens — rename it to script.yaml",
    "systems/\u2215etc\u2215passwd.yaml": "entries/systems/\u2215etc\u2215passwd.yaml:1: `\u2215etc\u2215passwd` is not "
                                          "a valid id (the file name): use lowercase letters, digits and hyphens — "
                                          "rename it to etc-passwd.yaml",
}
SKIPPED_FILES = ["systems/...yaml", "systems/..%2f..%2fevil.yaml", "systems/.hidden.yaml"]  # hidden: never read


def test_dangerous_urls_direction_controls_and_traversal_are_refused_and_nothing_is_written(tmp_path):
    root = make_root(tmp_path / "kb")
    shutil.copytree(REPO / "site_build", root / "site_build")
    for name, (text, _) in REFUSED.items():
        (root / "entries" / name).write_text(text, encoding="utf-8")
    for name in TRAVERSAL_FILES:
        (root / "entries" / name).write_text("name: Traversal\ncategory: main-battle-tank\nsources: [src-a]\n")
    for name in SKIPPED_FILES:
        (root / "entries" / name).write_text("{{ not even YAML")
    (tmp_path / "outside.yaml").write_text("name: SECRET-CONTENT\n")
    (root / "entries" / "countries" / "outside.yaml").symlink_to(tmp_path / "outside.yaml")
    (root / "entries" / "systems" / "up").symlink_to(tmp_path)
    expected = sorted([line for _, lines in REFUSED.values() for line in lines] + list(TRAVERSAL_FILES.values()) + [
        "entries/countries/outside.yaml:1: is a symbolic link; entries must be files inside entries/ — replace the link "
        "with the file (or folder) itself",
        "entries/systems/up:1: is a symbolic link; entries must be files inside entries/ — replace the link with the "
        "file (or folder) itself"])
    result = run_kb("validate", cwd=root)
    assert result.code == 1 and "SECRET" not in result.stderr
    assert sorted(result.problem_lines) == expected
    assert result.stderr.splitlines()[:-1] == result.problem_lines  # nothing else: no warning, no traceback
    before = listing(tmp_path, tmp_path / "site")
    result = run_kb("build", "--no-search", "-o", str(tmp_path / "site"), cwd=root)
    assert result.code == 1 and sorted(result.problem_lines) == expected
    assert not (tmp_path / "site").exists()
    assert listing(tmp_path, tmp_path / "site") == before


# --- user text never reaches SPARQL -------------------------------------------------------------

TYPED = ["'", '"', "\\", "{", "}", "} UNION { ?s ?p ?o }", '"; DROP TABLE entities; --', "' OR '1'='1",
         "t-80' } ; DELETE WHERE { ?s ?p ?o } #", '") } SELECT * WHERE { ?s ?p ?o } #', "?s ?p ?o",
         "<https://w3id.org/milkb/id/t-80>", "id:t-80", "FILTER(true)", "${jndi:ldap://example.org/a}",
         "$(touch pwned)", "`touch pwned`", "%00", "\u0000", "t-80\u0000", "\u202e08-t", "t-80\nname", "*", ".*",
         "(", "[", "x" * 100_000, "", " "]


@pytest.mark.parametrize("command", ["show", "search"])
def test_text_typed_into_show_and_search_finds_nothing_or_behaves_normally(kb_root, command):
    runner = CliRunner()
    for text in TYPED:
        result = runner.invoke(app, ["--root", str(kb_root), command, text])
        assert result.exception is None or isinstance(result.exception, SystemExit), (text, result.exception)
        assert result.exit_code in (0, 1), (text, result.output)
        for word in ("Traceback", "SPARQL", "syntax", "Expected", "ParseException"):
            assert word not in result.output, (text, result.output)
        if result.exit_code == 1:
            assert result.stdout == "" and result.stderr.startswith(("no entity named", "nothing matches")), text
    assert not (kb_root / "pwned").exists() and not Path("pwned").exists()


def test_the_real_command_takes_quotes_and_braces_as_plain_text(kb_root):
    for text in ('"; DROP TABLE entities; --', "} UNION { ?s ?p ?o }"):
        for command in ("show", "search"):
            result = run_kb(command, text, cwd=kb_root)
            assert result.code == 1 and "Traceback" not in result.stderr and "SPARQL" not in result.stderr
    result = run_kb("show", NAME, cwd=hostile_root(kb_root.parent / "hostile"))
    assert result.code == 0 and result.stdout.startswith(f"{NAME}  (hostile-script) — system"), result.stderr


def test_a_chain_of_variants_longer_than_pythons_recursion_limit_is_drawn(kb):
    """A chain of `variant_of` is valid however long; its family tree is built and laid out with stacks
    (with recursion, 500 levels stopped `kb build` with a RecursionError)."""
    from kb.site.model import SiteModel, TreeNodeBuilder
    from kb.site.svg import family_tree_svg

    from kb.namespaces import KB

    chain = [kb.iri(f"chain-{n}") for n in range(3_000)]
    for a, b in zip(chain, chain[1:]):
        kb.index.add((b, KB.variantOf, a))
    model = SiteModel(kb)
    model.labels.update({iri: f"Chain {n}" for n, iri in enumerate(chain)})
    model.system_concepts.update({iri: (None, set()) for iri in chain})
    root, tree = TreeNodeBuilder(model).family(chain[1_500])
    assert root == chain[0]
    drawing = family_tree_svg(tree, "Variant family of Chain 0", "../")
    assert drawing.count("<rect") == 3_000 and drawing.count('class="node current"') == 1
