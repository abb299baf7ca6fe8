"""Checks on the mapped graph: link cycles, and the SHACL shapes with results mapped to file:line."""
from __future__ import annotations

from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, RDFS, SH

from .mapping import MappedGraph
from .namespaces import KB
from .mapping import a
from .problems import Problem
from .schema import Schema

CYCLE_PROPERTIES = (KB.variantOf, KB.basedOn, KB.partOf)


def check_cycles(mapped: MappedGraph, schema: Schema, base_iri: str) -> list[Problem]:
    """A system cannot be (through others) its own variant, base or part."""
    problems = []
    for prop in CYCLE_PROPERTIES:
        edges: dict[URIRef, list[URIRef]] = {}
        for s, o in mapped.graph.subject_objects(prop):
            edges.setdefault(s, []).append(o)
        reported: set[frozenset] = set()
        for start in sorted(edges):
            cycle = _find_cycle(start, edges)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                first = min(cycle, key=str)
                i = cycle.index(first)
                ring = cycle[i:] + cycle[:i] + [first]
                key = next(s.key for s in schema.keys[KB.System].values() if s.prop == prop)
                path, line = mapped.key_lines.get((first, prop), (mapped.entry_files.get(first, "?"), 1))
                shown = " → ".join(str(n)[len(base_iri):] for n in ring)
                problems.append(Problem(path, line, f"circular `{key}`: {shown}", "cycle",
                                        f"a system cannot be its own `{key}`; remove one link"))
    return problems


def _find_cycle(start, edges):
    """The cycle through `start`, if any, by iterative depth-first search."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def load_shapes(ontology_dir: Path) -> Graph:
    return Graph().parse(ontology_dir / "shapes.ttl", format="turtle")


def focus_nodes(changed_lines: set[str], g) -> set | None:
    """The nodes whose conformance to the shapes a change of the graph (added and removed triples, as
    N-Triples lines) can alter: the subject of each changed triple, and whatever links to a node whose
    rdf:type changed (sh:class looks at the types of values). The shapes read nothing further (kb/shapes.py
    evaluates values of a path, their datatypes and classes, and counts). None: check every node."""
    from .export import split_line

    nodes, retyped = set(), set()
    for line in changed_lines:
        triple = split_line(line)
        if triple is None:
            return None
        s, p, _ = triple
        nodes.add(URIRef(s[1:-1]))
        if p == _RDF_TYPE:
            retyped.add(URIRef(s[1:-1]))
    for node in retyped:
        for p in list(g.predicates(None, node)):
            nodes.update(g.subjects(p, node))
    return nodes


_RDF_TYPE = "<" + str(RDF.type) + ">"
_compiled: list = [None, None]  # the shapes graph checked last, and its compiled shapes


def check_shapes(mapped: MappedGraph, schema: Schema, shapes: Graph, engine: str = "direct",
                 focus: set | None = None) -> list[Problem]:
    """Check the shapes and phrase each violation for a person, at the line of the key behind it.

    engine "direct" evaluates the shapes over the index (kb/shapes.py) and falls back to pyshacl if
    they use a feature it does not handle; "pyshacl" always runs pyshacl, the reference. `focus`: check
    only these focus nodes (`focus_nodes`), the others being known to conform (direct engine only).
    """
    violations = None
    if engine == "direct":
        from .shapes import ShapeChecker, UnsupportedShape, compile_shapes

        try:
            if _compiled[0] is not shapes:  # a checker (kb/check.py) passes the same graph each time
                _compiled[:] = [shapes, compile_shapes(shapes)]
            violations = ShapeChecker(_compiled[1], mapped.graph).violations(focus)
        except UnsupportedShape:
            violations = None
    if violations is None:
        violations = pyshacl_violations(mapped.graph.to_rdflib(), shapes)
    problems = []
    for focus, path, component, value in violations:
        if (focus, path) in mapped.failed or _entity_of(mapped, focus) in mapped.unchecked or value in mapped.unchecked:
            continue  # already reported with a precise message when mapping
        problems.append(_phrase(mapped, schema, focus, path, component, value))
    return sorted(set(problems))


def pyshacl_violations(data: Graph, shapes: Graph) -> list[tuple]:
    """(focus, path, component, value) of every pyshacl validation result."""
    import pyshacl  # imported lazily: only the reference check needs it

    conforms, results, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=False,
                                            allow_warnings=True)
    if conforms:
        return []
    return [(results.value(r, SH.focusNode), results.value(r, SH.resultPath),
             results.value(r, SH.sourceConstraintComponent), results.value(r, SH.value))
            for r in results.subjects(RDF.type, SH.ValidationResult)]


def _entity_of(mapped: MappedGraph, node: URIRef) -> URIRef:
    return URIRef(str(node).split("#", 1)[0])


def _phrase(mapped, schema, focus, path, component, value) -> Problem:
    entity = _entity_of(mapped, focus)
    file = mapped.entry_files.get(entity, "?")
    cls = mapped.graph.value(entity, RDF.type)
    key = _key_of(schema, cls, path) if focus == entity else _qualifier_key(schema, path)
    what = schema.class_label(cls) if cls else "entry"
    name = component.split("#")[-1].removesuffix("ConstraintComponent") if component else "?"
    line = mapped.key_lines.get((entity, path), (file, 1))[1]
    if name == "MinCount":
        return Problem(file, 1, f"`{key}` is required for {a(what)}", "missing-key", f"add a `{key}:` line")
    if name == "MaxCount":
        return Problem(file, line, f"`{key}` takes one value", "too-many-values")
    if name in ("Class", "Or", "Datatype", "NodeKind", "In"):
        return Problem(file, line, f"`{key}` has a value of the wrong kind ({value})", "wrong-type")
    return Problem(file, line, f"`{key}` does not satisfy {name} ({value})", "shape")


def _key_of(schema: Schema, cls, prop) -> str:
    for spec in schema.keys.get(cls, {}).values():
        if prop == spec.prop or prop in spec.also:
            return spec.key
    return str(schema.ontology.value(prop, RDFS.label) or prop)


def _qualifier_key(schema: Schema, prop) -> str:
    for spec in schema.qualifiers.values():
        if spec.prop == prop:
            return spec.key
    return str(prop).rsplit("#", 1)[-1].rsplit("/", 1)[-1]
