"""Each command through the real `kb` entry point: output, formats and exit codes."""
import csv
import io
import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest
from rdflib import Graph

from .conftest import REPO, run_kb


def test_validate_passes_on_a_good_knowledge_base(kb_root):
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("ok: 13 entries")


def test_root_is_found_from_a_subfolder_and_by_option(kb_root, tmp_path):
    assert run_kb("validate", cwd=kb_root / "entries" / "systems").code == 0
    assert run_kb("--root", str(kb_root), "validate", cwd=tmp_path).code == 0


def test_outside_a_knowledge_base_is_a_usage_error(tmp_path):
    result = run_kb("validate", cwd=tmp_path)
    assert result.code == 2
    assert "no kb.toml found" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help():
    for command in ("validate", "show", "search", "query", "export", "stats", "new"):
        result = run_kb(command, "--help")
        assert result.code == 0 and "Usage" in result.stdout, command


def test_show_by_id_name_alias_in_any_script(kb_root):
    for name in ("tos-1", "TOS-1", "ТОС-1", "Buratino", "buratino", "тос-1"):
        result = run_kb("show", name, cwd=kb_root)
        assert result.code == 0, (name, result.stderr)
        assert result.stdout.splitlines()[0].startswith("TOS-1  (tos-1)"), name


def test_show_prints_resolved_names_units_and_qualifiers(kb_root):
    out = run_kb("show", "t-80", cwd=kb_root).stdout
    assert "Soviet Union (soviet-union)" in out
    assert "46 t [preferred; source: Source A]" in out
    assert "42.5 t [source: Source B; note: T-80B figure]" in out
    assert "1,000 hp (746 kW)" in out  # as stated, then converted to its precision
    assert "Ukraine (ukraine) [note: captured vehicles; since: 2022]" in out
    assert "T-80BV (t-80bv)" in out  # incoming: variants
    assert "Captured T-80 used near Bakhmut" in out  # incoming: events


def test_show_lists_the_events_of_the_variants(kb_root):
    """Below the events that name the T-80, those that name only its variant, as its page on the site lists them."""
    (kb_root / "entries" / "events" / "t-80bv-abandoned.yaml").write_text(
        "name: T-80BV abandoned\ndate: 2022-09\nsystems: [t-80bv]\nactor: russia\naction: abandoned\n"
        "sources: [src-a]\n", encoding="utf-8")
    out = run_kb("show", "t-80", cwd=kb_root).stdout
    lines = out.splitlines()
    variant_events = [l for l in lines if l.startswith("events of variants")]
    assert variant_events and "T-80BV abandoned (t-80bv-abandoned)" in variant_events[0]
    assert "Captured T-80 used near Bakhmut" not in variant_events[0]
    assert "events of variants" not in run_kb("show", "t-80bv", cwd=kb_root).stdout


def test_show_miss_suggests_and_exits_1(kb_root):
    result = run_kb("show", "t-8O", cwd=kb_root)
    assert result.code == 1
    assert "no entity named `t-8O` — did you mean `t-80`" in result.stderr


def test_show_json_is_the_entitys_json_ld(kb_root):
    data = json.loads(run_kb("show", "t-80", "--format", "json", cwd=kb_root).stdout)
    graph = Graph().parse(data=json.dumps(data), format="json-ld")
    subjects = {str(s) for s in graph.subjects()}
    assert "https://w3id.org/milkb/id/t-80" in subjects
    assert "https://w3id.org/milkb/id/t-80#combatMass-2" in subjects
    assert all(s.startswith("https://w3id.org/milkb/id/t-80") for s in subjects)


def test_show_turtle_parses(kb_root):
    out = run_kb("show", "bakhmut", "--format", "turtle", cwd=kb_root).stdout
    graph = Graph().parse(data=out, format="turtle")
    assert len(graph) > 5
    assert "POINT(38.0003 48.5956)" in out


def test_search_ranks_name_before_alias_before_description(kb_root):
    result = run_kb("search", "t-80", cwd=kb_root)
    ids = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert ids[0] == "t-80"
    assert "t-80bv" in ids
    result = run_kb("search", "gas turbine", cwd=kb_root)
    assert result.stdout.splitlines()[1].split()[0] == "t-80"
    assert run_kb("search", "nothing-like-this", cwd=kb_root).code == 1


