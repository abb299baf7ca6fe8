"""milkb: YAML entries → validated RDF graph → SPARQL, exports and a static site.

The public surface other programs may import; everything else may change.
"""
from .knowledge_base import KnowledgeBase, load_valid_kb, open_kb
from .problems import KBError, Problem, UsageError
from .query import run_query, saved_queries
from .export import export_graph

__all__ = ["KnowledgeBase", "open_kb", "load_valid_kb", "KBError", "Problem", "UsageError",
           "run_query", "saved_queries", "export_graph"]
