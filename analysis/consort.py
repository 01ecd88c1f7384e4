"""The CONSORT-style flow diagram of the report (PNG), drawn with matplotlib.

A reader of a trial report looks for the flow figure first: how many cases were assessed,
why some were excluded, how many were enrolled and then read and rated in each arm. The
figure is drawn from ``analysis.summary.flow_counts`` (the same counts as the flow table), so
the two cannot disagree. Boxes are sized from their measured text: a long exclusion reason
wraps inside its box and many reasons make the side box taller, nothing is cut.

Layout, in inches (the axes span the whole figure, one data unit = one inch, so font sizes
in points and box sizes agree): the eligibility column in the middle, the exclusions (and
cases still awaiting screening) in side boxes, then one column per arm.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; the figure is a file

from matplotlib.backend_bases import RendererBase  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

WIDTH = 7.6  # inches
FONT = 8.5  # points
PAD = 0.08  # inches between a box's edge and its text
GAP = 0.32  # vertical gap between stacked boxes
DPI = 150

MAIN_W = 2.9  # eligibility column
ARM_W = 3.2  # one box per arm
CENTRE = WIDTH / 2
SIDE_W = WIDTH / 2 - 0.5  # exclusion / awaiting side boxes: beside the flow line


@dataclass
class Box:
    """A drawn box: its rectangle (inches) and its text artist, for arrows and tests."""

    x: float
    y: float  # bottom
    w: float
    h: float
    text: Text

    @property
    def top(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


def _clean(text: str) -> str:
    return " ".join(str(text).split())


class _Layout:
    """Places boxes top-down; text is measured with the Agg renderer so each box fits it."""

    def __init__(self) -> None:
        self.fig = Figure(figsize=(WIDTH, 10), dpi=DPI)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.renderer: RendererBase = self.fig.canvas.get_renderer()  # type: ignore[attr-defined]
        self.boxes: list[Box] = []
        self.arrows: list[tuple[tuple[float, float], tuple[float, float], bool]] = []

    def _size(self, text: Text) -> tuple[float, float]:
        extent = text.get_window_extent(self.renderer)
        return extent.width / self.fig.dpi, extent.height / self.fig.dpi

    def text(self, paragraphs: list[str], width: float, *, align: str = "center",
             bullets: bool = False) -> Text:
        """A Text artist whose lines all fit ``width`` inches (wrapped, measured, re-wrapped)."""
        inner = width - 2 * PAD
        chars = max(8, int(inner * 72 / (FONT * 0.45)))  # too wide: measured, narrowed
        while True:
            lines: list[str] = []
            for i, paragraph in enumerate(paragraphs):
                bullet = bullets and i > 0
                wrapped = textwrap.wrap(_clean(paragraph), chars - (2 if bullet else 0),
                                        break_long_words=True) or [""]
                if bullet:
                    wrapped = ["• " + wrapped[0]] + ["   " + w for w in wrapped[1:]]
                lines += wrapped
            artist = Text(0, 0, "\n".join(lines), fontsize=FONT, ha=align, va="top",
                          multialignment=align, linespacing=1.35,
                          parse_math=False)  # "$" in a free-text reason is not mathtext
            artist.set_figure(self.fig)
            if self._size(artist)[0] <= inner or chars <= 8:
                return artist
            chars -= 2

    def box(self, paragraphs: list[str], x: float, top: float, w: float, *,
            align: str = "center", bullets: bool = False) -> Box:
        """A box whose top-left corner is (x, top); its height follows its text."""
        artist = self.text(paragraphs, w, align=align, bullets=bullets)
        h = self._size(artist)[1] + 2 * PAD
        box = Box(x, top - h, w, h, artist)
        self.boxes.append(box)
        return box

    def arrow(self, start: tuple[float, float], end: tuple[float, float],
              head: bool = True) -> None:
        self.arrows.append((start, end, head))

    def draw(self, height: float) -> Figure:
        """Shift everything so the lowest point sits at the bottom margin, then draw."""
        fig, ax = self.fig, self.ax
        fig.set_size_inches(WIDTH, height)
        ax.set_xlim(0, WIDTH)
        ax.set_ylim(0, height)
        for box in self.boxes:
            ax.add_patch(Rectangle((box.x, box.y), box.w, box.h, facecolor="white",
                                   edgecolor="#333333", linewidth=0.9))
            ha = box.text.get_horizontalalignment()
            tx = box.cx if ha == "center" else box.x + PAD
            box.text.set_position((tx, box.top - PAD))
            ax.add_artist(box.text)
        for start, end, head in self.arrows:
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>" if head else "-",
                                         mutation_scale=9, color="#333333", linewidth=0.9,
                                         shrinkA=0, shrinkB=0))
        return fig


def consort_figure(flow: dict[str, Any], arm_labels: dict[str, str]) -> Figure | None:
    """The flow diagram as a matplotlib Figure (tests read its Text artists back), or None
    when no case was screened yet."""
    if not flow or not flow.get("screened"):
        return None
    layout = _Layout()
    y = 100.0  # provisional top; everything is shifted down at the end
    screened = layout.box([f"Assessed for eligibility (n={flow['screened']})"],
                          CENTRE - MAIN_W / 2, y, MAIN_W)
    y = screened.y - GAP

    # Side boxes at the eligibility step: excluded (right), awaiting screening (left).
    reasons = flow.get("exclusion_reasons") or {}
    side_right = WIDTH - 0.05 - SIDE_W
    excluded = layout.box([f"Excluded (n={flow.get('excluded', 0)})",
                           *[f"{reason} (n={n})" for reason, n in reasons.items()]],
                          side_right, y, SIDE_W, align="left", bullets=True)
    side = [excluded]
    if flow.get("awaiting_screening"):
        side.append(layout.box([f"Awaiting screening (n={flow['awaiting_screening']})"],
                               0.05, y, SIDE_W, align="left"))
    for box in side:
        mid = box.y + box.h / 2
        end = box.x if box.x > CENTRE else box.x + box.w
        layout.arrow((CENTRE, mid), (end, mid))
    y = min(box.y for box in side) - GAP

    enrolled = layout.box([f"Enrolled (n={flow.get('enrolled', 0)})"],
                          CENTRE - MAIN_W / 2, y, MAIN_W)
    layout.arrow((CENTRE, screened.y), (CENTRE, enrolled.top))
    y = enrolled.y - GAP

    if flow.get("withdrawn"):
        withdrawn = layout.box([f"Withdrawn after enrolment (n={flow['withdrawn']})"],
                               side_right, y, SIDE_W, align="left")
        mid = withdrawn.y + withdrawn.h / 2
        layout.arrow((CENTRE, mid), (withdrawn.x, mid))
        y = withdrawn.y - GAP

    # One column per arm, in the order of the flow's dict (the summary's arm order).
    read = flow.get("read_per_arm") or {}
    rated = flow.get("rated_per_arm") or {}
    arms = list(dict.fromkeys([*read, *rated]))
    split_y = y
    y -= GAP * 0.6
    centres = ([CENTRE] if len(arms) == 1 else
               [0.1 + ARM_W / 2 + i * (WIDTH - 0.2 - ARM_W) / (len(arms) - 1)
                for i in range(len(arms))])
    arm_w = ARM_W if len(arms) <= 2 else (WIDTH - 0.2) / len(arms) - 0.15
    read_boxes = [layout.box([arm_labels.get(arm, arm), f"Read (n={read.get(arm, 0)})"],
                             cx - arm_w / 2, y, arm_w) for arm, cx in zip(arms, centres,
                                                                         strict=True)]
    layout.arrow((CENTRE, enrolled.y), (CENTRE, split_y), head=False)
    if read_boxes:
        layout.arrow((min(centres), split_y), (max(centres), split_y), head=False)
        # Boxes of one row share their top; a taller label must not hide the row below.
        y = min(box.y for box in read_boxes) - GAP
    for box in read_boxes:
        layout.arrow((box.cx, split_y), (box.cx, box.top))
    for arm, box in zip(arms, read_boxes, strict=True):
        rated_box = layout.box([f"Rated (n={rated.get(arm, 0)})"], box.x, y, box.w)
        layout.arrow((box.cx, box.y), (box.cx, rated_box.top))
    bottom = min(box.y for box in layout.boxes)

    footnote = (f"n = cases. Read in both arms: {flow.get('read_both_arms', 0)}; rated in "
                f"both arms: {flow.get('rated_both_arms', 0)}; raters: {flow.get('raters', 0)}; "
                f"rating submissions: {flow.get('ratings', 0)}.")
    note = layout.text([footnote], WIDTH - 0.1, align="left")
    note_h = layout._size(note)[1]
    top_margin, bottom_margin = 0.08, 0.1
    shift = -(bottom - GAP * 0.6 - note_h - bottom_margin)
    for box in layout.boxes:
        box.y += shift
    layout.arrows = [((a[0], a[1] + shift), (b[0], b[1] + shift), head)
                     for a, b, head in layout.arrows]
    height = screened.top + top_margin
    note.set_position((0.05 + PAD, bottom + shift - GAP * 0.6))
    layout.ax.add_artist(note)
    return layout.draw(height)


def consort_png(flow: dict[str, Any], arm_labels: dict[str, str]) -> bytes | None:
    """The CONSORT flow figure as PNG bytes (150 dpi), or None when nothing was screened."""
    fig = consort_figure(flow, arm_labels)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()
