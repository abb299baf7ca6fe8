"""milkb: YAML entries → validated RDF graph → SPARQL, exports and a static site.

The public surface other programs may import; everything else may change. The names are loaded on first
use (PEP 562), so that `kb query` on a saved store starts without importing rdflib.
"""
import importlib

_PUBLIC = {"KnowledgeBase": "knowledge_base", "open_kb": "knowledge_base", "load_valid_kb": "knowledge_base",
           "KBError": "problems", "Problem": "problems", "UsageError": "problems",
           "run_query": "query", "saved_queries": "query", "export_graph": "export"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