def test_query_table_with_prefixes_prebound(kb_root):
    result = run_kb("query", "SELECT ?s ?mass WHERE { ?s kb:combatMass ?mass }", cwd=kb_root)
    assert result.code == 0, result.stderr
    assert "t-80" in result.stdout and "46" in result.stdout


def test_query_csv_tsv_json_xml_are_w3c_result_formats(kb_root):
    q = "SELECT ?s ?crew WHERE { ?s kb:crew ?crew } ORDER BY ?s"
    rows = list(csv.DictReader(io.StringIO(run_kb("query", q, "--format", "csv", cwd=kb_root).stdout)))
    assert rows == [{"s": "https://w3id.org/milkb/id/t-72", "crew": "3"},
                    {"s": "https://w3id.org/milkb/id/t-80", "crew": "3"}]
    tsv = run_kb("query", q, "--format", "tsv", cwd=kb_root).stdout.splitlines()
    assert tsv[0] == "?s\t?crew"
    assert tsv[1].startswith("<https://w3id.org/milkb/id/t-72>\t3")
    data = json.loads(run_kb("query", q, "--format", "json", cwd=kb_root).stdout)
    assert data["head"]["vars"] == ["s", "crew"]
    assert data["results"]["bindings"][0]["crew"]["datatype"] == "http://www.w3.org/2001/XMLSchema#integer"
    root = ET.fromstring(run_kb("query", q, "--format", "xml", cwd=kb_root).stdout)
    assert root.tag == "{http://www.w3.org/2005/sparql-results#}sparql"


def test_query_ask_and_construct(kb_root):
    assert run_kb("query", "ASK { ?s kb:variantOf ?p }", cwd=kb_root).stdout.strip() == "yes"
    out = run_kb("query", "CONSTRUCT { ?s kb:variantOf ?p } WHERE { ?s kb:variantOf ?p }", "--format", "nt",
                 cwd=kb_root).stdout
    assert out.strip() == "<https://w3id.org/milkb/id/t-80bv> <https://w3id.org/milkb/ontology#variantOf> " \
                          "<https://w3id.org/milkb/id/t-80> ."


def test_query_from_file_and_saved(kb_root):
    (kb_root / "q.rq").write_text("SELECT ?s WHERE { ?s kb:launchTubes 30 }")
    assert "tos-1" in run_kb("query", "-f", "q.rq", cwd=kb_root).stdout
    result = run_kb("query", "--saved", "tanks", "--format", "csv", cwd=kb_root)
    assert result.stdout.splitlines()[1:] == ["https://w3id.org/milkb/id/t-72,3", "https://w3id.org/milkb/id/t-80,3",
                                              "https://w3id.org/milkb/id/t-80bv,"]
    missing = run_kb("query", "--saved", "tank", cwd=kb_root)
    assert missing.code == 2 and "did you mean `tanks`" in missing.stderr


def test_query_syntax_error_gives_line_and_column(kb_root):
    (kb_root / "bad.rq").write_text("SELECT ?s\nWHERE { ?s kb:crew ?c . FILTER( }\n")
    result = run_kb("query", "-f", "bad.rq", cwd=kb_root)
    assert result.code == 1
    assert result.stderr.startswith("bad.rq:2: SPARQL syntax error at column")
    assert "Traceback" not in result.stderr


def test_query_needs_exactly_one_source(kb_root):
    assert run_kb("query", cwd=kb_root).code == 2


def test_export_formats_parse_and_are_deterministic(kb_root):
    triples = int(run_kb("validate", cwd=kb_root).stdout.split(" entries, ")[1].split()[0])
    for fmt, parser in (("turtle", "turtle"), ("nt", "nt"), ("jsonld", "json-ld"), ("xml", "xml")):
        first = run_kb("export", "--format", fmt, cwd=kb_root)
        assert first.code == 0, first.stderr
        assert run_kb("export", "--format", fmt, cwd=kb_root).stdout == first.stdout, fmt
        graph = Graph().parse(data=first.stdout, format=parser)
        assert len(graph) == triples, fmt


def test_export_writes_the_graph_as_the_library_writes_its_triples(kb_root):
    # `kb export` writes the build's sorted lines through Oxigraph; the library's `export_graph` sorts and
    # writes the triples themselves: the same text, a literal spanning lines (Turtle's long string) included
    from kb.export import export_graph
    from kb.knowledge_base import load_valid_kb

    # (rdflib's `n3()` writes a text of several lines ending in a backslash and a quote as a long string that
    # is not Turtle: the build and the export failed on it); a language tag in capitals is kept in lower case,
    # as Oxigraph keeps it (else the JSON-LD written from the triples said `en-GB`, from the lines `en-gb`)
    path = kb_root / "entries" / "systems" / "t-72.yaml"
    text = path.read_text().replace("  - {label: Т-72, lang: ru}\n", "  - {label: Т-72, lang: ru}\n  - {label: T72, lang: en-GB}\n")
    path.write_text(text + 'description: |\n  First line, "quoted".\n  Second line ends \\"\n')
    graph = load_valid_kb(kb_root).index
    for fmt in ("turtle", "nt", "jsonld", "xml"):
        assert run_kb("export", "--format", fmt, cwd=kb_root).stdout == export_graph(graph, fmt), fmt
    nt = run_kb("export", "--format", "nt", cwd=kb_root).stdout
    assert '"First line, \\"quoted\\".\\nSecond line ends \\\\\\""@en' in nt and '"T72"@en-gb' in nt
    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0


def test_export_to_file(kb_root):
    result = run_kb("export", "-o", "out/graph.nt", "--format", "nt", cwd=kb_root)
    assert result.code == 0
    lines = (kb_root / "out" / "graph.nt").read_text().splitlines()
    assert lines == sorted(lines)


def test_stats_counts_and_coverage(kb_root):
    out = run_kb("stats", cwd=kb_root).stdout
    assert "4 weapon systems and 1 components" in out
    assert any(line.split() == ["main", "battle", "tank", "3"] for line in out.splitlines())
    assert [l for l in out.splitlines() if l.startswith("sources ")][0].split()[1:] == ["100", "%", "4/4"]
    assert [l for l in out.splitlines() if l.startswith("crew ")][0].split()[1:] == ["50", "%", "2/4"]
    assert [l for l in out.splitlines() if l.startswith("named by a reported event")][0].split()[-3:] == \
        ["25", "%", "1/4"]  # the T-80, by the one event


def test_new_writes_a_valid_skeleton(kb_root):
    for args in (["source", "Reuters, 6 Nov 2022"], ["system", "BMP-2", "--source", "src-a", "--category",
                 "infantry-fighting-vehicle"], ["country", "Poland"], ["organization", "Huta Stalowa Wola",
                 "--source", "src-a"], ["place", "Kherson", "--source", "src-a"],
                 ["event", "Something happened", "--source", "src-a", "--system", "t-80"]):
        result = run_kb("new", *args, cwd=kb_root)
        assert result.code == 0, (args, result.stderr)
    assert (kb_root / "entries/sources/reuters-6-nov-2022.yaml").exists()
    assert run_kb("validate", cwd=kb_root).code == 0
    assert run_kb("show", "BMP-2", cwd=kb_root).code == 0


def test_new_refuses_taken_ids_and_missing_sources(kb_root):
    assert run_kb("new", "country", "T-72", cwd=kb_root).code == 2
    result = run_kb("new", "system", "Thing", cwd=kb_root)
    assert result.code == 2 and "--source" in result.stderr


def test_show_lists_several_matches_and_exits_1(kb_root):
    (kb_root / "entries/systems/tos-1-copy.yaml").write_text(
        "name: Another launcher\naliases: [Buratino]\ncategory: heavy-flamethrower-system\nsources: [src-a]\n")
    result = run_kb("show", "buratino", cwd=kb_root)
    assert result.code == 1
    assert "`buratino` names 2 entities: tos-1 (TOS-1); tos-1-copy (Another launcher)" in result.stderr
    assert run_kb("show", "tos-1", cwd=kb_root).code == 0  # an exact id still wins


