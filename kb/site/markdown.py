"""Entry descriptions (Markdown) as HTML that carries no markup and no link from an entry but http(s) and
relative ones: raw HTML is shown as text, and `javascript:`, `data:`, `vbscript:`, `file:`, `mailto:` or any
other scheme leaves the link as plain text."""
from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markupsafe import Markup

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_IGNORED_BY_BROWSERS = re.compile(r"^[\x00-\x20]+|[\t\n\r]")  # leading controls and spaces; tabs, line breaks


def is_safe_link(url: str) -> bool:
    """True for http(s) addresses and links without a scheme (relative to the page)."""
    scheme = _SCHEME.match(_IGNORED_BY_BROWSERS.sub("", url))  # the scheme as a browser reads it
    return scheme is None or scheme.group(1).lower() in ("http", "https")


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = is_safe_link  # markdown-it's own check lets data:image/… and any unknown scheme through
    return md


_MARKDOWN = _renderer()


def render_markdown(text: str) -> Markup:
    return Markup(_MARKDOWN.render(text or ""))
