"""The service timeline (kb/site/svg.py) as drawn: every year label inside the picture, the first one included."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from kb.site.svg import timeline_svg

SVG = "{http://www.w3.org/2000/svg}"
FONT_PX = 12  # svg.timeline text (style.css)
DIGIT_EM = 0.62  # a digit's advance in the widest common sans-serif faces (DejaVu Sans: 0.636; Noto, Roboto: 0.56)


def _year_labels(svg: str) -> tuple[float, list[tuple[float, str]]]:
    root = ET.fromstring(svg)
    width = float(root.get("viewBox").split()[2])
    labels = [(float(t.get("x")), t.text) for t in root.iter(f"{SVG}text") if t.get("class") == "year"]
    assert all(t.get("text-anchor") == "middle" for t in root.iter(f"{SVG}text") if t.get("class") == "year")
    return width, labels


@pytest.mark.parametrize("years", [[1962, 1976, 1985], [1960], [1999, 2001, 2023], [1911, 2024]])
def test_every_year_label_lies_inside_the_timeline(years):
    """Centred on its decade's line, a label reaches half its width to the left: the first one, "1960", showed as
    "960" when the margin was narrower than that."""
    items = [(year, f"System {i}", f"id/s{i}.html") for i, year in enumerate(years)]
    width, labels = _year_labels(timeline_svg(items, "Entry into service", "../"))
    assert labels and labels[0][1] == str(years[0] - years[0] % 10)
    for x, text in labels:
        half = len(text) * DIGIT_EM * FONT_PX / 2
        assert x - half >= 0 and x + half <= width, (text, x, half)
