"""`kb publish` into a real Oxigraph server: through the Graph Store Protocol and through SPARQL Update, read back
over HTTP and compared with the local graph; replacing, not adding; credentials through a real Basic-auth proxy;
each failure as its own one-line error; and `kill -9` mid-way leaving the old graph or the new one, never a mix."""
from __future__ import annotations

import base64
import http.client
import http.server
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from rdflib import BNode, Graph, Literal
from rdflib.compare import isomorphic

from kb.knowledge_base import load_valid_kb

from .conftest import TEST_CACHE_HOME, add_synthetic_systems, kb_executable, make_root, run_kb
from .server_helpers import free_port, start_oxigraph, stop

DATASET = "https://w3id.org/milkb/dataset"  # dataset_iri in tests/data/kb/kb.toml


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory):
    process, base = start_oxigraph(tmp_path_factory.mktemp("oxigraph"))
    yield base
    stop(process)


def stored(base: str, graph: str) -> Graph:
    """The named graph as the store gives it back over HTTP (Graph Store Protocol GET)."""
    response = httpx.get(f"{base}/store", params={"graph": graph}, headers={"Accept": "application/n-triples"},
                         timeout=60)
    if response.status_code == 404:
        return Graph()
    response.raise_for_status()
    return Graph().parse(data=response.text, format="nt")


