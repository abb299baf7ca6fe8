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
    inverseLabel: URIRef
    keyOrder: URIRef
    keyQuantity: URIRef
    crewApplies: URIRef
    displayDecimals: URIRef


KBC = Namespace("https://w3id.org/milkb/category/")
SCHEMA = Namespace("https://schema.org/")
GEO = Namespace("http://www.opengis.net/ont/geosparql#")
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
