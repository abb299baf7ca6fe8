"""`kb serve` as a user runs it: the real command on a free port, asked over HTTP and with SPARQLWrapper — every
result format, content negotiation on entity IRIs, what a read-only endpoint refuses, the timeout and the row cap,
the query editor in Chromium, and a rebuild after an entry changes."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from SPARQLWrapper import CSV, JSON, JSONLD, POST, POSTDIRECTLY, TSV, TURTLE, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

from kb.knowledge_base import load_valid_kb
from kb.query import run_query

from .conftest import REPO, make_root, run_kb
from .server_helpers import save, start_kb_serve, stop

TIMEOUT = 4  # seconds: a slow query outlasts the quick ones asked beside it, even on a loaded machine
MAX_ROWS = 50
TANKS = "SELECT ?tank ?crew WHERE { ?tank kb:category kbc:main-battle-tank . OPTIONAL { ?tank kb:crew ?crew } } ORDER BY ?tank"
# every triple of the graph joined with itself three times: far more than TIMEOUT seconds of work
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    root = make_root(folder)
    shutil.copytree(REPO / "site_build", root / "site_build")
    process, base = start_kb_serve(root, "--timeout", str(TIMEOUT), "--max-rows", str(MAX_ROWS),
                                   log=folder / "serve.log")
    wait_for_log(folder / "serve.log", "search index made")  # made after the first pages, which it serves meanwhile
    yield root, base, process
    code = stop(process)
    assert code == 0, (folder / "serve.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def local(served):
    root, _, _ = served
    return load_valid_kb(root)


def wait_for_log(log: Path, text: str, times: int = 1, seconds: float = 60) -> None:
    """Until the server has said `text` `times` times in `log`."""
    deadline = time.monotonic() + seconds
    while log.read_text().count(text) < times:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def sparql(base, query, fmt, method=None):
    client = SPARQLWrapper(f"{base}/sparql")
    client.setQuery(query)
    client.setReturnFormat(fmt)
    if method:
        client.setMethod(POST)
        client.setRequestMethod(method)
    return client.query()


def expected_tanks(local) -> list[tuple[str, str]]:
    return [(str(t), "" if c is None else str(c)) for t, c in run_query(local.graph, TANKS, base_iri=local.config.base_iri)]


# --- results in every format, by any of the protocol's three request forms ------------------------------


def test_select_in_each_result_format(served, local):
    _, base, _ = served
    expected = expected_tanks(local)
    assert len(expected) == 3

    data = sparql(base, TANKS, JSON).convert()
    assert [(b["tank"]["value"], b.get("crew", {}).get("value", "")) for b in data["results"]["bindings"]] == expected

    document = sparql(base, TANKS, XML).convert()
    rows = []
    for result in document.getElementsByTagName("result"):
        cells = {b.getAttribute("name"): b.firstChild.firstChild.data for b in result.getElementsByTagName("binding")}
        rows.append((cells["tank"], cells.get("crew", "")))
    assert rows == expected

    response = sparql(base, TANKS, CSV)
    assert response.response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.convert().decode("utf-8"))))
    assert table[0] == ["tank", "crew"] and [tuple(r) for r in table[1:]] == expected

    response = sparql(base, TANKS, TSV)
    assert response.response.headers["Content-Type"].startswith("text/tab-separated-values")
    lines = response.convert().decode("utf-8").splitlines()
    assert lines[0] == "?tank\t?crew"
    assert [tuple(line.split("\t")) for line in lines[1:]] == [(f"<{t}>", c) for t, c in expected]


def test_get_post_form_and_post_body_give_the_same_answer(served, local):
    _, base, _ = served
    answers = [sparql(base, TANKS, JSON, method).convert()["results"]["bindings"] for method in (None, "urlencoded", POSTDIRECTLY)]
    assert answers[0] == answers[1] == answers[2]
    assert len(answers[0]) == len(expected_tanks(local))


def test_ask(served):
    _, base, _ = served
    assert sparql(base, "ASK { id:t-80 kb:crew 3 }", JSON).convert()["boolean"] is True
    assert sparql(base, "ASK { id:t-80 kb:crew 4 }", JSON).convert()["boolean"] is False
    xml = sparql(base, "ASK { id:t-80 kb:crew 3 }", XML).convert()
    assert xml.getElementsByTagName("boolean")[0].firstChild.data == "true"


@pytest.mark.parametrize("accept, syntax", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                            ("application/ld+json", "json-ld")])
def test_construct_and_describe_by_accept(served, local, accept, syntax):
    _, base, _ = served
    for query in ("CONSTRUCT { ?t kb:crew ?c } WHERE { ?t kb:crew ?c }", "DESCRIBE id:t-80"):
        response = httpx.post(f"{base}/sparql", data={"query": query}, headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == accept
        got = Graph().parse(data=response.text, format=syntax)
        want = run_query(local.graph, query, base_iri=local.config.base_iri).graph
        assert len(got) > 0 and isomorphic(got, want), query


def test_sparqlwrapper_reads_graphs_as_turtle_and_json_ld(served):
    _, base, _ = served
    for fmt in (TURTLE, JSONLD):
        result = sparql(base, "DESCRIBE id:t-80", fmt).convert()
        graph = result if isinstance(result, Graph) else Graph().parse(data=result, format="turtle")
        assert (URIRef("https://w3id.org/milkb/id/t-80"), URIRef("https://w3id.org/milkb/ontology#crew"),
                Literal(3)) in graph


def test_no_acceptable_format_is_406(served):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql", params={"query": TANKS}, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert "application/sparql-results+json" in response.text


def test_service_description(served, local):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=response.text, format="turtle")
    sd = "http://www.w3.org/ns/sparql-service-description#"
    endpoint = URIRef(f"{base}/sparql")
    assert (endpoint, URIRef(sd + "endpoint"), endpoint) in graph
    assert (endpoint, URIRef(sd + "supportedLanguage"), URIRef(sd + "SPARQL11Query")) in graph
    formats = set(graph.objects(endpoint, URIRef(sd + "resultFormat")))
    assert URIRef("http://www.w3.org/ns/formats/SPARQL_Results_TSV") in formats
    triples = next(graph.objects(None, URIRef("http://rdfs.org/ns/void#triples")))
    assert int(triples) == len(local.graph)
    # a browser is sent to the editor
    browser = httpx.get(f"{base}/sparql", headers={"Accept": BROWSER})
    assert browser.status_code == 303 and browser.headers["location"] == "/sparql.html"


# --- entity IRIs --------------------------------------------------------------------------------------


def test_entity_iri_by_content_negotiation(served):
    root, base, _ = served
    site = root / "_site" / "id"
    for accept, suffix, media in (("text/turtle", "ttl", "text/turtle"), ("application/ld+json", "jsonld", "application/ld+json"),
                                  (BROWSER, "html", "text/html"), (None, "html", "text/html")):
        response = httpx.get(f"{base}/id/t-80", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media
        assert "Accept" in response.headers["vary"]
        assert response.content == (site / f"t-80.{suffix}").read_bytes()
    assert httpx.get(f"{base}/id/t-80.ttl").content == (site / "t-80.ttl").read_bytes()
    missing = httpx.get(f"{base}/id/no-such-thing", headers={"Accept": "text/turtle"})
    assert missing.status_code == 404


def test_the_site_is_served(served):
    _, base, _ = served
    response = httpx.get(f"{base}/")
    assert response.status_code == 200 and "<h1" in response.text
    assert httpx.get(f"{base}/static/style.css").status_code == 200
    assert httpx.get(f"{base}/no/such/page.html").status_code == 404


def test_a_site_published_under_a_path_is_served_there_too_so_its_404_page_finds_its_links(tmp_path):
    # base_url https://example.org/milkb/: 404.html, which a host serves at any depth, links from /milkb/
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    toml = root / "kb.toml"
    toml.write_text(toml.read_text().replace('base_url = "https://milkb.example.org/"',
                                             'base_url = "https://example.org/milkb/"'))
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "search-index:stop"})
    try:
        missing = httpx.get(f"{base}/no/such/page.html")
        assert missing.status_code == 404 and 'href="/milkb/static/style.css"' in missing.text
        links = re.findall(r'(?:href|src)="(/milkb/[^"#]*)"', missing.text)
        assert len(links) > 5
        for link in links:
            assert httpx.get(f"{base}{link}").status_code == 200, link
        assert httpx.get(f"{base}/milkb/id/t-80.html").text == httpx.get(f"{base}/id/t-80.html").text
    finally:
        assert stop(process) == 0, log.read_text()
    # a path that is also one of the site's folders is not mounted: it would hide that folder
    toml.write_text(toml.read_text().replace('"https://example.org/milkb/"', '"https://example.org/static/"'))
    log = tmp_path / "serve2.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "search-index:stop"})
    try:
        assert httpx.get(f"{base}/static/style.css").status_code == 200
        assert httpx.get(f"{base}/static/id/t-80.html").status_code == 404
        assert "served at / only: base_url's path /static/ would hide its own /static/" in log.read_text()
    finally:
        assert stop(process) == 0, log.read_text()


# --- what a read-only endpoint refuses ----------------------------------------------------------------


@pytest.mark.parametrize("request_kwargs, message", [
    ({"data": {"update": "DROP ALL"}}, "updates are refused: this endpoint is read-only"),
    ({"content": "DROP ALL", "headers": {"Content-Type": "application/sparql-update"}}, "updates are refused"),
    ({"data": {"query": "INSERT DATA { <urn:a> <urn:b> <urn:c> }"}}, "updates are refused"),
    ({"data": {"query": "LOAD <http://example.org/data.ttl>"}}, "LOAD is refused"),
])
def test_updates_are_refused(served, request_kwargs, message):
    _, base, _ = served
    response = httpx.post(f"{base}/sparql", **request_kwargs)
    assert response.status_code == 403
    assert message in response.text
    assert sparql(base, "ASK { ?s ?p ?o }", JSON).convert()["boolean"] is True


def test_service_is_refused(served):
    _, base, _ = served
    for query in ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
                  "SELECT * WHERE { ?t kb:crew ?c OPTIONAL { SERVICE SILENT <http://example.org/sparql> { ?t ?p ?o } } }"):
        response = httpx.get(f"{base}/sparql", params={"query": query})
        assert response.status_code == 403
        assert response.text.startswith("SERVICE is refused")


def test_from_is_refused(served):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql", params={"query": "SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }"})
    assert response.status_code == 400
    assert "FROM and FROM NAMED are not supported" in response.text


def test_a_bad_query_is_400_with_the_parser_message(served):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql", params={"query": "SELECT ?s WHERE { ?s ?p "})
    assert response.status_code == 400
    assert response.text.startswith("SPARQL syntax error: ")
    assert "line:1" in response.text
    response = httpx.get(f"{base}/sparql", params={"query": "SELECT ?s WHERE { ?s nope:p ?o }"})
    assert response.status_code == 400 and "nope" in response.text
    response = httpx.post(f"{base}/sparql", content=b"\xff\xfe", headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 400
    response = httpx.post(f"{base}/sparql", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    with pytest.raises(QueryBadFormed):
        sparql(base, "SELECT WHERE", JSON)


# --- limits ---------------------------------------------------------------------------------------------


def test_results_past_the_cap_are_cut_and_say_so(served, local):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"},
                         headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200
    assert response.headers["x-result-truncated"] == "true"
    assert response.headers["x-result-limit"] == str(MAX_ROWS)
    assert len(response.json()["results"]["bindings"]) == MAX_ROWS < len(local.graph)
    construct = httpx.get(f"{base}/sparql", params={"query": "CONSTRUCT WHERE { ?s ?p ?o }"},
                          headers={"Accept": "application/n-triples"})
    assert construct.headers["x-result-truncated"] == "true"
    assert len(construct.text.splitlines()) == MAX_ROWS
    small = httpx.get(f"{base}/sparql", params={"query": TANKS})
    assert "x-result-truncated" not in small.headers


def test_a_slow_query_is_stopped_by_the_timeout_and_the_server_goes_on(served, local):
    _, base, _ = served
    started = time.monotonic()
    response = httpx.get(f"{base}/sparql", params={"query": SLOW}, timeout=60)
    took = time.monotonic() - started
    assert response.status_code == 503
    assert f"the query was stopped after {TIMEOUT} s" in response.text
    assert TIMEOUT <= took < TIMEOUT + 20  # the worker killed, one started in its place: near the timeout
    for _ in range(3):  # the killed worker is replaced; queries go on being answered
        data = sparql(base, TANKS, JSON).convert()
        assert len(data["results"]["bindings"]) == len(expected_tanks(local))

    started = time.monotonic()  # asked again, it is refused at once instead of taking a worker for nothing
    again = httpx.get(f"{base}/sparql", params={"query": SLOW}, timeout=60)
    assert again.status_code == 503
    assert "is not run again so soon" in again.text
    assert time.monotonic() - started < TIMEOUT  # refused, not run until it times out


def test_a_burst_of_queries_on_a_fresh_server_is_all_answered(served, tmp_path):
    # rdflib's parser (pyparsing) sets itself up on first use and is not thread-safe: parsed in parallel threads,
    # a burst of first queries failed at random, and could leave the parser broken until a restart
    root, _, _ = served
    process, base = start_kb_serve(root, log=tmp_path / "serve.log")
    try:
        forms = ["SELECT ?p ?o WHERE { id:t-80 ?p ?o } LIMIT N", "ASK { id:t-80 kb:crew N }", "DESCRIBE id:t-80 LIMIT N",
                 "CONSTRUCT { ?s kb:crew ?c } WHERE { ?s kb:crew ?c } LIMIT N", TANKS + " LIMIT N"]
        queries = [form.replace(" N", f" {n}") for n in range(1, 21) for form in forms]
        with ThreadPoolExecutor(len(queries)) as pool:
            answers = list(pool.map(lambda q: httpx.post(f"{base}/sparql", data={"query": q}, timeout=60), queries))
    finally:
        stop(process)
    assert [a.status_code for a in answers] == [200] * len(queries), {a.text for a in answers if a.status_code != 200}


def test_a_server_started_on_an_up_to_date_site_serves_the_graph_of_its_dump(served, local, tmp_path):
    # the served fixture's server built the site (search index included) and recorded it as `kb build` does:
    # a second server finds it up to date, builds nothing, and answers from the site's N-Triples dump
    root, _, _ = served
    assert "is up to date" in run_kb("build", cwd=root).stdout
    process, base = start_kb_serve(root, log=tmp_path / "serve.log")
    try:
        count = sparql(base, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", JSON).convert()
        tanks = sparql(base, TANKS, JSON).convert()
        description = Graph().parse(data=httpx.get(f"{base}/sparql", headers={"Accept": "text/turtle"}).text,
                                    format="turtle")
    finally:
        stop(process)
    assert "built" not in (tmp_path / "serve.log").read_text()
    assert int(count["results"]["bindings"][0]["n"]["value"]) == len(local.graph)
    assert [(b["tank"]["value"], b.get("crew", {}).get("value", "")) for b in tanks["results"]["bindings"]] == \
        expected_tanks(local)
    triples = next(description.objects(None, URIRef("http://rdfs.org/ns/void#triples")))
    assert int(triples) == len(local.graph)


def test_clients_asking_one_slow_query_at_once_take_one_worker(served, local):
    _, base, _ = served
    slow = SLOW + " # asked by two clients at once"
    with ThreadPoolExecutor(2) as pool:
        asked = [pool.submit(httpx.get, f"{base}/sparql", params={"query": slow}, timeout=60) for _ in range(2)]
        time.sleep(0.5)
        data = sparql(base, TANKS, JSON).convert()  # the other worker is free for everyone else: answered
        slow_done = [a.done() for a in asked]  # while the slow query still runs (behind it, only after its timeout)
        assert [a.result().status_code for a in asked] == [503, 503]
    assert len(data["results"]["bindings"]) == len(expected_tanks(local))
    assert slow_done == [False, False]


# --- the query editor ---------------------------------------------------------------------------------


def test_the_editor_page_offers_the_saved_queries_and_loads_only_local_files(served):
    _, base, _ = served
    response = httpx.get(f"{base}/sparql.html")
    assert response.status_code == 200
    html = response.text
    assert 'src="/_kb/yasgui/yasgui.min.js"' in html and "https://" not in html.split("<body>")[1].split("</main>")[0]
    data = html.split('<script type="application/json" id="saved-queries">')[1].split("</script>")[0]
    examples = json.loads(data)
    assert [e["name"] for e in examples] == ["tanks"]
    assert examples[0]["description"] == "Main battle tanks with their crew."
    assert "PREFIX kb: <https://w3id.org/milkb/ontology#>" in examples[0]["text"]
    for asset in ("/_kb/yasgui/yasgui.min.js", "/_kb/yasgui/yasgui.min.css", "/_kb/editor.js", "/_kb/editor.css"):
        assert httpx.get(base + asset).status_code == 200, asset


def test_the_editor_runs_a_saved_query_in_chromium(served, browser):
    _, base, _ = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, foreign = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: urlsplit(r.url).hostname not in (None, "127.0.0.1") and foreign.append(r.url))
    page.goto(f"{base}/sparql.html")
    page.locator(".yasqe .CodeMirror").wait_for()
    assert "kb:category kbc:main-battle-tank" in page.evaluate("milkbEditor.getTab().getQuery()")
    page.locator(".yasqe_queryButton").click()
    page.locator(".yasr table tbody tr").first.wait_for(timeout=60_000)
    text = page.locator(".yasr table").inner_text()
    assert "t-80" in text and "t-72" in text
    page.screenshot(path=str(_screenshot("serve-editor")))
    page.context.close()
    assert errors == []
    assert foreign == []


def _screenshot(name: str):
    folder = REPO / "test-output" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


def test_a_busy_port_is_a_clear_error(served):
    root, base, _ = served
    result = run_kb("serve", "--port", base.rsplit(":", 1)[1], cwd=root)
    assert result.code == 2
    assert "Address already in use — pass another --port" in result.stderr


# --- rebuilding (last: it changes the knowledge base the other tests read) ---------------------------------


def indexed_pages(site) -> int:
    """How many pages the site's search index holds."""
    entry = json.loads((site / "pagefind" / "pagefind-entry.json").read_text())
    return sum(language["page_count"] for language in entry["languages"].values())


