"""Pictures drawn at build time as SVG, with no network: variant family trees and service timelines."""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

BOX_W, BOX_H, GAP_X, GAP_Y = 150, 40, 24, 36


@dataclass
class TreeNode:
    label: str
    href: str | None
    children: list["TreeNode"]
    current: bool = False
    based_on: list[str] | None = None


def _layout(node: TreeNode, depth: int, x: float, out: list) -> float:
    """Place leaves left to right, parents centred over their children; returns the next free x. With a stack,
    not recursion: a chain of variants may be as long as the entries make it."""
    stack = [(node, depth, None)]  # None: its children are still to place; else the x where they start
    while stack:
        node, depth, start = stack.pop()
        if not node.children:
            out.append((node, depth, x))
            x += BOX_W + GAP_X
        elif start is None:
            stack.append((node, depth, x))
            stack.extend((child, depth + 1, None) for child in reversed(node.children))
        else:
            out.append((node, depth, (start + x - GAP_X - BOX_W) / 2))
    return x


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def family_tree_svg(root: TreeNode, title: str, prefix: str) -> str:
    """An SVG tree: parent → variants, the current page's system highlighted; boxes link to pages."""
    placed: list = []
    width = _layout(root, 0, 0, placed) - GAP_X
    depth = max(d for _, d, _ in placed)
    height = (depth + 1) * (BOX_H + GAP_Y) - GAP_Y
    pos = {id(n): (x, d * (BOX_H + GAP_Y)) for n, d, x in placed}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="tree" viewBox="-2 -2 {width + 4:.0f} {height + 4:.0f}" '
             f'width="{width + 4:.0f}" height="{height + 4:.0f}">',
             f'<title>{escape(title)}</title>']
    for node, _, _ in placed:
        x, y = pos[id(node)]
        for child in node.children:
            cx, cy = pos[id(child)]
            parts.append(f'<path class="edge" d="M{x + BOX_W / 2:.0f} {y + BOX_H} V{y + BOX_H + GAP_Y / 2:.0f} '
                         f'H{cx + BOX_W / 2:.0f} V{cy}"/>')
    for node, _, _ in placed:
        x, y = pos[id(node)]
        label = _short(node.label)
        cls = "node current" if node.current else "node"
        box = f'<rect class="{cls}" x="{x:.0f}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4"/>'
        if node.based_on:  # second line: what the system is built on
            box += (f'<text x="{x + BOX_W / 2:.0f}" y="{y + 17}" text-anchor="middle">{escape(label)}</text>'
                    f'<text class="based" x="{x + BOX_W / 2:.0f}" y="{y + 32}" text-anchor="middle">'
                    f'{escape(_short("on " + ", ".join(node.based_on)))}</text>')
        else:
            box += f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 5:.0f}" text-anchor="middle">{escape(label)}</text>'

        if node.href and not node.current:
            parts.append(f'<a href={quoteattr(prefix + node.href)}>{box}<title>{escape(node.label)}</title></a>')
        else:
            parts.append(box)
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(items: list[tuple[int, str, str | None]], title: str, prefix: str) -> str:
    """Years on a horizontal axis, one labelled dot per system: when each entered service."""
    items = sorted(items, key=lambda i: (i[0], i[1]))
    if not items:
        return ""
    first, last = items[0][0], items[-1][0]
    first, last = first - first % 10, last - last % 10 + 10
    # left: room for half of the first decade's label, centred on its line: a year is about 28 px wide at 12 px
    # (style.css), and a margin of 10 showed "1960" as "960"
    width, row_h, left = 760, 20, 22
    height = 40 + row_h * len(items)
    scale = (width - 2 * left - 190) / max(last - first, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}">',
             f'<title>{escape(title)}</title>']
    for year in range(first, last + 1, 10):
        x = left + (year - first) * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{height}"/>'
                     f'<text class="year" x="{x:.1f}" y="12" text-anchor="middle">{year}</text>')
    for i, (year, label, href) in enumerate(items):
        x = left + (year - first) * scale
        y = 32 + i * row_h
        dot = (f'<circle cx="{x:.1f}" cy="{y}" r="4"/>'
               f'<text x="{x + 8:.1f}" y="{y + 4}">{escape(label)} ({year})</text>')
        parts.append(f'<a href={quoteattr(prefix + href)}>{dot}</a>' if href else dot)
    parts.append("</svg>")
    return "".join(parts)