def count(base: str, graph: str) -> int:
    """The triple count, asked through the store's SPARQL query endpoint."""
    response = httpx.post(f"{base}/query", data={"query": f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=60)
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def by_value(graph: Graph) -> Graph:
    """The graph with xsd:decimal literals in one lexical form: Oxigraph returns decimals in XSD 1.1 canonical
    form (`46`), we write XSD 1.0's (`46.0`); the values, and so the triples, are the same."""
    from rdflib.namespace import XSD  # not at module level: pytest's collection probes module names

    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.decimal:
            o = Literal(format(Decimal(str(o)).normalize(), "f"), datatype=XSD.decimal)
        out.add((s, p, o))
    return out


def same(a: Graph, b: Graph) -> bool:
    return len(a) == len(b) and isomorphic(by_value(a), by_value(b))


def change(root: Path) -> None:
    """Remove an entry, change a figure and add a description of two lines (a literal N-Triples must escape):
    republishing must drop the old triples."""
    (root / "entries" / "systems" / "tos-1.yaml").unlink()
    path = root / "entries" / "systems" / "t-72.yaml"
    path.write_text(path.read_text().replace("crew: 3", "crew: 4") + "description: |\n  First line.\n  Second line.\n")


def test_publish_through_the_graph_store_protocol_replaces_the_named_graph(oxigraph, tmp_path):
    root = make_root(tmp_path)
    local = load_valid_kb(root).graph
    result = run_kb("publish", "--store", f"{oxigraph}/store", cwd=root)
    assert result.code == 0, result.stderr
    assert f"published {len(local)} triples into <{DATASET}>" in result.stdout
    assert f"the store holds {len(local)} triples there" in result.stdout
    assert same(stored(oxigraph, DATASET), local)

    again = run_kb("publish", "--store", f"{oxigraph}/store", cwd=root)  # idempotent
    assert again.code == 0, again.stderr
    assert count(oxigraph, DATASET) == len(local)
    assert same(stored(oxigraph, DATASET), local)

    change(root)
    changed = load_valid_kb(root).graph
    result = run_kb("publish", "--store", f"{oxigraph}/store", cwd=root)
    assert result.code == 0, result.stderr
    back = stored(oxigraph, DATASET)
    assert same(back, changed)
    assert not any("tos-1" in str(s) for s in back.subjects())


def test_publish_through_sparql_update_replaces_the_named_graph(oxigraph, tmp_path):
    root = make_root(tmp_path)
    graph = "https://example.org/graphs/milkb-by-update"
    args = ("publish", "--update", f"{oxigraph}/update", "--query", f"{oxigraph}/query", "--graph", graph)
    local = load_valid_kb(root).graph
    for _ in range(2):  # twice: the same state
        result = run_kb(*args, cwd=root)
        assert result.code == 0, result.stderr
        assert "SPARQL Update" in result.stdout
        assert same(stored(oxigraph, graph), local)
    change(root)
    result = run_kb(*args, cwd=root)
    assert result.code == 0, result.stderr
    assert same(stored(oxigraph, graph), load_valid_kb(root).graph)


def test_other_graphs_in_the_store_are_left_alone(oxigraph, tmp_path):
    root = make_root(tmp_path)
    httpx.put(f"{oxigraph}/store", params={"graph": "urn:x-test:other"}, content=b"<urn:a> <urn:b> <urn:c> .\n",
              headers={"Content-Type": "application/n-triples"}).raise_for_status()
    assert run_kb("publish", "--store", f"{oxigraph}/store", "--graph", "urn:x-test:mine", cwd=root).code == 0
    assert len(stored(oxigraph, "urn:x-test:other")) == 1


# --- credentials, through a real proxy that demands Basic auth ------------------------------------------


class BasicAuthProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the store only requests carrying the right Basic credentials; 401 otherwise."""

    target: tuple[str, int]
    expected = "Basic " + base64.b64encode(b"milkb:s3cret p@ss").decode()
    protocol_version = "HTTP/1.1"

    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="store"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        connection = http.client.HTTPConnection(*self.target, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host", "connection")}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_PUT = do_POST = forward

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(oxigraph):
    host, port = oxigraph.removeprefix("http://").split(":")
    handler = type("Proxy", (BasicAuthProxy,), {"target": (host, int(port))})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_credentials_from_the_environment(proxy, oxigraph, tmp_path):
    root = make_root(tmp_path)
    env = {"KB_STORE_USER": "milkb", "KB_STORE_PASSWORD": "s3cret p@ss"}
    result = run_kb("publish", "--store", f"{proxy}/store", "--graph", "urn:x-test:auth-env", cwd=root, env=env)
    assert result.code == 0, result.stderr
    assert same(stored(oxigraph, "urn:x-test:auth-env"), load_valid_kb(root).graph)


def test_credentials_from_netrc(proxy, oxigraph, tmp_path):
    root = make_root(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text('machine 127.0.0.1 login milkb password "s3cret p@ss"\n')
    netrc.chmod(0o600)
    result = run_kb("publish", "--store", f"{proxy}/store", "--graph", "urn:x-test:auth-netrc", cwd=root,
                    env={"HOME": str(home)})
    assert result.code == 0, result.stderr
    assert count(oxigraph, "urn:x-test:auth-netrc") == len(load_valid_kb(root).graph)


def test_refused_credentials_are_a_clear_error(proxy, oxigraph, tmp_path):
    root = make_root(tmp_path)
    env = {"KB_STORE_USER": "milkb", "KB_STORE_PASSWORD": "wrong"}
    result = run_kb("publish", "--store", f"{proxy}/store", "--graph", "urn:x-test:refused", cwd=root, env=env)
    assert result.code == 1
    assert f"the store at {proxy}/store refused the credentials (HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr and "wrong" not in result.stderr
    assert count(oxigraph, "urn:x-test:refused") == 0

    result = run_kb("publish", "--store", f"{proxy}/store", "--graph", "urn:x-test:refused", cwd=root)
    assert result.code == 1
    assert f"the store at {proxy}/store requires authentication (HTTP 401)" in result.stderr


def test_half_given_credentials_are_a_usage_error(tmp_path):
    result = run_kb("publish", "--store", "http://127.0.0.1:9/store", cwd=make_root(tmp_path),
                    env={"KB_STORE_USER": "milkb"})
    assert result.code == 2
    assert "set both KB_STORE_USER and KB_STORE_PASSWORD" in result.stderr


# --- failures: each its own message, exit 1, no traceback -----------------------------------------------


def test_unreachable_store(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/store"  # nothing listens there
    result = run_kb("publish", "--store", url, cwd=make_root(tmp_path))
    assert result.code == 1
    assert f"cannot reach the store at {url}: Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_store_that_does_not_answer_times_out(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/store"
        result = run_kb("publish", "--store", url, "--timeout", "1", cwd=make_root(tmp_path))
    assert result.code == 1
    assert f"the store at {url} did not answer within 1 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_store_rejecting_the_request_shows_its_message(oxigraph, tmp_path):
    # an update sent to the Graph Store endpoint: Oxigraph answers 415 with its reason
    result = run_kb("publish", "--update", f"{oxigraph}/store", "--query", f"{oxigraph}/query",
                    cwd=make_root(tmp_path))
    assert result.code == 1
    assert f"the store at {oxigraph}/store rejected the request (HTTP 415): " in result.stderr
    assert "application/sparql-update" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors(tmp_path):
    root = make_root(tmp_path)
    assert run_kb("publish", cwd=root).code == 2
    result = run_kb("publish", "--update", "http://127.0.0.1:9/update", cwd=root)
    assert result.code == 2 and "--update needs --query" in result.stderr
    result = run_kb("publish", "--store", "http://127.0.0.1:9/store", "--graph", "not an iri", cwd=root)
    assert result.code == 2 and "is not an absolute IRI" in result.stderr


# --- interrupted: killed mid-way, the store holds the old graph or the new one, never a mix -------------

PUBLISH_SYSTEMS = 300  # ≈ 500 kB of N-Triples: two chunks, so the fault point can fall between them
KILLS = 8


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two knowledge-base roots, old and new (an entry removed, a figure changed), and the triples of each."""
    roots = {}
    for state in ("old", "new"):
        root = make_root(tmp_path_factory.mktemp(state))
        add_synthetic_systems(root, PUBLISH_SYSTEMS)
        if state == "new":
            change(root)
        roots[state] = root
    graphs = {state: load_valid_kb(root).graph for state, root in roots.items()}
    assert not any(isinstance(term, BNode) for g in graphs.values() for triple in g for term in triple)
    versions = {state: set(by_value(g)) for state, g in graphs.items()}  # no blank nodes: compared as sets
    assert versions["old"] != versions["new"]
    return roots, versions


def publish_args(base: str, mode: str, graph: str) -> tuple[str, ...]:
    if mode == "store":
        return ("publish", "--store", f"{base}/store", "--graph", graph)
    return ("publish", "--update", f"{base}/update", "--query", f"{base}/query", "--graph", graph)


def holding(base: str, graph: str, versions: dict[str, set]) -> str:
    """Which version the store holds in `graph`, settled (a request the store had whole may still be loading);
    every read along the way must be one of the versions, triple for triple."""
    seen = []
    for _ in range(50):
        back = set(by_value(stored(base, graph)))
        state = next((s for s, triples in versions.items() if back == triples), None)
        assert state is not None, f"the store holds a mix: {len(back)} triples"
        if seen and seen[-1] == state:
            return state
        seen.append(state)
        time.sleep(0.2)
    raise AssertionError(f"the store did not settle: {seen}")


def start_publish(root: Path, args: tuple[str, ...]) -> subprocess.Popen:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root), "XDG_CACHE_HOME": str(TEST_CACHE_HOME)}
    return subprocess.Popen([kb_executable(), *args], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until_sending(process: subprocess.Popen) -> None:
    """Read stderr up to `publishing N triples …`, printed once the graph is loaded, right before the upload."""
    for line in process.stderr:
        if line.startswith("publishing "):
            return
    raise AssertionError(f"kb publish ended before sending: {process.wait()}")


@pytest.mark.parametrize("mode", ["store", "update"])
def test_publish_killed_mid_transfer_leaves_the_old_graph(oxigraph, versions, mode):
    roots, triples = versions
    graph = f"urn:x-test:cut-{mode}"
    args = publish_args(oxigraph, mode, graph)
    assert run_kb(*args, cwd=roots["old"]).code == 0
    killed = run_kb(*args, cwd=roots["new"], env={"MILKB_FAULT_AT": "publish-mid-transfer"})
    assert killed.code == -signal.SIGKILL, killed.stderr
    assert holding(oxigraph, graph, triples) == "old"


def test_publish_killed_at_random_moments(oxigraph, versions):
    roots, triples = versions
    graph = "urn:x-test:killed"
    started = time.monotonic()
    process = start_publish(roots["old"], publish_args(oxigraph, "store", graph))
    wait_until_sending(process)
    sending = time.monotonic()
    assert process.wait() == 0, process.stderr.read()
    window = 1.5 * (time.monotonic() - sending)  # serialising, sending, the store loading, the count check
    assert holding(oxigraph, graph, triples) == "old"
    state, rng, outcomes = "old", random.Random(9), []
    for attempt in range(KILLS):
        target = "new" if state == "old" else "old"
        process = start_publish(roots[target], publish_args(oxigraph, ("store", "update")[attempt % 2], graph))
        wait_until_sending(process)
        time.sleep(rng.uniform(0, window))
        process.kill()
        process.communicate()
        state = holding(oxigraph, graph, triples)
        outcomes.append("new" if state == target else "old")
    print(f"\n{KILLS} publishes killed within {window:.2f} s of starting to send "
          f"({time.monotonic() - started:.0f} s in all): the store kept the old graph "
          f"{outcomes.count('old')} times and had the whole new one {outcomes.count('new')} times")
