"""The built site in a real headless Chromium (Debian's, driven by playwright): navigation, search,
sorting, accessibility (axe-core), no console errors and no request to another host."""
from __future__ import annotations

import functools
import html
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from .conftest import REPO, require_chromium, search_results

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = REPO / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def served_site(bundled_site):
    """The session's build of the bundled corpus (with the pagefind search index), served over HTTP."""
    require_chromium()
    handler = functools.partial(_QuietHandler, directory=str(bundled_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield bundled_site, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".pf_meta": "application/octet-stream"}

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser stopped reading (it left the page, or had what it wanted): nobody to answer


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.console_errors = []
    page.foreign_requests = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))

    def check_host(request):
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and parts.hostname != "127.0.0.1":
            page.foreign_requests.append(request.url)
    page.on("request", check_host)
    yield page
    assert page.console_errors == []
    assert page.foreign_requests == []
    context.close()


def expect(target):
    from playwright.sync_api import expect as playwright_expect  # imported when a test runs, as the browser is

    return playwright_expect(target)


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def test_follow_tos_1_to_its_t_72_chassis(served_site, page):
    _, base = served_site
    page.goto(base + "id/tos-1.html")
    assert page.locator("h1").inner_text() == "TOS-1"
    shot(page, "entity-tos-1")
    row = page.locator("table.facts tr", has=page.locator("th", has_text="based on"))
    row.get_by_role("link", name="T-72").click()
    page.wait_for_url("**/id/t-72.html")
    assert page.locator("h1").inner_text() == "T-72"


def test_search_box_finds_nona(served_site, page):
    _, base = served_site
    page.goto(base + "index.html")
    shot(page, "home")
    page.fill("#site-q", "Nona")
    page.press("#site-q", "Enter")
    page.wait_for_url("**/search.html?q=Nona")
    results = search_results(page)
    shot(page, "search-nona")
    # the Nona systems rank first, above the sources and events that mention them (which of the two leads
    # moves with the statistics of the whole corpus)
    titles = results.all_inner_texts()
    assert sorted(titles[:2]) == ["2S23 Nona-SVK", "2S9 Nona-S"], titles
    results.filter(has_text="2S23 Nona-SVK").first.click()
    page.wait_for_url("**/id/2s23.html")


@pytest.mark.parametrize("query, first", [("Iskander", "9K720 Iskander"), ("Kalibr", "Kalibr"), ("S-300", "S-300"),
                                          ("Shahed", "Shahed-136"), ("Bradley", "M2 Bradley"),
                                          # a page whose name or alias is the query comes first (search.js)
                                          ("T-80", "T-80"), ("Т-80", "T-80"), ("TOS-1", "TOS-1"),
                                          ("Leopard 2", "Leopard 2"), ("T-72", "T-72"), ("2S23", "2S23 Nona-SVK"),
                                          ("M1 Abrams", "M1 Abrams"), ("t80", "T-80"), ("T 80", "T-80"),
                                          ("t-80", "T-80"),
                                          # two words pagefind does not rank TOS-1A for: looked up hyphenated too
                                          ("tos 1a", "TOS-1A Solntsepyok"),
                                          # no page of that name: a system whose name begins with the words
                                          ("bm 21", "BM-21 Grad"), ("2s 19", "2S19 Msta-S"), ("mq 9", "MQ-9 Reaper")])
def test_a_systems_name_finds_it_first(served_site, page, query, first):
    """Above the sources and events whose titles name it (pagefind's title boost, which would put "The Global News
    24: Russia fires Iskander-M in exercise" first, is off: search.js), and above its variants: a page whose name
    or an alias is the query, ignoring case, spaces and punctuation ("Т-80" is the Cyrillic alias of T-80), is put
    first."""
    _, base = served_site
    page.goto(base + "search.html?q=" + quote(query))
    assert search_results(page).first.inner_text() == first


@pytest.mark.parametrize("query, offered", [("hymars", "M142 HIMARS"), ("javlin", "FGM-148 Javelin"),
                                             ("bayraktr", "Bayraktar TB2"), ("gvozdica", "2S1 Gvozdika"),
                                             ("challanger", "Challenger 2"), ("bakmut", "Bakhmut")])
