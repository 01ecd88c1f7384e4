"""The dashboard's figures as inline SVG markup, drawn by the server (no script library, no
external asset): the cumulative enrolment curve and the completion bars.

Each figure is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (its text
alternative); every label is escaped. Colours are presentation attributes and classes (the
Content-Security-Policy allows no inline script, and none is needed here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.utils.html import escape

# Site colours (colour-blind-safe order), and the completion segments' colours.
PALETTE = ("#0b5cad", "#b26a00", "#2e7d32", "#7b3fb3", "#b00020", "#00838f", "#5b6470")
SEGMENT_COLOURS = {
    "submitted": "#2e7d32", "signed": "#2e7d32",
    "open": "#0b5cad", "in review": "#0b5cad",
    "ready, not opened": "#b26a00", "outstanding": "#b26a00",
    "not opened": "#c9d1da", "readings not in": "#c9d1da",
}


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: int) -> tuple[int, int]:
    """A round axis maximum at or above ``value``, and its tick step (4 or 5 ticks)."""
    if value <= 4:
        return 4, 1
    magnitude = 10 ** math.floor(math.log10(value / 4))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * 5 >= value:
            step = max(1, int(math.ceil(step)))
            return int(math.ceil(value / step) * step), step
    return value, max(1, value // 4)  # pragma: no cover - the loop always returns


def _date_label(day: date, unit: str) -> str:
    return f"{day.day} {day:%b}" if unit == "day" else f"wk {day.day} {day:%b}"


def enrolment_svg(periods: Sequence[date], series: Sequence[dict[str, Any]], unit: str) -> str:
    """Cumulative screened (dashed) and enrolled (solid) cases per site over ``periods``."""
    width, height = 660, 260
    left, right, top, bottom = 48, 150, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    head = (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            'aria-labelledby="fig-enrolment-title fig-enrolment-desc" '
            'xmlns="http://www.w3.org/2000/svg">'
            '<title id="fig-enrolment-title">Cumulative enrolment per site</title>')
    if not periods:
        return (head + '<desc id="fig-enrolment-desc">No case has been screened yet.</desc>'
                f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                'class="chart-empty">No case yet</text></svg>')
    top_value = max([1, *(max(s["screened"][-1], s["enrolled"][-1]) for s in series)])
    y_max, step = nice_ceiling(top_value)
    n = len(periods)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / y_max

    parts = [head]
    desc = "; ".join(f"site {s['label']}: {s['enrolled'][-1]} enrolled, {s['screened'][-1]} "
                     "screened" for s in series)
    parts.append(f'<desc id="fig-enrolment-desc">Cumulative cases per {unit}, '
                 f'{periods[0].isoformat()} to {periods[-1].isoformat()}. '
                 f'{escape(desc)}.</desc>')
    for v in range(0, y_max + 1, step):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_num(y(v))}" '
                     f'y2="{_num(y(v))}" stroke="#e3e7ec" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{_num(y(v) + 4)}" text-anchor="end" '
                     f'class="chart-tick">{v}</text>')
    ticks = sorted({0, n // 2, n - 1})
    for i in ticks:
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        parts.append(f'<text x="{_num(x(i))}" y="{height - bottom + 16}" '
                     f'text-anchor="{anchor}" class="chart-tick">'
                     f'{escape(_date_label(periods[i], unit))}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" '
                 'stroke="#8a94a0"/>'
                 f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
                 f'y2="{top + plot_h}" stroke="#8a94a0"/>')
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        for kind, dash in (("screened", ' stroke-dasharray="5 4"'), ("enrolled", "")):
            points = " ".join(f"{_num(x(i))},{_num(y(v))}" for i, v in enumerate(s[kind]))
            if n == 1:
                parts.append(f'<circle cx="{_num(x(0))}" cy="{_num(y(s[kind][0]))}" r="3" '
                             f'fill="{colour}"/>')
            else:
                parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                             f'stroke-width="2"{dash}/>')
        ly = top + 10 + 34 * k
        lx = left + plot_w + 16
        parts.append(
            f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2"/><text x="{lx + 28}" y="{ly + 4}" class="chart-label">'
            f'{escape(s["label"])} enrolled {s["enrolled"][-1]}</text>'
            f'<line x1="{lx}" x2="{lx + 22}" y1="{ly + 15}" y2="{ly + 15}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="5 4"/><text x="{lx + 28}" y="{ly + 19}" '
            f'class="chart-label">screened {s["screened"][-1]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def completion_svg(bars: Sequence[dict[str, Any]]) -> str:
    """One horizontal stacked bar per line of work (its label above it), with "done of total
    (percent)" at its end, under a legend of the segments."""
    width, bar_w, row_h = 660, 500, 42
    by_colour: dict[str, list[str]] = {}  # one legend entry per colour: "submitted / signed"
    for bar in bars:
        for name, _ in bar["segments"]:
            names = by_colour.setdefault(SEGMENT_COLOURS.get(name, "#8a94a0"), [])
            if name not in names:
                names.append(name)
    legend, lx, ly = [], 0.0, 12
    for colour, names in by_colour.items():
        text = " / ".join(names)
        size = 22 + 6.6 * len(text)
        if lx and lx + size > width:
            lx, ly = 0.0, ly + 18
        legend.append(f'<rect x="{_num(lx)}" y="{ly - 10}" width="12" height="12" '
                      f'fill="{colour}"/><text x="{_num(lx + 16)}" y="{ly}" '
                      f'class="chart-label">{escape(text)}</text>')
        lx += size + 10
    top = ly + 14
    height = top + row_h * max(1, len(bars))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             'aria-labelledby="fig-completion-title fig-completion-desc" '
             'xmlns="http://www.w3.org/2000/svg">'
             '<title id="fig-completion-title">Completion of readings, final reports and '
             f'ratings</title><desc id="fig-completion-desc">{escape(completion_text(bars))}'
             '</desc>', *legend]
    for row, bar in enumerate(bars):
        y = top + row * row_h
        total = bar["total"]
        parts.append(f'<text x="0" y="{y + 12}" class="chart-label">{escape(bar["label"][:90])}'
                     f'</text><rect x="0" y="{y + 17}" width="{bar_w}" height="18" '
                     'fill="#f3f5f7" stroke="#d6dbe1"/>')
        x = 0.0
        for name, value in bar["segments"]:
            if total <= 0 or value <= 0:
                continue
            w = bar_w * value / total
            parts.append(f'<rect x="{_num(x)}" y="{y + 17}" width="{_num(w)}" height="18" '
                         f'fill="{SEGMENT_COLOURS.get(name, "#8a94a0")}">'
                         f'<title>{escape(name)}: {value}</title></rect>')
            x += w
        done = bar["segments"][0][1]
        share = f" ({100 * done / total:.0f}%)" if total else ""
        parts.append(f'<text x="{bar_w + 8}" y="{y + 31}" class="chart-label">'
                     f'{done} of {total}{share}</text>')
    if not bars:
        parts.append(f'<text x="0" y="{top + 14}" class="chart-empty">'
                     'Nothing to complete yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def completion_text(bars: Sequence[dict[str, Any]]) -> str:
    """The completion bars in words (the figure's text alternative)."""
    lines = []
    for bar in bars:
        parts = ", ".join(f"{value} {name}" for name, value in bar["segments"])
        lines.append(f"{bar['label']}: {parts} (of {bar['total']})")
    return "; ".join(lines) + "." if lines else "Nothing to complete yet."
