"""Bar charts as server-drawn SVG: no script, no inline style (the Content Security Policy allows neither), so
they print, work without JavaScript and read the same in every browser. Colours come from app.css classes."""

from __future__ import annotations

from markupsafe import Markup, escape

ROW = 26  # height of one horizontal bar's row
LABEL = 200  # width kept for the labels of horizontal bars
WIDTH = 480


def _nice_max(value: int) -> int:
    """A round upper bound for the axis (1, 2, 5 × 10^n)."""
    if value <= 5:
        return max(value, 1)
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bars(data: list[tuple[str, int]], *, vertical: bool = False) -> Markup:
    """An SVG bar chart of (label, count); the count is written on each bar, so no axis is needed to read it."""
    if not data:
        return Markup("")
    top = _nice_max(max(n for _label, n in data))
    return _vertical(data, top) if vertical else _horizontal(data, top)


def _horizontal(data: list[tuple[str, int]], top: int) -> Markup:
    span = WIDTH - LABEL - 40
    height = ROW * len(data) + 4
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
             f'preserveAspectRatio="xMinYMin meet" direction="ltr">']
    for i, (label, count) in enumerate(data):
        y = i * ROW + 2
        w = round(span * count / top, 1)
        parts.append(f'<text class="chart-label" x="{LABEL - 8}" y="{y + 17}" text-anchor="end">'
                     f'{escape(_clip(label))}</text>')
        parts.append(f'<rect class="chart-bar" x="{LABEL}" y="{y + 3}" width="{w}" height="{ROW - 8}" rx="2">'
                     f'<title>{escape(label)}: {count}</title></rect>')
        parts.append(f'<text class="chart-value" x="{LABEL + w + 6}" y="{y + 17}">{count}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _vertical(data: list[tuple[str, int]], top: int) -> Markup:
    height, base, left = 220, 190, 8
    slot = (WIDTH - left) / len(data)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" direction="ltr">',
             f'<line class="chart-axis" x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}"/>']
    for i, (label, count) in enumerate(data):
        x = left + i * slot
        h = round((base - 24) * count / top, 1)
        parts.append(f'<rect class="chart-bar" x="{x + slot * 0.15:.1f}" y="{base - h}" width="{slot * 0.7:.1f}" '
                     f'height="{h}" rx="2"><title>{escape(label)}: {count}</title></rect>')
        parts.append(f'<text class="chart-value" x="{x + slot / 2:.1f}" y="{base - h - 5}" '
                     f'text-anchor="middle">{count}</text>')
        parts.append(f'<text class="chart-label" x="{x + slot / 2:.1f}" y="{base + 18}" '
                     f'text-anchor="middle">{escape(label[5:])}</text>')  # MM-DD of the week's Monday
    parts.append("</svg>")
    return Markup("".join(parts))


def _clip(text: str, size: int = 28) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