def test_a_broken_entry_stops_reading_commands_with_its_problems(kb_root):
    (kb_root / "entries/systems/t-80.yaml").write_text("name: T-80\ncategory: tank\nsources: [src-a]\n")
    result = run_kb("show", "t-72", cwd=kb_root)
    assert result.code == 1
    assert "entries/systems/t-80.yaml:2: unknown category `tank`" in result.stderr


READERS = [("export", "--format", "nt"), ("query", "--format", "csv", "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"),
           ("query", "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"), ("show", "tos-1"), ("search", "t")]


@pytest.mark.parametrize("args", READERS, ids=lambda args: " ".join(args[:2]))
def test_a_reader_that_stops_reading_ends_the_command_quietly(kb_root, args):
    """`kb export | head`: once the pipe's reader has gone, the command ends with status 1 and says nothing
    (no "Broken pipe", no traceback), as rich and Python's documentation end on EPIPE."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line is written
    try:
        result = run_kb(*args, cwd=kb_root, stdout=write)
    finally:
        os.close(write)
    assert (result.code, result.stderr) == (1, "")


@pytest.mark.parametrize("args", READERS[:2], ids=lambda args: " ".join(args[:2]))
def test_output_that_cannot_be_written_is_still_an_error(kb_root, args):
    """Only a reader gone is quiet: a full device is said, in one line."""
    with open("/dev/full", "w") as full:
        result = run_kb(*args, cwd=kb_root, stdout=full.fileno())
    assert result.code == 1
    assert result.stderr == "error: No space left on device\n"


def _on_a_terminal(args: list[str], cwd) -> tuple[int, str]:
    """`kb` with its standard input, output and error on a pseudo-terminal, as a person at a terminal runs it
    (rich then draws progress bars); (exit status, everything it wrote there)."""
    import subprocess
    import sys
    import threading
    from pathlib import Path

    from .conftest import kb_executable

    master, slave = os.openpty()
    written = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            written.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run([kb_executable(), *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, timeout=300,
                              env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
                                   "HOME": str(cwd), "TERM": "xterm-256color", "COLUMNS": "120"})
    finally:
        os.close(slave)
    reader.join(10)
    os.close(master)
    return proc.returncode, b"".join(written).decode("utf-8", "replace")


@pytest.mark.parametrize("command", [["build", "--no-search"], ["validate"], ["export", "-o", "out.nt", "--format", "nt"]],
                         ids=lambda command: command[0])
def test_the_commands_with_a_progress_bar_work_on_a_terminal(kb_root, command):
    """On a terminal, `kb build`, `kb validate` and `kb export` show rich's progress bar and end as they do
    in a pipe (the tests above): no traceback, status 0."""
    import shutil

    from .conftest import REPO

    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    code, written = _on_a_terminal(command, kb_root)
    assert code == 0, written
    assert "Traceback" not in written and "Error" not in written, written
    if command[0] == "build":
        assert "built " in written and (kb_root / "_site" / "index.html").is_file()


@pytest.mark.parametrize("template, mistake, message", [
    ("index.html", "{% if %}", "template error: Expected an expression"),  # a syntax error
    ("index.html", "{{ no_such_function() }}", "template error: 'no_such_function' is undefined"),
    ("entity.html", "{{ no_such_function() }}", "template error: 'no_such_function' is undefined"),  # in workers
], ids=["syntax", "undefined", "in-a-worker"])
def test_a_mistake_in_a_template_is_a_problem_at_its_line(kb_root, template, mistake, message):
    """The templates in `site_build/` are the knowledge base's own: a mistake in one is reported as
    `path:line: message`, status 1, no traceback, and the site built before is left as it was."""
    import shutil

    from .conftest import REPO

    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    before = (kb_root / "_site" / "index.html").read_bytes()
    path = kb_root / "site_build" / "templates" / template
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(5, mistake + "\n")  # line 6, inside the page's main block
    path.write_text("".join(lines))
    result = run_kb("build", "--no-search", cwd=kb_root, env={"MILKB_JOBS": "2"})
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert any(line.startswith(f"site_build/templates/{template}:6: {message}") for line in result.problem_lines), \
        result.stderr
    assert (kb_root / "_site" / "index.html").read_bytes() == before
    assert not [p for p in kb_root.iterdir() if p.name.startswith("._site")]
