"""Loading and mapping: the small knowledge base maps to exactly the expected triples."""
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Graph, Literal, URIRef
from rdflib.compare import graph_diff, isomorphic, to_isomorphic
from rdflib.namespace import XSD

from kb.namespaces import KB

from .conftest import DATA, make_root, run_kb

T80 = URIRef("https://w3id.org/milkb/id/t-80")


def test_entries_map_to_the_expected_graph(kb):
    expected = Graph().parse(DATA / "expected.ttl", format="turtle")
    actual = Graph()
    for triple in kb.graph:
        if str(triple[0]).startswith(kb.config.base_iri):
            actual.add(triple)
    if not isomorphic(actual, expected):
        _, only_actual, only_expected = graph_diff(to_isomorphic(actual), to_isomorphic(expected))
        raise AssertionError("unexpected:\n" + only_actual.serialize(format="nt")
                             + "\nmissing:\n" + only_expected.serialize(format="nt"))


def test_the_graph_holds_entries_vocabulary_and_categories(kb):
    g = kb.graph
    assert (KB.combatMass, URIRef("http://www.w3.org/2000/01/rdf-schema#label"), Literal("combat mass", lang="en")) in g
    assert (URIRef("https://w3id.org/milkb/category/main-battle-tank"), None, None) in g
    assert not any(str(p).startswith("http://www.w3.org/ns/shacl#") for p in g.predicates())


def test_quantities_are_canonical_decimals(kb):
    g = kb.graph
    assert g.value(T80, KB.combatMass) == Literal("46", datatype=XSD.decimal)
    assert g.value(T80, KB.enginePower) == Literal("745.7", datatype=XSD.decimal)  # 1,000 hp in kW
    tos = URIRef("https://w3id.org/milkb/id/tos-1")
    assert g.value(tos, KB.maxRange) == Literal("3.5", datatype=XSD.decimal)  # 3,500 m in km


def test_only_the_preferred_value_is_a_direct_triple(kb):
    assert list(kb.graph.objects(T80, KB.combatMass)) == [Literal("46", datatype=XSD.decimal)]
    ranks = {kb.graph.value(st, KB.rank) for st in kb.graph.objects(T80, KB.statement)
             if kb.graph.value(st, KB.property) == KB.combatMass}
    assert ranks == {KB.Preferred, KB.Normal}


def test_a_converted_quantity_keeps_the_value_as_stated(kb):
    """`1,000 hp` is kept in kW for queries and comparisons, and as written beside it (kb:statedValue, on its
    statement), so that pages can show what the source says; a figure given in the canonical unit (`46 t`,
    `70 km/h`) has nothing to add."""
    g = kb.graph
    stated = {g.value(st, KB.property): g.value(st, KB.statedValue) for st in g.objects(T80, KB.statement)}
    assert stated[KB.enginePower] == Literal("1,000 hp")
    assert stated[KB.combatMass] is None and KB.maxSpeed not in stated
    assert len(list(g.subject_objects(KB.statedValue))) == 2  # 1,000 hp and the TOS-1's 3,500 m


def test_a_stated_value_is_shown_with_its_conversion_to_its_precision():
    """As reference works print it: the stated figure, then the converted one to as many significant digits
    as the stated number has (at least two), never to fewer than its whole units."""
    from decimal import Decimal

    from kb.quantities import stated_form, with_stated

    assert with_stated("340 hp", Decimal("253.538"), "kW") == "340 hp (254 kW)"
    assert with_stated("1,000 hp", Decimal("745.7"), "kW") == "1,000 hp (746 kW)"  # trailing zeros: not digits
    assert with_stated("1,200 hp", Decimal("894.84"), "kW") == "1,200 hp (895 kW)"
    assert with_stated("22,900 lb", Decimal("10.387"), "t") == "22,900 lb (10.4 t)"
    assert with_stated("1.500 t", Decimal("1.5"), "t") == "1.500 t (1.5 t)"  # a decimal's zeros count
    assert with_stated("1e3 m", Decimal("1"), "km") == "1e3 m (1 km)"
    assert with_stated(".5 mi", Decimal("0.805"), "km") == ".5 mi (0.8 km)"
    assert with_stated("-5 mi", Decimal("-8.047"), "km") == "-5 mi (-8 km)"
    assert with_stated("7 mi", Decimal("11.265"), "km") == "7 mi (11 km)"
    assert with_stated("40 mph", Decimal("64.374"), "km/h") == "40 mph (64 km/h)"
    assert with_stated("2,500 m", Decimal("2.5"), "km") == "2,500 m (2.5 km)"
    assert with_stated("0.5 mi", Decimal("0.805"), "km") == "0.5 mi (0.8 km)"
    assert with_stated("1 lb", Decimal("0"), "t") == "1 lb (0 t)"
    assert with_stated("31.8 short_ton", Decimal("28.848"), "t") == "31.8 short ton (28.8 t)"
    assert stated_form("46  tonnes", Decimal(46), "t") is None  # the same number: nothing to keep
    assert stated_form("42.5555 t", Decimal("42.556"), "t") is None  # the canonical unit, only rounded
    assert stated_form("340   hp", Decimal("253.538"), "kW") == "340 hp"


