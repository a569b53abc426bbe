"""Small charts as inline SVG, drawn on the server: no JavaScript, no CDN, nothing to download. Pure.

Colours are SVG presentation attributes (not style attributes), so the page's Content Security
Policy (style-src 'self') allows them. Every bar and point carries a <title>: its exact value
shows on hover and is read by screen readers.
"""

from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup, escape

# Kibana's default palette (EUI), so the page and the dashboard look like one story.
PALETTE = ("#54b399", "#6092c0", "#d36086", "#9170b8", "#ca8eae", "#d6bf57", "#b9a888", "#da8b45", "#aa6556",
           "#e7664c")
OTHER_COLOUR = "#98a2b3"
INK, MUTED, GRID = "#1f2933", "#5f6b7a", "#e3e8ee"
WIDTH, HEIGHT = 560, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 50, 30
Series = tuple[str, Sequence[float | None]]


def colour(index: int, name: str = "") -> str:
    return OTHER_COLOUR if name == "other" else PALETTE[index % len(PALETTE)]


def steps(top: float) -> int:
    """How many grid steps a nice_max top divides into round numbers (1: 5, 2: 4, 2.5: 5, 5: 5)."""
    mantissa = top / 10 ** math.floor(math.log10(top))
    return 4 if round(mantissa, 6) in (2.0, 4.0) else 5


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= value (1 for nothing)."""
    if not value or value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power  # pragma: no cover


def number(value: float) -> str:
    """A short label: 1,234 / 12.5 / 0.123."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _frame(title: str, chart_id: str, body: list[str], legend: Sequence[tuple[str, str]] = (), height: int = HEIGHT) -> Markup:
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<text x="4" y="15" font-size="14" font-weight="600" fill="{INK}">{escape(title)}</text>',
    ]
    x = LEFT
    for name, fill in legend:
        shown = name if len(name) <= 22 else name[:21] + "…"
        parts.append(f'<rect x="{x}" y="25" width="10" height="10" rx="2" fill="{fill}"/>'
                     f'<text x="{x + 14}" y="34" fill="{INK}">{escape(shown)}</text>')
        x += 24 + 6.8 * len(shown)
        if x > WIDTH - 60:
            break
    parts += body
    parts.append("</svg>")
    return Markup("".join(parts))


def _empty(title: str, chart_id: str, why: str) -> Markup:
    return _frame(title, chart_id, [
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}" font-size="13">{escape(why)}</text>'
    ])


def _y_axis(top: float, unit: str, plot_height: float) -> list[str]:
    parts = []
    n = steps(top)
    for k in range(n + 1):
        value = top * k / n
        y = TOP + plot_height - plot_height * k / n
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{escape(number(value))}</text>')
    if unit:
        parts.append(f'<text x="12" y="{TOP + plot_height / 2:.1f}" text-anchor="middle" fill="{MUTED}" '
                     f'transform="rotate(-90 12 {TOP + plot_height / 2:.1f})">{escape(unit)}</text>')
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float], plot_height: float) -> list[str]:
    every = max(1, math.ceil(len(labels) / 10))
    return [
        f'<text x="{x:.1f}" y="{TOP + plot_height + 16:.1f}" text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, centres)) if i % every == 0
    ]


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, chart_id: str, unit: str = "",
              stacked: bool = True) -> Markup:
    """Vertical bars per label: one per series side by side, or stacked."""
    if not labels or not series or not any(v for _, values in series for v in values if v):
        return _empty(title, chart_id, "no data yet")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = ([sum(values[i] or 0 for _, values in series) for i in range(len(labels))] if stacked
              else [max(values[i] or 0 for _, values in series) for i in range(len(labels))])
    top = nice_max(max(totals))
    slot = plot_w / len(labels)
    width = slot * 0.7 / (1 if stacked else len(series))
    body = _y_axis(top, unit, plot_h)
    centres = []
    for i, label in enumerate(labels):
        left = LEFT + slot * i + slot * 0.15
        centres.append(LEFT + slot * (i + 0.5))
        base = 0.0
        for j, (name, values) in enumerate(series):
            value = values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            x = left if stacked else left + width * j
            y = TOP + plot_h - plot_h * base / top - h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1):.1f}" height="{h:.1f}" '
                        f'fill="{colour(j, name)}"><title>{escape(label)} · {escape(name)}: {escape(number(value))}'
                        f'{escape(" " + unit if unit else "")}</title></rect>')
            if stacked:
                base += value
    body += _x_labels(labels, centres, plot_h)
    return _frame(title, chart_id, body, [(name, colour(j, name)) for j, (name, _) in enumerate(series)])


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, chart_id: str, unit: str = "") -> Markup:
    """One line (with points) per series; None values leave a gap."""
    values = [v for _, vs in series for v in vs if v is not None]
    if not labels or not values:
        return _empty(title, chart_id, "no data yet")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max(values))
    slot = plot_w / len(labels)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    body = _y_axis(top, unit, plot_h)
    for j, (name, vs) in enumerate(series):
        fill = colour(j, name)
        points = [(centres[i], TOP + plot_h - plot_h * v / top, v, labels[i]) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{fill}" stroke-width="2"/>')
        for x, y, v, label in points:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{fill}"><title>{escape(label)} · '
                        f'{escape(name)}: {escape(number(v))}{escape(" " + unit if unit else "")}</title></circle>')
    body += _x_labels(labels, centres, plot_h)
    return _frame(title, chart_id, body, [(name, colour(j, name)) for j, (name, _) in enumerate(series)])


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, chart_id: str, unit: str = "",
               markers: Sequence[tuple[float, str, str]] = (), colours: Sequence[str] | None = None) -> Markup:
    """Horizontal bars, one per label, with optional vertical marker lines (value, label, colour)."""
    if not labels:
        return _empty(title, chart_id, "no data yet")
    label_w = 190
    row = 22
    height = TOP + row * len(labels) + 20 + 12 * len(markers)
    plot_w = WIDTH - label_w - RIGHT - 40
    top = nice_max(max([*values, *(m[0] for m in markers)]))
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = TOP + row * i
        w = plot_w * max(value, 0) / top
        fill = colours[i] if colours else colour(0)
        shown = label if len(label) <= 28 else label[:27] + "…"
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" fill="{INK}">{escape(shown)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" rx="2" fill="{fill}">'
                    f'<title>{escape(label)}: {escape(number(value))}{escape(" " + unit if unit else "")}</title></rect>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" fill="{MUTED}">{escape(number(value))}</text>')
    bottom = TOP + row * len(labels)
    for k, (value, name, stroke) in enumerate(markers):
        x = label_w + plot_w * value / top
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 4}" y2="{bottom}" stroke="{stroke}" '
                    f'stroke-dasharray="4 3" stroke-width="1.5"><title>{escape(name)}: {escape(number(value))}</title>'
                    f'</line><text x="{x:.1f}" y="{bottom + 13 + 12 * k}" text-anchor="middle" fill="{stroke}">'
                    f'{escape(name)} {escape(number(value))}</text>')
    legend = [(name, stroke) for _, name, stroke in markers]
    return _frame(title, chart_id, body, legend, height=height)
