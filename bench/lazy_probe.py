"""What a rebuild that loads nothing in full would pay for its graph side (issue 6, goal 2), each piece timed
alone on a built knowledge base: the imports, the ontology, a stat of every entry file, the entries' listing,
the saved Oxigraph store opened, every label read from it, and one entity's facts and incoming links.

    .venv/bin/python bench/lazy_probe.py ROOT [ENTRY-ID]   # ROOT built by `kb build` (its .kb-cache/store)

A figure, not a test. tests/test_graph_order.py shows that the site rendered from the store (and from the
graph loaded in any order) is byte-identical to a normal build: the footing such a rebuild would stand on.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

T = time.perf_counter
start = T()
import jinja2, pyoxigraph, rdflib, yaml  # noqa: E401,F401,E402 - what any build imports, timed

imports = T() - start
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rdflib import URIRef  # noqa: E402
from rdflib.namespace import SKOS  # noqa: E402

from kb.config import load_config  # noqa: E402
from kb.loader import discover  # noqa: E402
from kb.oxstore import StoreView  # noqa: E402
from kb.schema import load_ontology, read_schema  # noqa: E402
from kb.store_cache import _paths, entry_files  # noqa: E402


def timed(work):
    began = T()
    found = work()
    return found, T() - began


def main() -> None:
    root = Path(sys.argv[1])
    config = load_config(root)
    schema, t_schema = timed(lambda: read_schema(load_ontology(config.ontology_dir)))
    count, t_stat = timed(lambda: sum(1 for e in entry_files(str(config.entries_dir)) if e.stat()))
    (files, _), t_discover = timed(lambda: discover(config.entries_dir, root, schema))
    store, t_open = timed(lambda: pyoxigraph.Store.read_only(str(_paths(config)[0])))
    view = StoreView(store)
    labels, t_labels = timed(lambda: {s: o for s, _, o in view.triples((None, SKOS.prefLabel, None))})
    iri = URIRef(config.base_iri + (sys.argv[2] if len(sys.argv) > 2 else files[len(files) // 2][2]))
    (facts, incoming), t_entity = timed(lambda: (list(view.triples((iri, None, None))),
                                                 list(view.triples((None, None, iri)))))
    print(f"imports {imports:.3f} s · ontology {t_schema:.3f} s · stat of {count:,} entry files {t_stat:.3f} s · "
          f"listing {len(files):,} entries {t_discover:.3f} s · store opened {t_open:.3f} s · "
          f"{len(labels):,} labels read {t_labels:.3f} s · one entity's {len(facts)} facts and {len(incoming)} "
          f"incoming links {t_entity * 1000:.1f} ms")


if __name__ == "__main__":
    main()