def test_a_misspelt_name_that_finds_nothing_offers_the_close_names(served_site, page, query, offered):
    """A query with a typing error finds nothing, or only pages that mention a word like it, none of that name:
    the page then offers the systems, organizations, countries and places whose name, alias or a word of one is a
    few edits away, or begins with the query (names/, search.js), each linked to its page."""
    _, base = served_site
    page.goto(base + "search.html?q=" + quote(query))
    expect(page.locator(".pagefind-ui__message")).to_contain_text(" for " + query)
    expect(page.locator(f'#search[data-suggested="{query}"]')).to_have_count(1)
    line = page.locator(".search-suggest")
    expect(line).to_contain_text("Did you mean ")
    assert offered in line.inner_text()
    line.get_by_role("link").first.click()
    page.wait_for_url("**/id/*.html")
    assert page.locator("h1").inner_text() == offered.split(" (")[0]


@pytest.mark.parametrize("query, first", [("HIMARS", "M142 HIMARS"), ("iskandar", "9K720 Iskander"),
                                          ("drone", None), ("storm", "Storm Shadow"),
                                          ("him", "M142 HIMARS")])  # pagefind matches the beginning of a word
def test_a_query_whose_page_is_found_offers_no_other_names(served_site, page, query, first):
    """Nothing is offered when the page named by the query is found, when the closest name is among the
    results ("iskandar": Iskander), or when no name is close enough ("drone" is two edits from "stone")."""
    _, base = served_site
    page.goto(base + "search.html?q=" + quote(query))
    expect(page.locator(".pagefind-ui__message")).to_contain_text(" results for " + query)
    if first:
        expect(search_results(page).first).to_have_text(first)
    expect(page.locator(f'#search[data-suggested="{query}"]')).to_have_count(1)  # it has looked
    assert page.locator(".search-suggest").count() == 0


PAGEFIND_ORDER = """async (query) => {
  // the module search.js loaded (one per address), with the options it gave
  const pagefind = await import(new URL("pagefind/pagefind.js", document.baseURI).href);
  const results = (await pagefind.search(query)).results;
  return Promise.all(results.slice(0, 12).map(async r => { const d = await r.data(); return d.meta.url || d.url; }));
}"""


@pytest.mark.parametrize("query, named", [("T-80", "/id/t-80.html"), ("TOS-1", "/id/tos-1.html"),
                                          ("Leopard 2", "/id/leopard-2.html")])
def test_search_keeps_pagefinds_order_after_the_named_page(served_site, page, query, named):
    _, base = served_site
    page.goto(base + "search.html?q=" + quote(query))
    shown = [link.get_attribute("href") for link in search_results(page).all()]
    order = page.evaluate(PAGEFIND_ORDER, query)
    assert named in order
    assert shown == ([named] + [url for url in order if url != named])[:len(shown)]
    assert len(shown) == 5


def test_search_page_box_enter_and_load_more(served_site, page):
    """The search page's own box: labelled, searching as one types and on Enter, five results at a time, focus on
    the first of the next five, each result titled, with its kind (not its list of names); emptied, nothing."""
    _, base = served_site
    page.goto(base + "search.html")
    box = page.get_by_label("Search terms")
    box.fill("t 72")
    box.press("Enter")
    results = search_results(page)
    assert results.first.inner_text() == "T-72"
    assert page.locator(".pagefind-ui__message").inner_text().endswith(" results for t 72")
    assert results.count() == 5
    assert "?q=t+72" in page.url  # reloaded, the page searches again
    tags = page.locator(".pagefind-ui__result-tag").all_inner_texts()
    assert tags and all(t.startswith("Kind: ") for t in tags)
    page.get_by_role("button", name="Load more results").click()
    expect(results).to_have_count(10)
    assert page.evaluate("document.activeElement.getAttribute('href')") == results.nth(5).get_attribute("href")
    shot(page, "search-load-more")
    box.fill("")
    expect(results).to_have_count(0)
    expect(page.get_by_role("button", name="Load more results")).to_be_hidden()
    box.fill("qwxzqwxz")
    expect(page.locator(".pagefind-ui__message")).to_have_text("No results for qwxzqwxz")