def test_an_entry_change_rebuilds_the_site_and_the_graph(served):
    root, base, _ = served
    indexed = indexed_pages(root / "_site")
    save(root / "entries" / "systems" / "t-64.yaml",  # a description of two lines: a literal spanning lines
        "name: T-64\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\n"
        "description: |\n  First line.\n  Second line.\n", encoding="utf-8")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = httpx.get(f"{base}/id/t-64", timeout=60)
        if page.status_code == 200:
            break
        time.sleep(0.3)
    assert page.status_code == 200 and "T-64" in page.text
    deadline = time.monotonic() + 30
    while not sparql(base, "ASK { id:t-64 kb:category kbc:main-battle-tank }", JSON).convert()["boolean"]:
        assert time.monotonic() < deadline, "the endpoint still answers from the old graph"
        time.sleep(0.3)
    # the server rebuilt as `kb build` does, reusing the parts the change does not touch, the search index
    # afterwards, and recorded it
    log = root.parent / "serve.log"
    deadline = time.monotonic() + 60  # logged after the new workers answer: looked for until then
    while not re.search(r"rebuilt in [0-9.]+ s \(\d+ triples\); the search index follows", log.read_text()):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)
    wait_for_log(log, "search index made", 2)  # (the first: the fixture's, of the first site)
    assert indexed_pages(root / "_site") == indexed + 1
    assert "is up to date" in run_kb("build", cwd=root).stdout
    described = sparql(base, "SELECT ?d WHERE { id:t-64 dcterms:description ?d }", JSON).convert()
    assert [b["d"]["value"] for b in described["results"]["bindings"]] == ["First line.\nSecond line."]

    # a broken entry: the problem is reported, and the last good site and graph are still served
    save(root / "entries" / "systems" / "broken.yaml", "name: Broken\ncategory: tank\nsources: [src-a]\n")
    deadline = time.monotonic() + 60
    while "not rebuilt" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)
    assert "entries/systems/broken.yaml:2: unknown category `tank`" in log.read_text()
    assert httpx.get(f"{base}/id/t-64").status_code == 200
    assert sparql(base, "ASK { id:t-64 ?p ?o }", JSON).convert()["boolean"] is True


