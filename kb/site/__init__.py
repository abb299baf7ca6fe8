"""The static reference site: `build_site` writes it whole, then swaps it into place.

`build_site` and `BuildReport` are imported from `build` when first asked for: `kb build` finds out whether
there is anything to build (`update`) before it imports jinja2 and rdflib."""

__all__ = ["build_site", "BuildReport"]


def __getattr__(name: str):
    if name in __all__:
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
