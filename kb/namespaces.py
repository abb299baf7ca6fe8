"""The RDF namespaces milkb uses, with typo-safe access to its own vocabulary terms."""
from rdflib import Namespace
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS, XSD, PROV, VOID, DefinedNamespace, Namespace as _NS
from rdflib.term import URIRef


class KB(DefinedNamespace):
    """Terms of ontology/milkb.ttl; a misspelt term is an error at import, not a new IRI."""

    _NS = _NS("https://w3id.org/milkb/ontology#")
    _fail = True

    System: URIRef
    Organization: URIRef
    Country: URIRef
    Place: URIRef
    Event: URIRef
    Source: URIRef
    Entity: URIRef
    Statement: URIRef
    Preferred: URIRef
    Normal: URIRef
    Quantity: URIRef
    Year: URIRef
    Markdown: URIRef
    Coordinates: URIRef
    WikidataId: URIRef
    FlexibleDate: URIRef
    yamlKey: URIRef
    appliesTo: URIRef
    valueType: URIRef
    unit: URIRef
    unitLabel: URIRef
    multiple: URIRef
    qualifier: URIRef
    minValue: URIRef
    maxValue: URIRef
    alsoMapsTo: URIRef
    notBefore: URIRef
    conceptScheme: URIRef
    valueKey: URIRef
    folder: URIRef
    category: URIRef
    origin: URIRef
    designer: URIRef
    manufacturer: URIRef
    inServiceSince: URIRef
    crew: URIRef
    combatMass: URIRef
    caliber: URIRef
    maxRange: URIRef
    maxSpeed: URIRef
    launchTubes: URIRef
    enginePower: URIRef
    armament: URIRef
    basedOn: URIRef
    variantOf: URIRef
    partOf: URIRef
    operator: URIRef
    country: URIRef
    date: URIRef
    place: URIRef
    involves: URIRef
    weapon: URIRef
    actor: URIRef
    action: URIRef
    reported: URIRef
    evidence: URIRef
    accessed: URIRef
    archivedAt: URIRef
    statement: URIRef
    property: URIRef
    rank: URIRef
    since: URIRef
    until: URIRef
    status: URIRef
    role: URIRef
    aliasKind: URIRef
    statedValue: URIRef
    inverseLabel: URIRef
    keyOrder: URIRef
    keyQuantity: URIRef
    crewApplies: URIRef
    actorLabel: URIRef
    weakSource: URIRef
    sourceKind: URIRef


class _InternedNamespace(Namespace):
    """A Namespace whose terms are the interned ones (`interned`): `GEO.asWKT` is one object, not a new URIRef
    at each use that every lookup compares with rdflib's __eq__."""

    def term(self, name: str) -> URIRef:
        return interned(str(self) + name)


KBC = Namespace("https://w3id.org/milkb/category/")
SCHEMA = _InternedNamespace("https://schema.org/")
GEO = _InternedNamespace("http://www.opengis.net/ont/geosparql#")
WD = Namespace("http://www.wikidata.org/entity/")

# Prefixes pre-bound in every query and used in every serialisation.
PREFIXES = {
    "kb": URIRef(str(KB._NS)),
    "kbc": URIRef(str(KBC)),
    "rdf": URIRef(str(RDF)),
    "rdfs": URIRef(str(RDFS)),
    "owl": URIRef(str(OWL)),
    "xsd": URIRef(str(XSD)),
    "skos": URIRef(str(SKOS)),
    "dcterms": URIRef(str(DCTERMS)),
    "schema": URIRef(str(SCHEMA)),
    "geo": URIRef(str(GEO)),
    "prov": URIRef(str(PROV)),
    "void": URIRef(str(VOID)),
    "wd": URIRef(str(WD)),
}


# One URIRef object per IRI in this process, for the IRIs of entities and statement nodes (made by the
# mapping, read back from the caches): dictionaries keyed by terms then find them by identity, without
# calling rdflib's __eq__, which took seconds of a 10,000-system build.
INTERNED: dict[str, URIRef] = {}


def interned(text: str) -> URIRef:
    """The URIRef of `text`, made (and checked by rdflib) the first time only."""
    term = INTERNED.get(text)
    if term is None:
        term = INTERNED[text] = URIRef(text)
    return term


def _resolve_terms(*namespaces) -> None:
    """Make each declared term of these DefinedNamespaces a plain class attribute. Otherwise every `KB.crew`
    or `RDF.type` goes through the namespace's metaclass `__getattr__` (2 µs, and the site and the mapping
    ask hundreds of thousands of times). The values are the very terms that lookup returns, and they are the
    interned ones: a graph's predicates and classes, read back from a cache or parsed from the ontology, are
    then these very objects, so `index.value(s, SKOS.prefLabel)` finds its key by identity (an entity page
    called rdflib's Python `__eq__` about 55 times more otherwise)."""
    for ns in namespaces:
        for name in getattr(ns, "__annotations__", {}):
            if not name.startswith("_"):
                term = getattr(ns, name)
                setattr(ns, name, term)
                INTERNED.setdefault(str(term), term)


_resolve_terms(KB, RDF, RDFS, OWL, XSD, SKOS, DCTERMS, PROV, VOID)