def test_comparison_table_sorts(served_site, page):
    _, base = served_site
    page.goto(base + "compare/main-battle-tank.html")
    header = page.locator("#compare thead th", has_text="combat mass")
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    column = [h.inner_text() for h in page.locator("#compare thead th").all()].index(header.inner_text())
    values = [page.locator("#compare tbody tr").nth(i).locator("th, td").nth(column).get_attribute("data-sort")
              for i in range(page.locator("#compare tbody tr").count())]
    numbers = [float(v) for v in values if v is not None]
    assert numbers == sorted(numbers) and len(numbers) >= 5
    assert values[:len(numbers)] == [v for v in values if v is not None]  # systems without a value go last
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    first = page.locator("#compare tbody tr").first.locator("th, td").nth(column).get_attribute("data-sort")
    assert float(first) == max(numbers)
    shot(page, "compare-main-battle-tank")


def test_table_filter(served_site, page):
    _, base = served_site
    page.goto(base + "systems.html")
    page.fill("#systems-filter", "leopard")
    visible = [r for r in page.locator("#systems tbody tr").all() if r.is_visible()]
    assert visible and all("Leopard" in r.inner_text() for r in visible)
    total = page.locator("#systems tbody tr").count()
    assert page.locator(".filter-status").inner_text() == f"{len(visible)} of {total} shown"


def test_table_filter_matches_within_a_cell_not_across_cells(served_site, page):
    """"Nona" is in no autocannon's row, though "cannon" and "autocannon" stand side by side in them."""
    _, base = served_site
    page.goto(base + "systems.html")
    page.fill("#systems-filter", "Nona")
    visible = [r.inner_text() for r in page.locator("#systems tbody tr").all() if r.is_visible()]
    assert len(visible) >= 2 and all("nona" in row.lower() for row in visible), visible
    assert not [row for row in visible if "autocannon" in row]


def test_sorting_by_name_reads_names_as_words(served_site, page):
    """"57E6" is a radar's name, not the number 5.7e7, and numbers within names sort as numbers: 2S9 < 2S19 < 2S23."""
    _, base = served_site
    page.goto(base + "systems.html")
    header = page.locator("#systems thead th").first
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    names = page.locator("#systems tbody th.name").all_inner_texts()
    assert names[0] != "57E6" and names.index("2S23 Nona-SVK") < names.index("57E6")
    assert names.index("2S9 Nona-S") < names.index("2S19 Msta-S") < names.index("2S23 Nona-SVK")
    assert names.index("5V55") < names.index("57E6")
    assert names.index("T-72") < names.index("T-72B") < names.index("T-80") < names.index("T-80B")
    header.locator("button").click()
    assert page.locator("#systems tbody th.name").all_inner_texts() == names[::-1]


def test_events_filter(served_site, page):
    """The timeline narrows to the events that name every word typed (a system, a place, an action), and says how
    many it shows; emptied, it shows them all again."""
    _, base = served_site
    page.goto(base + "events.html")
    items = page.locator("#events > li")
    total = items.count()
    page.fill("#events-filter", "kalibr used")
    visible = [i for i in items.all() if i.is_visible()]
    assert len(visible) >= 2 and all("Kalibr" in i.inner_text() and "Used" in i.inner_text() for i in visible)
    assert len(visible) < total
    assert page.locator(".filter-status").inner_text() == f"{len(visible)} of {total} shown"
    page.fill("#events-filter", "")
    assert sum(i.is_visible() for i in items.all()) == total
    assert page.locator(".filter-status").inner_text() == ""


PAGE_TYPES = ["index.html", "id/tos-1.html", "id/bakhmut.html", "id/omsk-transmash.html", "id/russia.html",
              "id/2022-11-bakhmut-captured-2s23-used.html", "id/19fortyfive-2022-11-putin-fires-back.html",
              "systems.html", "categories.html", "category/main-battle-tank.html", "compare/index.html",
              "compare/main-battle-tank.html", "events.html", "countries.html", "organizations.html", "sources.html",
              "queries.html", "vocabulary.html", "downloads.html", "search.html?q=T-80"]


@pytest.mark.parametrize("path", PAGE_TYPES)
def test_no_accessibility_violations(served_site, page, path):
    _, base = served_site
    page.goto(base + path)
    if path.startswith("search"):
        search_results(page)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                               ".map(v => v.id + ': ' + v.help + ' ' + v.nodes.slice(0, 3).map(n => n.target).join(' | '))")
    assert violations == []


