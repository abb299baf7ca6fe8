"""The graph as N-Triples lines (`export.nt_line`): what the parse cache keeps with each mapping, what an
incremental build compares, and what the dumps and the query page are loaded from. Sorting the lines must
order the triples exactly as `triple_key` does, and parsing them back must give the terms Oxigraph would
get from the rdflib triples, or the dumps would change."""
from pathlib import Path

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rdflib import Literal, URIRef
from rdflib.namespace import XSD

from kb.export import jsonld, nt_line, nt_term, ox_triples, parse_lines, sorted_triples, split_line, triple_key
from kb.knowledge_base import open_kb

REPO = Path(__file__).resolve().parent.parent

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
literals = st.one_of(
    texts.map(Literal),
    st.tuples(texts, st.sampled_from(["en", "ru", "uk", "de-AT"])).map(lambda t: Literal(t[0], lang=t[1])),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: Literal(d, datatype=XSD.decimal)),
    st.integers().map(Literal),
    st.sampled_from(["1991", "2014-03"]).map(lambda y: Literal(y, datatype=XSD.gYear if len(y) == 4 else XSD.gYearMonth)),
)
iris = st.sampled_from(["https://w3id.org/milkb/id/t-80", "https://w3id.org/milkb/id/t-80#s1",
                        "https://w3id.org/milkb/id/t-80b", "https://w3id.org/milkb/ontology#crew"]).map(URIRef)
triples = st.tuples(iris, iris, st.one_of(iris, literals))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triples, min_size=1, max_size=12, unique_by=triple_key))
def test_lines_sort_parse_and_split_as_the_triples_do(ts):
    terms: dict = {}
    lines = [nt_line(t, terms) for t in ts]
    by_line = [t for _, t in sorted(zip(lines, ts))]
    assert by_line == sorted_triples(ts)  # the same order as triple_key's
    ordered = sorted(lines)
    assert [str(t) for t in parse_lines(ordered)] == [str(t) for t in ox_triples(by_line)]
    for line, t in zip(lines, ts):
        assert split_line(line) == tuple(map(nt_term, t))  # what an incremental build compares


def test_split_line_refuses_what_is_not_a_line():
    assert split_line("<a> <b> .") is None
    assert split_line("not a line") is None
    assert split_line('<a> <b> "c" .') == ("<a>", "<b>", '"c"')


def test_the_bundled_graph_as_lines_is_the_graph():
    """Every triple of the graph has its line among the mapping's (plus the ontology's), and the dumps made
    from the parsed lines equal those made from the rdflib triples."""
    kb = open_kb(REPO)
    terms: dict = {}
    lines = {line for run in kb.mapped.runs.values() for line in run} | {nt_line(t, terms) for t in kb.schema.ontology}
    assert lines == {nt_line(t, terms) for t in kb.index}
    parsed = parse_lines(sorted(lines))
    rdflib_sorted = sorted_triples(kb.index)
    assert parsed == ox_triples(rdflib_sorted)
    assert jsonld(parsed) == jsonld(rdflib_sorted)
    assert all(isinstance(t, ox.Triple) for t in parsed)


def _whole_and_pieces(lines: list[str]) -> None:
    """Each dump format of sorted `lines`, written whole, equals its frame around one piece per subject
    (`export.dump_pieces`), the pieces written from each subject's triples alone: what an incremental build
    relies on to keep the pieces of unchanged subjects."""
    from kb.export import DUMP_FORMATS, dump_frame, dump_pieces, jsonld_pieces, oxigraph_serialize

    subjects = list(dict.fromkeys(line[:line.index(" ")] for line in lines))
    alone = {s: parse_lines([line for line in lines if line.startswith(s + " ")]) for s in subjects}
    triples = parse_lines(lines)
    for fmt in DUMP_FORMATS:
        header, separator, footer = dump_frame(fmt)
        if fmt == "jsonld":
            whole = jsonld(triples) if len(subjects) > 1 else None
            pieces = {s: jsonld_pieces(alone[s])[s[1:-1]] for s in subjects}
            order = sorted(subjects, key=lambda s: s[1:-1])
        else:
            whole = oxigraph_serialize(triples, fmt)
            assert dump_pieces(whole, fmt, (header, separator, footer)) == [
                dump_pieces(oxigraph_serialize(alone[s], fmt), fmt, (header, separator, footer))[0] for s in subjects]
            pieces = {s: dump_pieces(oxigraph_serialize(alone[s], fmt), fmt, (header, separator, footer))[0]
                      for s in subjects}
            order = subjects
        if whole is not None:
            assert header + separator.join(pieces[s] for s in order) + footer == whole, fmt


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triples, min_size=1, max_size=12, unique_by=triple_key))
def test_dumps_are_their_subjects_pieces(ts):
    terms: dict = {}
    _whole_and_pieces(sorted(nt_line(t, terms) for t in ts))