def test_loader_keeps_lines(kb):
    entry = next(e for e in kb.entries if e.id == "t-80")
    assert entry.data.value["combat_mass"].key_line == 9
    assert entry.data.value["operators"].value[1].line == 18


UNITS = ["t", "mm", "km", "km/h", "kW"]  # the units of the ontology's quantities (kb:unit)


@given(number=st.from_regex(r"[-+]?([0-9]{1,16}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][-+]?[0-9]{1,3})?", fullmatch=True),
       unit=st.sampled_from(UNITS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_quantity_written_in_its_own_unit_is_what_pint_makes_of_it(number, unit):
    """`46 t` for a property in tonnes is read without pint (`kb.quantities._convert`: no pint import for
    a new figure); the value, or the error, is the one pint's conversion gives."""
    from decimal import Decimal

    from kb import quantities

    def outcome(compute):
        try:
            return compute()
        except quantities.QuantityError as e:
            return ("error", str(e), e.hint, e.code)

    def by_pint():
        ureg = quantities._registry()
        written = str(int(number)) if re.fullmatch(r"[-+]?[0-9]+", number) else number  # pint: `046` is 0
        value = Decimal(str(ureg.Quantity(f"{written} {unit}").to(ureg.Unit(unit)).magnitude))
        if not value.is_finite():
            raise quantities.QuantityError(f"`{number} {unit}` is not a finite number",
                                           f"write a number and a unit, e.g. `12 {unit}`")
        if abs(value) >= quantities.LARGEST:
            raise quantities.QuantityError(f"`{number} {unit}` is too large a number", "check the value and its unit",
                                           "out-of-range")
        return quantities.canonical_decimal(value)

    assert outcome(lambda: quantities._convert.__wrapped__(f"{number} {unit}", unit)) == outcome(by_pint)


def test_a_number_with_leading_zeros_is_read_as_written():
    """pint reads `046` as 0 (a Python integer cannot start with 0): milkb reads it as 46, in any unit."""
    from decimal import Decimal

    from kb import quantities

    assert quantities._convert.__wrapped__("046 t", "t") == Decimal(46)
    assert quantities._convert.__wrapped__("046 kg", "t") == Decimal("0.046")
    assert quantities._convert.__wrapped__("-007", "t") == Decimal(-7)


def test_dates_in_order_are_compared_at_the_coarser_precision(tmp_path):
    """`reported` may not precede `date` (kb:notBefore), but a year or a month is not before a day inside it."""
    root = make_root(tmp_path)
    event = "name: E\nsystems: [t-80]\naction: used\nsources: [src-a]\ndate: {date}\nreported: {reported}\n"
    path = root / "entries" / "events" / "e.yaml"
    for date, reported in (("2022", "2022-03-26"), ("2022-03", "2022-03-01"), ("2022-03-26", "2022-03"),
                           ("2022-03-26", "2022-03-26")):
        path.write_text(event.format(date=date, reported=reported), encoding="utf-8")
        result = run_kb("validate", cwd=root)
        assert result.code == 0, (date, reported, result.stderr)
    path.write_text(event.format(date="2022-03", reported="2022-02-28"), encoding="utf-8")
    assert run_kb("validate", cwd=root).problem_lines == [
        "entries/events/e.yaml:6: `reported` (2022-02-28) is before `date` (2022-03) — `reported` cannot be earlier "
        "than `date`: check both"]