def _rebuilds(root, spares: bool = False) -> dict[int, str]:
    """The running rebuilds of `kb serve` in `root` (kb/site/rebuild.py): pid → state (R, S, T stopped …);
    with `spares`, also the processes started ahead for the next one (named `kb-spare` while they wait)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            name = (proc / "comm").read_text().strip()  # a spare is named `kb-rebuild` once it has work
            waiting = name == "kb-spare" or (b"--spare" in command and name != "kb-rebuild")
        except (OSError, IndexError):
            continue
        if b"kb.site.rebuild" in command and str(root).encode() in command and state != "Z" and (spares or not waiting):
            found[int(proc.name)] = state
    return found


def test_a_first_site_is_served_before_its_search_index_which_follows(tmp_path):
    # No site yet: the pages and the graph are served as soon as they are built, and pagefind, which takes as
    # long again at scale, runs after them in the background (here held where it would start,
    # MILKB_FAULT_AT=search-index:stop, as if it were slow). Until it is made the site is not taken for up to
    # date, and the search page says the index is coming (site_build/static/search.js; tests/test_site_browser.py).
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "search-index:stop"})
    try:
        assert re.search(r"built \d+ pages into .* in [0-9.]+ s; the search index follows", log.read_text())
        assert httpx.get(f"{base}/id/t-80bv").status_code == 200
        assert sparql(base, "ASK { id:t-80bv kb:variantOf id:t-80 }", JSON).convert()["boolean"]
        assert 'data-index="pagefind/pagefind.js"' in httpx.get(f"{base}/search.html").text
        deadline = time.monotonic() + 60
        while list(_rebuilds(root).values()) != ["T"]:  # the index's rebuild, held before pagefind
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert not (root / "_site" / "pagefind").exists()
        assert httpx.get(f"{base}/pagefind/pagefind.js").status_code == 404
    finally:
        assert stop(process) == 0, log.read_text()
    assert "search index made" not in log.read_text()
    built = run_kb("build", cwd=root)  # the pages reused, the index made
    assert "search index" in built.stdout and "up to date" not in built.stdout
    assert indexed_pages(root / "_site") > 0


def test_an_edit_while_the_search_index_is_made_stops_that_and_is_shown_at_once(tmp_path):
    # The search index is made after the pages, by a process of its own; here it stops where it would run
    # pagefind (MILKB_FAULT_AT=search-index:stop), as if pagefind were slow. The next edit must not wait for
    # it: the server stops it (its unfinished folder removed) and shows the edit; stopping the server ends the
    # one then running; and the site, its index not made, is not taken for up to date by `kb build`. It runs
    # at a low priority (nice 10 more than the server), which pagefind would inherit.
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    assert run_kb("build", cwd=root).code == 0
    indexed = indexed_pages(root / "_site")
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "search-index:stop"})
    try:
        stopped = []
        for n, name in enumerate(("First", "Second"), 1):
            save(root / "entries" / "systems" / "t-64.yaml", 
                f"name: T-64\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\n"
                f"description: {name} edit.\n", encoding="utf-8")
            deadline = time.monotonic() + 60
            while f"{name} edit." not in httpx.get(f"{base}/id/t-64", timeout=60).text or not sparql(
                    base, f'ASK {{ id:t-64 dcterms:description ?d FILTER(STR(?d) = "{name} edit.") }}', JSON).convert()["boolean"]:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            while not (running := _rebuilds(root)) or list(running.values()) != ["T"]:
                assert time.monotonic() < deadline, (running, log.read_text())
                time.sleep(0.2)
            stopped += running
            assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in running] == [
                min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)]
            assert log.read_text().count("the search index follows") == n
        assert not set(stopped[:1]) & set(_rebuilds(root)), "the first index rebuild still runs"
        assert not (tmp_path / "kb" / f"._site.build-{stopped[0]}").exists()
    finally:
        assert stop(process) == 0, log.read_text()
    assert _rebuilds(root, spares=True) == {}
    assert [p.name for p in root.iterdir() if p.name.startswith("._site.build-")] == []
    assert "search index made" not in log.read_text()
    assert indexed_pages(root / "_site") == indexed  # the index the server kept, without T-64
    built = run_kb("build", cwd=root)
    assert "search index" in built.stdout and "up to date" not in built.stdout
    assert indexed_pages(root / "_site") == indexed + 1


def test_a_server_started_on_a_changed_knowledge_base_serves_at_once_and_makes_the_index_after(tmp_path):
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    assert run_kb("build", cwd=root).code == 0
    indexed = indexed_pages(root / "_site")
    (root / "entries" / "systems" / "t-64.yaml").write_text(
        "name: T-64\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\n", encoding="utf-8")
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log)
    try:
        assert httpx.get(f"{base}/id/t-64").status_code == 200
        deadline = time.monotonic() + 60
        while "search index made" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        assert stop(process) == 0, log.read_text()
    assert re.search(r"built \d+ pages into .* in [0-9.]+ s; the search index follows", log.read_text())
    assert indexed_pages(root / "_site") == indexed + 1
    assert "is up to date" in run_kb("build", cwd=root).stdout


def _apart(func, *args):
    """`func(*args)` in a fresh interpreter: an Oxigraph store on disk starts threads (RocksDB's), after which
    a build that a later test forks in this process could hang."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(func, args)


def _store_dump(folder: str) -> bytes:
    import pyoxigraph as ox

    return ox.Store.read_only(folder).dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())