def test_the_bundled_dumps_are_their_subjects_pieces():
    kb = open_kb(REPO)
    terms: dict = {}
    lines = sorted({line for run in kb.mapped.runs.values() for line in run} | {nt_line(t, terms) for t in kb.schema.ontology})
    _whole_and_pieces(lines)


subject_names = st.sampled_from(["<https://w3id.org/milkb/id/a>", "<https://w3id.org/milkb/id/a#s1>",
                                 "<https://w3id.org/milkb/id/a-b>", "<https://w3id.org/milkb/id/ab>",
                                 "<https://w3id.org/milkb/id/b>", "<https://w3id.org/milkb/id/b#geo>",
                                 "<https://w3id.org/milkb/id/c>", "<https://w3id.org/milkb/id/z>"])
frames = st.sampled_from([("", "", ""), ('{"@graph":[', ",", "]}\n"), ("@prefix x: <y> .\n\n", "", "")])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(subject_names, texts), st.dictionaries(subject_names, texts),
       st.sets(subject_names), frames, st.booleans())
def test_a_dump_put_together_from_kept_pieces_is_the_one_written_whole(before, edits, removed, frame, by_node):
    """`_assemble` with the previous dump kept: the subjects a change touched (`edits` new or changed,
    `removed` gone) are written again, the others cut from the previous dump in runs. The dump and its
    offsets are those of putting every subject's piece together afresh, in either order of the subjects."""
    from types import SimpleNamespace

    from kb.site.build import _assemble, _joined, _line_order, _node_order

    order = _node_order if by_node else _line_order
    after = {s: piece for s, piece in {**before, **edits}.items() if s not in removed or s in edits}
    parts, kept = _assemble(frame, before, order, None, None)
    old = _joined(parts, b"")
    change = SimpleNamespace(subjects=set(edits) | (removed & before.keys()))
    new = {s: after[s] for s in change.subjects if s in after}
    again, offsets = _assemble(frame, new, order, kept, change)
    whole, fresh = _assemble(frame, after, order, None, None)
    assert _joined(again, old) == _joined(whole, b"")
    assert offsets[0] == fresh[0] and list(offsets[1]) == list(fresh[1]) and list(offsets[2]) == list(fresh[2])


@pytest.mark.parametrize("kernel", [True, False])
def test_a_range_of_the_previous_dump_is_copied_byte_for_byte(tmp_path, monkeypatch, kernel):
    """`SiteWriter.write_parts` copies the kept slices of the previous dump file (`_copy_range`) exactly: any
    range, of any size, appended where the new file stands (after the bytes written before it, before those
    written after it), by the kernel or, where it cannot (another file system), read and written."""
    import errno
    import os

    from kb.site.build import _copy_range

    if not kernel:
        def refused(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refused)
    old = tmp_path / "old"
    data = bytes(range(256)) * 40_000 + "é — ünïcode".encode()  # 10 MB and a tail of multi-byte characters
    old.write_bytes(data)
    ranges = [(0, 0), (3, 7), (255, 70_001), (len(data) - 20, len(data)), (1_000_000, len(data) - 100)]
    target = os.open(tmp_path / "new", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with open(old, "rb") as source:
        for start, stop in ranges:
            os.write(target, b"|")
            _copy_range(source.fileno(), target, start, stop)
        os.write(target, b"|")
    os.close(target)
    assert (tmp_path / "new").read_bytes() == b"".join(b"|" + data[a:b] for a, b in ranges) + b"|"
    with open(old, "rb") as source, open(tmp_path / "short", "wb") as target:
        try:
            _copy_range(source.fileno(), target.fileno(), len(data) - 5, len(data) + 5)
        except OSError as e:
            assert "shorter" in str(e)
        else:
            raise AssertionError("copied past the end of the previous dump")
