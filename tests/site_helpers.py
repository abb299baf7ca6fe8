"""Reading HTML without a browser (the bundled corpus's site is built once per session: `bundled_site` in
tests/conftest.py)."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class PageParser(HTMLParser):
    """Collects what the site tests look at: links, ids, scripts, meta tags and JSON-LD."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[dict] = []
        self.meta: dict[str, str] = {}
        self.link_tags: list[dict] = []
        self.lang = None
        self._script = None
        self.jsonld: list[str] = []
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []  # every start tag with its attributes, in order
        self.inline_scripts: list[tuple[dict, str]] = []  # (attributes, text) of each <script> with content

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "link":
            self.link_tags.append(a)
            if a.get("href"):
                self.links.append(a["href"])
        if tag == "meta":
            self.meta[a.get("name") or a.get("property") or a.get("http-equiv") or ""] = a.get("content", "")
        if tag == "script":
            self.scripts.append(a)
            self._script = a
            if a.get("src"):
                self.links.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None and self._script.get("type") == "application/ld+json":
            self.jsonld.append(data)
        if self._script is not None and data.strip():
            self.inline_scripts.append((self._script, data))
        self.text.append(data)


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser
