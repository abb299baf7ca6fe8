"""The static reference site: `build_site` writes it whole, then swaps it into place."""
from .build import BuildReport, build_site

__all__ = ["build_site", "BuildReport"]
