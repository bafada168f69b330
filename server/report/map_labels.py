"""Place the segment names on the centroid map so that no two overlap, nor cover a circle.

Greedy, biggest segment first: a label tries below its circle, above, right, left, then
further and further below/above; the first box that is inside the canvas and clear of
every placed label and every other circle wins. Box widths use a generous average glyph
width, so a real font renders inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

GLYPH = 6.6  # px per character at font-size 11 (wider than the average glyph)
HEIGHT = 13.0  # px of one line at font-size 11


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle (left, top, right, bottom) in SVG pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    def hits(self, other: Box, gap: float = 2.0) -> bool:
        return not (self.x1 + gap <= other.x0 or other.x1 + gap <= self.x0
                    or self.y1 + gap <= other.y0 or other.y1 + gap <= self.y0)


def text_box(x: float, y: float, text: str, anchor: str) -> Box:
    """Box of a text whose baseline starts at (x, y) with the given text-anchor."""
    w = GLYPH * len(text)
    left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
    return Box(left, y - HEIGHT + 3, left + w, y + 3)


def circle_box(x: float, y: float, r: float) -> Box:
    return Box(x - r, y - r, x + r, y + r)


def place_labels(circles: list[tuple[float, float, float]], texts: list[str], order: list[int],
                 width: float, height: float) -> dict[int, tuple[float, float, str]]:
    """(x, y, anchor) of each label, by index; `order`: the indices, most important first."""
    placed: list[Box] = []
    out: dict[int, tuple[float, float, str]] = {}
    for j in order:
        x, y, r = circles[j]
        others = [circle_box(*c) for i, c in enumerate(circles) if i != j]
        tries = [(x, y + r + 14, "middle"), (x, y - r - 5, "middle"), (x + r + 5, y + 4, "start"),
                 (x - r - 5, y + 4, "end")]
        tries += [(x, y + r + 14 + step * HEIGHT, "middle") for step in range(1, 40)]
        tries += [(x, y - r - 5 - step * HEIGHT, "middle") for step in range(1, 40)]
        for tx, ty, anchor in tries:
            box = text_box(tx, ty, texts[j], anchor)
            inside = box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height
            if inside and not any(box.hits(b) for b in placed + others):
                break
        else:  # nowhere clear: below everything placed so far, at the left edge
            tx, ty, anchor = 4.0, max((b.y1 for b in placed), default=0.0) + HEIGHT, "start"
            box = text_box(tx, ty, texts[j], anchor)
        placed.append(box)
        out[j] = (tx, ty, anchor)
    return out
