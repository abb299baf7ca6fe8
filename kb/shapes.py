"""The SHACL shapes of `ontology/shapes.ttl`, checked directly over the index.

pyshacl stays the reference for what is valid (`kb validate --shacl pyshacl`, and a test that both agree
on the bundled corpus and every case of the invalid corpus). This checker reads the same shapes and
evaluates the constraint components they use — a few dictionary lookups per focus node instead of
pyshacl's general machinery. A shape using any other component makes `compile_shapes` refuse, and the
caller falls back to pyshacl, so a new constraint in `shapes.ttl` is never silently ignored.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Callable

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD

from .index import Index

# A violation as pyshacl reports it: (focus node, result path, constraint component, value node)
Violation = tuple

_IGNORED = {SH.name, SH.description, SH.message, SH.order, SH.group, RDFS.comment, RDFS.label, SH.severity}
_VALUE_COMPONENTS = {SH["class"], SH.datatype, SH.nodeKind, SH["in"], SH.minExclusive, SH.minInclusive,
                     SH.maxExclusive, SH.maxInclusive, SH["or"]}


class UnsupportedShape(Exception):
    """The shapes use a SHACL feature this checker does not evaluate: use pyshacl."""


@dataclass
class Constraint:
    component: URIRef  # e.g. sh:DatatypeConstraintComponent
    kind: URIRef  # the parameter: sh:datatype, sh:class, …
    arg: object  # its value (a list for sh:in and sh:or)
    test: Callable = None  # test(checker, arg, value): whether `value` conforms; chosen by `kind` (`_TESTS`)


@dataclass
class PropertyShape:
    path: URIRef
    min_count: int | None = None
    max_count: int | None = None
    constraints: list[Constraint] = field(default_factory=list)


@dataclass
class NodeShape:
    targets: list[URIRef]
    properties: list[PropertyShape]


def compile_shapes(shapes: Graph) -> list[NodeShape]:
    """The node shapes of `shapes`, or UnsupportedShape if one uses a feature not handled here."""
    out = []
    for shape in sorted(set(shapes.subjects(RDF.type, SH.NodeShape)), key=str):
        allowed = {RDF.type, SH.targetClass, SH.property} | _IGNORED
        _only(shapes, shape, allowed)
        props = [_property_shape(shapes, p) for p in shapes.objects(shape, SH.property)]
        out.append(NodeShape(sorted(shapes.objects(shape, SH.targetClass), key=str), props))
    return out


def _only(shapes: Graph, node, allowed) -> None:
    for p in shapes.predicates(node, None):
        if p not in allowed:
            raise UnsupportedShape(f"{p} on {node}")


def _property_shape(shapes: Graph, node) -> PropertyShape:
    _only(shapes, node, {SH.path, SH.minCount, SH.maxCount} | _VALUE_COMPONENTS | _IGNORED)
    path = shapes.value(node, SH.path)
    if not isinstance(path, URIRef):
        raise UnsupportedShape(f"complex path on {node}")
    shape = PropertyShape(path)
    if (n := shapes.value(node, SH.minCount)) is not None:
        shape.min_count = int(n)
    if (n := shapes.value(node, SH.maxCount)) is not None:
        shape.max_count = int(n)
    shape.constraints = _value_constraints(shapes, node)
    return shape


def _value_constraints(shapes: Graph, node) -> list[Constraint]:
    constraints = []
    for kind in sorted(_VALUE_COMPONENTS, key=str):
        for arg in shapes.objects(node, kind):
            if kind in (SH["in"], SH["or"]):
                arg = list(Collection(shapes, arg))
                if kind == SH["or"]:
                    for member in arg:
                        _only(shapes, member, _VALUE_COMPONENTS | _IGNORED)
                    arg = [_value_constraints(shapes, member) for member in arg]
            if kind == SH.nodeKind:
                arg = _NODE_KINDS.get(arg, ())  # the classes of node it names
            name = str(kind).rsplit("#", 1)[-1]
            constraints.append(Constraint(SH[name[0].upper() + name[1:] + "ConstraintComponent"], kind, arg,
                                          _TESTS[kind]))
    return constraints


class ShapeChecker:
    """Evaluates compiled shapes over an index holding the data and the vocabulary."""

    def __init__(self, shapes: list[NodeShape], g: Index):
        self.shapes = shapes
        self.g = g
        self._instances: dict = {}

    def subclasses(self, cls) -> set:
        """`cls` and every class below it (rdfs:subClassOf*)."""
        found, todo = {cls}, [cls]
        while todo:
            for sub in self.g.subjects(RDFS.subClassOf, todo.pop()):
                if sub not in found:
                    found.add(sub)
                    todo.append(sub)
        return found

    def instances(self, cls) -> set:
        if cls not in self._instances:
            self._instances[cls] = {s for c in self.subclasses(cls) for s in self.g.subjects(RDF.type, c)}
        return self._instances[cls]

    def violations(self, focus_nodes=None) -> list[Violation]:
        """Every violation, or only those of `focus_nodes` (a set) when given."""
        out = []
        for shape in self.shapes:
            for target in shape.targets:
                for focus in self.instances(target):
                    if focus_nodes is None or focus in focus_nodes:
                        self._check(shape, focus, out)
        return out

    def _check(self, shape: NodeShape, focus, out: list) -> None:
        for prop in shape.properties:
            values = list(self.g.objects(focus, prop.path))
            if prop.min_count is not None and len(values) < prop.min_count:
                out.append((focus, prop.path, SH.MinCountConstraintComponent, None))
            if prop.max_count is not None and len(values) > prop.max_count:
                out.append((focus, prop.path, SH.MaxCountConstraintComponent, None))
            for c in prop.constraints:
                for value in values:
                    if not c.test(self, c.arg, value):
                        out.append((focus, prop.path, c.component, value))


# How each value constraint is tested, chosen once when the shapes are compiled: comparing the constraint's
# kind with `SH.datatype`, `SH["class"]`, … for each value took half the time of a check (rdflib makes a new
# term on each `SH.x` and compares terms in Python).
def _has_datatype(checker, datatype, value) -> bool:
    if not isinstance(value, Literal):
        return False
    if datatype == RDF.langString:
        return value.language is not None
    if value.language is not None:
        return False
    actual = value.datatype or XSD.string
    return actual == datatype and not getattr(value, "ill_typed", False)


def _in_class(checker, cls, value) -> bool:
    return not isinstance(value, Literal) and value in checker.instances(cls)


def _any_of(checker, members, value) -> bool:
    return any(all(c.test(checker, c.arg, value) for c in member) for member in members)


def _bound(compare):
    def test(checker, bound, value) -> bool:
        if not isinstance(value, Literal):
            return False
        try:
            return compare(Decimal(str(value)), Decimal(str(bound)))
        except (InvalidOperation, ValueError):
            return False
    return test


_NODE_KINDS = {SH.IRI: (URIRef,), SH.Literal: (Literal,), SH.BlankNode: (BNode,), SH.BlankNodeOrIRI: (BNode, URIRef),
               SH.IRIOrLiteral: (URIRef, Literal), SH.BlankNodeOrLiteral: (BNode, Literal)}
_TESTS = {
    SH.datatype: _has_datatype,
    SH["class"]: _in_class,
    SH.nodeKind: lambda checker, classes, value: isinstance(value, classes),
    SH["in"]: lambda checker, values, value: value in values,
    SH["or"]: _any_of,
    SH.minExclusive: _bound(operator.gt),
    SH.minInclusive: _bound(operator.ge),
    SH.maxExclusive: _bound(operator.lt),
    SH.maxInclusive: _bound(operator.le),
}