def _graph_of_store(folder: Path) -> Graph:
    """The default graph of the Oxigraph store in `folder` (opened read-only, as the query workers open it)."""
    return Graph().parse(data=_apart(_store_dump, str(folder)).decode("utf-8"), format="nt")


def _stopped_query_workers(server_pid: int) -> list[int]:
    """The query workers of the server `server_pid` stopped where they would load a rebuilt graph."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == server_pid and fields[0] == "T":
            found.append(int(proc.name))
    return found


def _query_workers(server_pid: int) -> list[int]:
    """The query workers of the server `server_pid` (processes started by multiprocessing's spawn)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            spawned = b"spawn_main" in (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == server_pid and spawned:
            found.append(int(proc.name))
    return found


def _open_in(pid: int, folder: Path) -> bool:
    """Whether process `pid` has a file in `folder` open."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if Path(os.readlink(fd)).is_relative_to(folder):
                return True
        except OSError:
            continue
    return False


def test_the_old_graph_is_answered_until_the_new_one_is_loaded(tmp_path):
    # The query workers loading the rebuilt graph stop before they load it (MILKB_FAULT_AT=worker-reload:stop):
    # meanwhile the old workers still answer, at once, with the old graph, and the search index is not started
    # (it would take CPU from the load); once the new workers go on, the new graph is answered. The new workers
    # are spares, started before the change.
    import signal

    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "worker-reload:stop"})
    ask = 'ASK { id:t-64 dcterms:description ?d FILTER(STR(?d) = "New.") }'
    try:
        wait_for_log(log, "search index made")  # the first site's, made after its pages
        assert sparql(base, ask, JSON).convert()["boolean"] is False
        deadline = time.monotonic() + 60
        while len(before := _query_workers(process.pid)) < 4:  # two workers, two spares
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        save(root / "entries" / "systems" / "t-64.yaml", 
            "name: T-64\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\ndescription: New.\n",
            encoding="utf-8")
        while len(stopped := _stopped_query_workers(process.pid)) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert set(stopped) <= set(before)
        assert "New." in httpx.get(f"{base}/id/t-64", timeout=60).text  # the pages are in place
        for _ in range(5):  # the old workers answer, without waiting for the new ones
            answer = httpx.get(f"{base}/sparql", params={"query": ask}, headers={"Accept": "application/json"},
                               timeout=5)
            assert answer.status_code == 200 and answer.json()["boolean"] is False
        assert "rebuilt in" not in log.read_text() and _rebuilds(root) == {}
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 60  # no query meanwhile: an old worker busy with one keeps its graph's
        while "rebuilt in" not in log.read_text():  # files until the next rebuild (kb/serve.py `drop_older`)
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert sparql(base, ask, JSON).convert()["boolean"]
        wait_for_log(log, "search index made", 2)
        deadline = time.monotonic() + 60
        # the server keeps the new graph only, now: a link to the dump, and a copy of the query store the rebuild
        # saved, the very triples of the dump, which the workers answered from at once
        kept = sorted((root / ".kb-cache").glob("serve-*.graphs/graph-*"))
        assert [path.suffix for path in kept] == [".nt", ".store"]
        assert kept[0].read_bytes() == (root / "_site" / "milkb.nt").read_bytes()
        assert isomorphic(_graph_of_store(kept[1]), Graph().parse(kept[0], format="nt"))
        # … until each had loaded the dump into memory: then it closed the store on disk
        workers = _query_workers(process.pid)
        while any(_open_in(pid, kept[1]) for pid in workers):
            assert time.monotonic() < deadline, log.read_text()
            for _ in workers:  # a worker closes it before it answers
                assert sparql(base, ask, JSON).convert()["boolean"]
            time.sleep(0.2)
    finally:
        assert stop(process) == 0, log.read_text()
    assert re.search(r"rebuilt in [0-9.]+ s \(\d+ triples\); the search index follows", log.read_text())
    assert list((root / ".kb-cache").glob("serve-*")) == []  # removed when the server stops


def test_a_rebuild_runs_in_a_process_started_ahead_with_its_imports_done(tmp_path, monkeypatch):
    # kb/serve.py `Rebuilds`: the next rebuild's process is started ahead (kb/site/rebuild.py `--spare`) and
    # given its arguments when a change comes; if milkb's code changed while it waited, it runs the rebuild as a
    # process of the new code (the caches are stamped with the code on disk). While it waits it loads the
    # caches the rebuild reads: the parse cache, the packed graph of its entries (kb/packed.py), and the site's
    # kept state once a build with the search index (as the server's) has kept one.
    from kb.serve import Rebuilds

    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    assert run_kb("build", "--no-search", cwd=root).code == 0
    for _ in range(300):  # kept by a process of its own, after the build's full load
        if (root / ".kb-cache" / "graph.packed").is_file():
            break
        time.sleep(0.1)
    code = tmp_path / "code"  # milkb as a spare imports it, from a copy this test can change
    shutil.copytree(REPO / "kb", code / "kb", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", str(code))
    rebuilds = Rebuilds(root, root / "_site", lambda said: None)
    spares = []
    try:
        # T-64A is a new entry (every entry is loaded: the parse cache is taken), T-64B an edit (the edit path
        # takes the parse cache's head and the packed graph, the build the site's state)
        for name, changed, preloaded in (("T-64A", False, 1), ("T-64B", False, 3), ("T-64BV", True, 0)):
            rebuilds.start_spare()
            spares.append(rebuilds._spare)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{spares[-1].pid}/comm").read_text().strip() != "kb-spare":  # until it waits, so
                assert spares[-1].poll() is None and time.monotonic() < deadline  # named (as `ps` shows it)
                time.sleep(0.05)
            assert spares[-1].pid in _rebuilds(root, spares=True) and spares[-1].pid not in _rebuilds(root)
            if changed:
                (code / "kb" / "site" / "build.py").touch()
            (root / "entries" / "systems" / "t-64.yaml").write_text(
                f"name: {name}\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\n", encoding="utf-8")
            outcome = rebuilds.pages()
            assert outcome["status"] == "built" and outcome["pid"] == spares[-1].pid
            assert outcome["ahead"] is not changed and outcome["preloaded"] == preloaded
            assert name in (root / "_site" / "id" / "t-64.html").read_text(encoding="utf-8")
        rebuilds.start_spare()
        last = rebuilds._spare
        assert last.pid not in [spare.pid for spare in spares]
    finally:
        rebuilds.close()
    assert last.poll() is not None and rebuilds._spare is None  # stopped with the server
    rebuilds.start_spare()
    assert rebuilds._spare is None  # none started after


def test_a_rebuild_that_dies_is_reported_and_the_previous_site_and_graph_stay(tmp_path):
    # the rebuild's process is killed mid-way (MILKB_FAULT_AT=entity-pages-written: SIGKILL, as the kernel's
    # out-of-memory killer would): the server says so, and keeps serving what it served
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    assert run_kb("build", cwd=root).code == 0
    log = tmp_path / "serve.log"
    process, base = start_kb_serve(root, log=log, env={"MILKB_FAULT_AT": "entity-pages-written"})
    try:
        save(root / "entries" / "systems" / "t-64.yaml", 
            "name: T-64\ncategory: main-battle-tank\norigin: soviet-union\nsources: [src-a]\n", encoding="utf-8")
        deadline = time.monotonic() + 60
        while "not rebuilt" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert httpx.get(f"{base}/id/t-80").status_code == 200
        assert httpx.get(f"{base}/id/t-64").status_code == 404
        assert sparql(base, "ASK { id:t-80 ?p ?o }", JSON).convert()["boolean"] is True
    finally:
        assert stop(process) == 0, log.read_text()
    assert "not rebuilt (the rebuild was killed by signal 9): the previous site and graph are still served" \
        in log.read_text()


def test_a_server_started_on_a_broken_knowledge_base_reports_every_problem_and_exits(tmp_path):
    # the start-up build runs in a forked child (kb/serve.py `update_apart`): its problems come back as
    # `path:line: message`, as `kb build` prints them, with no traceback and nothing served
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    (root / "entries" / "systems" / "broken.yaml").write_text("name: Broken\ncategory: tank\nsources: [src-a]\n")
    (root / "entries" / "systems" / "t-64.yaml").write_text("name: T-64\ncategory: main-battle-tank\nsize: 3\n")
    result = run_kb("serve", "--port", "0", cwd=root)
    assert result.code == 1
    assert "entries/systems/broken.yaml:2: unknown category `tank`" in result.stderr
    assert "entries/systems/t-64.yaml:3: unknown key `size`" in result.stderr
    assert "Traceback" not in result.stderr and "serving" not in result.stderr
    assert not (root / "_site").exists()


def test_the_workers_answer_from_the_saved_store_only_if_it_holds_the_graph_the_build_left(tmp_path):
    # kb/serve.py `Graphs.take`: a copy of the query store the build saved when it holds the entries the build
    # says it made the site from and the dump is still the one it wrote; else the dump itself
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    _apart(_graphs_taken, root)


def _graphs_taken(root: Path) -> None:
    from kb.config import load_config
    from kb.serve import Graphs
    from kb.site.update import update_site

    config = load_config(root)
    site = root / "_site"
    made = update_site(config, site, search=False).made()
    dump = Graph().parse(site / "milkb.nt", format="nt")
    graphs = Graphs(config)
    try:
        first = taken = graphs.take(site, made)
        assert taken.suffix == ".store"
        assert isomorphic(Graph().parse(data=_store_dump(str(taken)).decode("utf-8"), format="nt"), dump)
        assert taken.with_suffix(".nt").read_bytes() == (site / "milkb.nt").read_bytes()  # loaded meanwhile
        assert graphs.take(site, made) is None  # the same dump: the graph the workers have
        for other in ([("0" * 64), made[1]], [made[0], [*made[1][:3], made[1][3] + 1]], None):
            graphs.identity = None  # as if the dump had changed
            taken = graphs.take(site, other)  # other entries, another dump, or nothing said: the dump
            assert taken.suffix == ".nt" and taken.read_bytes() == (site / "milkb.nt").read_bytes()
        graphs.identity = None
        assert graphs.take(site, made).suffix == ".store"
        graphs.drop_older({first})  # a worker still holds the first graph: it stays, with its dump
        assert sorted(path.name for path in graphs.folder.iterdir()) == sorted(
            [first.name, f"{first.stem}.nt", f"{graphs.path.stem}.nt", graphs.path.name])
        graphs.drop_older(set())  # the last graph only, when no worker holds another
        assert sorted(path.name for path in graphs.folder.iterdir()) == [f"{graphs.path.stem}.nt", graphs.path.name]
        # a command saving the store meanwhile holds its lock: not waited for, the dump is taken
        import fcntl

        graphs.identity = None
        with open(config.cache_dir / "store.lock", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            assert graphs.take(site, made).suffix == ".nt"
    finally:
        graphs.close()
    assert not graphs.folder.exists()


def test_a_page_swapped_in_while_it_is_sent_goes_out_whole(tmp_path):
    # kb/serve.py `OpenedFile`: a rebuild swaps in a new site between the moment a page is found and the
    # moment its bytes are read; the answer is the page found, whole, with its own length (Starlette's
    # FileResponse sent the old length and the new bytes: the connection broke, seen by hand at 10,000 systems)
    import asyncio

    from kb.serve import SiteFiles

    site = tmp_path / "_site"
    site.mkdir()
    (site / "page.html").write_bytes(b"old " * 1000)
    files = SiteFiles(directory=site, html=True, check_dir=False)
    scope = {"type": "http", "method": "GET", "path": "/page.html", "headers": [], "asgi": {"spec_version": "2.4"}}

    async def fetch() -> list[dict]:
        response = await files.get_response("page.html", scope)
        new = tmp_path / "new"
        new.mkdir()
        (new / "page.html").write_bytes(b"new page " * 3000)
        os.rename(site, tmp_path / "old")  # the swap (kb/site/output.py exchanges the two folders)
        os.rename(new, site)
        sent = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        await response(scope, receive, send)
        return sent

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (the browser tests' may be running in this thread)
        sent = pool.submit(asyncio.run, fetch()).result()
    headers = dict(sent[0]["headers"])
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert sent[0]["status"] == 200 and body == b"old " * 1000
    assert int(headers[b"content-length"]) == len(body)
    assert headers[b"content-type"] == b"text/html; charset=utf-8"


def test_a_file_is_not_read_on_for_a_client_that_has_gone(tmp_path):
    # kb/serve.py `OpenedFile` under a server of ASGI spec before 2.4 (uvicorn's send then returns quietly
    # after a disconnect): it stops reading when told the client has gone, and closes the file
    import asyncio

    from kb.serve import OpenedFile

    dump = tmp_path / "milkb.pf_index"
    dump.write_bytes(b"x" * (OpenedFile.chunk_size * 20))
    response = OpenedFile(dump)
    assert response.media_type == "application/octet-stream"  # pagefind's files, as Starlette sends them
    scope = {"type": "http", "method": "GET", "headers": [], "asgi": {"spec_version": "2.3"}}
    sent = []

    async def send(message: dict) -> None:
        sent.append(message)
        await asyncio.sleep(0.01)

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, response(scope, receive, send)).result()
    assert sum(len(message.get("body", b"")) for message in sent) < dump.stat().st_size
    assert response.file.closed


@pytest.mark.parametrize("asked, status, content_range, part", [
    ({"range": "bytes=10-19"}, 206, "bytes 10-19/1000", slice(10, 20)),
    ({"range": "bytes=990-"}, 206, "bytes 990-999/1000", slice(990, 1000)),
    ({"range": "bytes=-5"}, 206, "bytes 995-999/1000", slice(995, 1000)),
    ({"range": "bytes=995-2000"}, 206, "bytes 995-999/1000", slice(995, 1000)),
    ({"range": "bytes=1000-"}, 416, "bytes */1000", slice(0, 0)),
    ({"range": "bytes=0-1,5-6"}, 200, None, slice(0, 1000)),  # several ranges: the whole file
    ({"range": "bytes=10-19", "if-range": '"another version"'}, 200, None, slice(0, 1000)),
    ({"range": "pages=1"}, 200, None, slice(0, 1000)),
])
def test_one_range_of_a_file_is_sent_as_asked(tmp_path, asked, status, content_range, part):
    # kb/serve.py `OpenedFile`: resuming a download of a dump from `kb serve`
    import asyncio

    from kb.serve import OpenedFile

    data = bytes(range(250)) * 4
    (tmp_path / "milkb.nt").write_bytes(data)
    response = OpenedFile(tmp_path / "milkb.nt")
    headers = [(k.encode(), v.encode()) for k, v in asked.items()]
    scope = {"type": "http", "method": "GET", "headers": headers, "asgi": {"spec_version": "2.4"}}
    sent = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, response(scope, receive, send)).result()
    answered = dict(sent[0]["headers"])
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert sent[0]["status"] == status and body == data[part]
    assert int(answered[b"content-length"]) == len(body) and not sent[-1]["more_body"]
    assert answered.get(b"content-range", b"").decode() == (content_range or "")
    assert answered[b"accept-ranges"] == b"bytes"