def test_opened_from_disk_pages_read_and_search_says_why_it_is_off(served_site, page):
    folder, _ = served_site
    page.goto((folder / "search.html").as_uri())
    assert "opened from disk" in page.locator("#search-status").inner_text()
    page.goto((folder / "id" / "tos-1.html").as_uri())
    page.get_by_role("link", name="T-72").first.click()
    assert page.locator("h1").inner_text() == "T-72"


def test_search_says_the_index_is_coming_while_kb_serve_makes_it(served_site, browser, tmp_path):
    # a site whose search index `kb serve` has not made yet (kb/site/build.py `index_later`): its search page
    # asks for pagefind, which is not there yet, and says so, not "built with --no-search"
    folder, _ = served_site
    shutil.copytree(folder, tmp_path / "site", ignore=shutil.ignore_patterns("pagefind"))
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/search.html")
        expect(page.locator("#search-status")).to_contain_text("still being made")
        assert page.get_by_label("Search terms").count() == 0 or not page.get_by_label("Search terms").is_visible()
        # only pagefind's own index script is asked for: not its 130 KB user interface
        assert [u for u in requested if "/pagefind/" in u] == [u for u in requested if u.endswith("/pagefind/pagefind.js")]
    finally:
        page.close()
        server.shutdown()


def test_without_javascript_every_page_still_reads(served_site, browser):
    _, base = served_site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "compare/main-battle-tank.html")
    assert page.locator("#compare tbody tr").count() >= 10
    page.goto(base + "search.html")
    assert "needs JavaScript" in page.locator("#search-status").inner_text()
    context.close()


def _widest_source_pages(site: Path, count: int) -> list[str]:
    """The source pages whose text holds the longest unbroken strings (addresses, titles), the likeliest to
    overflow a phone's width, after the one a reader found overflowing."""
    sources = re.findall(r'<li><a href="(id/[^"]+)"', (site / "sources.html").read_text(encoding="utf-8"))
    assert len(sources) > 50

    def longest_word(path: str) -> int:
        page = re.sub(r"<script.*?</script>", "", (site / path).read_text(encoding="utf-8"), flags=re.S)
        return max(map(len, html.unescape(re.sub(r"<[^>]+>", " ", page)).split()))
    lengths = {path: longest_word(path) for path in sources}
    return ["id/armyrecognition-leopard-2-2015.html"] + sorted(lengths, key=lambda p: (-lengths[p], p))[:count]


def test_no_page_scrolls_sideways_on_a_phone(served_site, browser):
    """At 390 px the page is as wide as the screen: a fact table's long address or title wraps (the wide tables
    scroll in their own frame)."""
    folder, base = served_site
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    wide = {}
    for path in _widest_source_pages(folder, 12) + ["id/t-80.html", "id/2s23.html", "systems.html", "events.html",
                                                    "compare/main-battle-tank.html", "sources.html", "index.html"]:
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide[path] = width
    shot(page, "phone-index")
    page.goto(base + "id/armyrecognition-leopard-2-2015.html")
    shot(page, "phone-source")
    context.close()
    assert wide == {}


SPLIT_WORDS = """() => [...document.querySelectorAll('td a, th a')]
  .filter(a => /^\\w+$/.test(a.textContent.trim()) && a.getClientRects().length > 1).map(a => a.textContent.trim())"""
SPLIT_NAMES = """() => [...document.querySelectorAll('th.name a')].filter(a => a.getClientRects().length > 1).length"""


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("path", ["systems.html", "compare/main-battle-tank.html", "category/main-battle-tank.html",
                                  "organizations.html"])
def test_tables_break_lines_between_words(served_site, browser, path, width):
    """No "Germa|ny" or "autocann|on": a data table's cell wraps between words, and a name not at all."""
    _, base = served_site
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(base + path)
    assert page.evaluate(SPLIT_WORDS) == []
    assert page.evaluate(SPLIT_NAMES) == 0
    context.close()


def test_the_service_timeline_shows_its_first_year_whole(served_site, page):
    """The first decade's label, centred on its line, lies inside the drawing: "1960", not "960"."""
    _, base = served_site
    page.goto(base + "category/main-battle-tank.html")
    first = page.locator("svg.timeline text.year").first
    box = first.evaluate("t => { const b = t.getBBox(); return {x: b.x, width: b.width}; }")
    assert re.fullmatch(r"\d{4}", first.text_content())
    assert box["x"] >= 0 and box["width"] > 15
