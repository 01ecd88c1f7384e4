"""report.pdf with reportlab: a document a journal's supplement could carry.

The PDF is read by people who never see the platform, so it must stand alone and be
traceable: a title block (trial, registry id, analysis plan version and SHA-256, data snapshot
SHA-256), the key numbers, the CONSORT flow figure, the report's sections (intro paragraphs,
tables, figures), the methods notes and the provenance. Every page's footer repeats the
registry id and the short data hash, so a single printed page still says where it came from.

Tables are real tables: every cell a wrapped Paragraph (nothing cut or shortened), column
widths computed from the content to fit the frame (a very wide table gets the font one step
smaller, then wraps), the header row repeated after a page break. Flowables flow: a table
splits across pages, only a figure is kept with its title, so no page is left mostly empty.

The text font is DejaVu Sans (it has ±, −, →, ≥, χ²): the system's copy (Debian package
``fonts-dejavu-core``), else the copy matplotlib ships; with neither, Helvetica and the glyphs
it lacks are replaced by ASCII (→ becomes ->).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

PAGE = A4
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 18 * mm, 16 * mm, 20 * mm
FRAME_W = PAGE[0] - 2 * MARGIN_X
FRAME_H = PAGE[1] - MARGIN_TOP - MARGIN_BOTTOM
TABLE_SIZES = (8.0, 7.0)  # points: the table font, and one step smaller for very wide tables
VERY_WIDE = 1.25  # natural width over frame width from which a table gets the smaller font
CELL_PAD = 3.0  # points, left and right of a cell's text
FIGURE_MAX_H = 0.45 * FRAME_H  # two figures with their titles fit on a page
CONSORT_MAX_H = 0.85 * FRAME_H
SHORT_HASH = 12

FONT_NAMES = ("ReportSans", "ReportSans-Bold", "ReportSans-Oblique")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf")
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts"))
# What Helvetica (WinAnsi encoding) cannot show, when no DejaVu Sans is found.
ASCII_GLYPHS = {"−": "-", "→": "->", "←": "<-", "≥": ">=", "≤": "<=", "≠": "!=", "≈": "~",
                "χ": "chi", "κ": "kappa", "α": "alpha", "β": "beta", "μ": "mu", "σ": "sigma",
                "Δ": "Delta", "√": "sqrt", "∞": "inf", "³": "^3", "⁻": "-", "¹": "^1",
                "✓": "yes", "✗": "no", "‑": "-", "’": "'", "‘": "'", "“": '"', "”": '"'}


# --------------------------------------------------------------------------------------------
# Fonts and text
# --------------------------------------------------------------------------------------------

def font_files() -> tuple[Path, Path, Path] | None:
    """DejaVu Sans regular, bold and oblique: the system's, else matplotlib's copy, else None."""
    dirs: list[Path] = list(SYSTEM_FONT_DIRS)
    try:
        import matplotlib

        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    for directory in dirs:
        if not directory.is_dir():
            continue
        found = []
        for name in FONT_FILES:
            path = directory / name
            if not path.is_file():
                path = next(iter(sorted(directory.rglob(name))), None)
            found.append(path)
        if all(found):
            return found[0], found[1], found[2]
    return None


@dataclass(frozen=True)
class Fonts:
    """The fonts of one rendering, and whether text must avoid glyphs Helvetica lacks."""

    regular: str
    bold: str
    italic: str
    ascii_only: bool


def _fonts(files: tuple[Path, Path, Path] | None) -> Fonts:
    if files is None:
        return Fonts("Helvetica", "Helvetica-Bold", "Helvetica-Oblique", ascii_only=True)
    registered = set(pdfmetrics.getRegisteredFontNames())
    for name, path in zip(FONT_NAMES, files, strict=True):
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    pdfmetrics.registerFontFamily(FONT_NAMES[0], normal=FONT_NAMES[0], bold=FONT_NAMES[1],
                                  italic=FONT_NAMES[2], boldItalic=FONT_NAMES[1])
    return Fonts(*FONT_NAMES, ascii_only=False)


def _plain(text: Any, fonts: Fonts) -> str:
    """The text as the font can show it (glyph replacement for Helvetica)."""
    text = "" if text is None else str(text)
    if fonts.ascii_only:
        text = "".join(ASCII_GLYPHS.get(c, c) for c in text)
        text = "".join(c if _winansi(c) else "?" for c in text)
    return text


def _winansi(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _markup(text: Any, fonts: Fonts) -> str:
    """Paragraph markup for plain text: escaped, line breaks kept."""
    return escape(_plain(text, fonts)).replace("\n", "<br/>")


# --------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------

@dataclass
class Styles:
    fonts: Fonts
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    bullet: ParagraphStyle
    small: ParagraphStyle
    note: ParagraphStyle
    caption: ParagraphStyle
    meta_key: ParagraphStyle

    def cell(self, size: float, *, bold: bool = False, right: bool = False) -> ParagraphStyle:
        return ParagraphStyle(
            f"cell{size}{bold}{right}", fontName=self.fonts.bold if bold else self.fonts.regular,
            fontSize=size, leading=size * 1.22, alignment=TA_RIGHT if right else TA_LEFT,
            splitLongWords=1)


def _styles(fonts: Fonts) -> Styles:
    def style(name: str, size: float, *, bold: bool = False, italic: bool = False,
              before: float = 0, after: float = 0, **kw: Any) -> ParagraphStyle:
        font = fonts.bold if bold else fonts.italic if italic else fonts.regular
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.3,
                              spaceBefore=before, spaceAfter=after, **kw)

    return Styles(
        fonts=fonts,
        title=style("title", 18, bold=True, after=4),
        subtitle=style("subtitle", 12, after=8),
        h1=style("h1", 13, bold=True, before=10, after=5, textColor=colors.HexColor("#1f3b57")),
        h2=style("h2", 9.5, bold=True, before=8, after=3),
        body=style("body", 9, after=4),
        bullet=style("bullet", 9, after=2, leftIndent=10, bulletIndent=1),
        small=style("small", 7.5, after=2),
        note=style("note", 7.5, italic=True, before=2, after=6,
                   textColor=colors.HexColor("#444444")),
        caption=style("caption", 9, bold=True, before=6, after=3),
        meta_key=style("meta_key", 8.5, bold=True),
    )


class _Heading(Paragraph):
    """A section heading that becomes an entry of the PDF's outline (bookmarks pane)."""

    def __init__(self, text: str, style: ParagraphStyle, key: str, title: str) -> None:
        super().__init__(text, style)
        self.outline = (key, title)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

NUMERIC = re.compile(r"^\s*[<>≤≥~−+-]?\s*[-−]?\d")
BLANK = {"", "-", "–", "n/a", "NA"}


def _numeric_column(cells: list[str]) -> bool:
    values = [c for c in cells if c.strip() not in BLANK]
    return bool(values) and all(NUMERIC.match(c) for c in values)


# A number range or estimate ("-0.12 to 0.34", "3.1 ± 0.6", "< 0.001") is one unit: its
# column is made wide enough that it never breaks inside.
_GLUE = (re.compile(r"(?<=[\d%]) (±|to|–|−|-) (?=[−\-+]?\d)"),  # 1.2 to 3.4, 30.1% to 95.4%
         re.compile(r"(?:(?<=\s)|^)([<>≤≥=~]) (?=[−\-+]?\d)"))


def _units(text: str) -> list[str]:
    """The pieces a cell text may break between (words, number ranges kept whole)."""
    glued = _GLUE[0].sub("\x00\\1\x00", text)
    glued = _GLUE[1].sub("\\1\x00", glued)
    return [u.replace("\x00", " ") for u in glued.split()] or [""]


@dataclass
class _Cell:
    """A cell's measured text: the width of each line unbroken and of each unit in it."""

    lines: list[list[float]]  # per text line, the widths of its units
    space: float

    @property
    def natural(self) -> float:
        return max((sum(u) + self.space * (len(u) - 1) for u in self.lines), default=0.0)

    @property
    def least(self) -> float:
        return max((max(u) for u in self.lines if u), default=0.0)

    def count_lines(self, avail: float) -> int:
        """Lines of the text wrapped greedily to ``avail`` points (as Paragraph does)."""
        count = 0
        for units in self.lines:
            count += 1
            used = -self.space
            for u in units:
                if used + self.space + u <= avail:
                    used += self.space + u
                elif u <= avail:
                    count, used = count + 1, u
                else:  # split inside the word (splitLongWords), from a new line
                    pieces = int(-(-u // max(avail, 1.0)))
                    count += pieces if used > 0 else pieces - 1
                    used = u - (pieces - 1) * avail
        return count


def _measure(text: str, font: str, size: float) -> _Cell:
    lines = [[pdfmetrics.stringWidth(u, font, size) for u in _units(line)]
             for line in text.split("\n")]
    return _Cell(lines, pdfmetrics.stringWidth(" ", font, size))


def column_widths(header: list[str], rows: list[list[str]], fonts: Fonts, size: float,
                  width: float) -> list[float]:
    """Column widths fitting ``width`` points, chosen to make the table short.

    Natural widths (no wrapping) when they fit. Otherwise every column starts at its widest
    unit (a word, or a number range kept whole), and the spare width goes, step by step, to
    the column whose widening saves the most lines per point (the next line break it removes),
    until nothing is saved any more; what is left is shared in proportion to what each column
    still lacks of its natural width."""
    cells = [[_measure(h, fonts.bold, size) for h in header]]
    cells += [[_measure(c, fonts.regular, size) for c in row] for row in rows]
    pad = 2 * CELL_PAD + 1
    ncols = len(header)
    natural = [max(r[c].natural for r in cells) + pad for c in range(ncols)]
    least = [max(r[c].least for r in cells) + pad for c in range(ncols)]
    if sum(natural) <= width:
        return natural
    if sum(least) >= width:  # even the words do not fit: scale down, Paragraph splits words
        return [w * width / sum(least) for w in least]

    cache: dict[tuple[int, float], list[int]] = {}

    def lines(c: int, w: float) -> list[int]:
        key = (c, round(w, 1))
        if key not in cache:
            cache[key] = [r[c].count_lines(w - pad) for r in cells]
        return cache[key]

    widths = least[:]
    step = max(2.0, (width - sum(least)) / 120)
    while True:
        spare = width - sum(widths)
        per_col = [lines(c, widths[c]) for c in range(ncols)]
        rows_now = [max(col[r] for col in per_col) for r in range(len(cells))]
        total = sum(rows_now)
        best: tuple[float, int, float] | None = None
        for c in range(ncols):
            others = [max([per_col[o][r] for o in range(ncols) if o != c] or [0])
                      for r in range(len(cells))]
            grow = step
            while grow <= spare + 1e-6 and widths[c] + grow <= natural[c] + step:
                mine = lines(c, widths[c] + grow)
                saved = total - sum(max(a, b) for a, b in zip(others, mine, strict=True))
                if saved > 0:
                    if best is None or saved / grow > best[0]:
                        best = (saved / grow, c, grow)
                    break
                grow += step
        if best is None:
            break
        widths[best[1]] += best[2]
    spare = width - sum(widths)
    wish = [max(n - w, 0.0) for n, w in zip(natural, widths, strict=True)]
    if spare > 0 and sum(wish) > 0:
        widths = [w + spare * x / sum(wish) for w, x in zip(widths, wish, strict=True)]
    return widths


def _natural_width(header: list[str], rows: list[list[str]], fonts: Fonts, size: float) -> float:
    return sum(max([_measure(header[i], fonts.bold, size).natural]
                   + [_measure(r[i], fonts.regular, size).natural for r in rows])
               + 2 * CELL_PAD + 1 for i in range(len(header)))


def table_flowables(table: Any, styles: Styles, width: float = FRAME_W) -> list[Flowable]:
    """A results table (``analysis.report.Table``): title above, the table, its note below."""
    fonts = styles.fonts
    columns = [_plain(c, fonts) for c in table.columns]
    raw_rows = [[_plain(c, fonts) for c in row] for row in table.rows]
    ncols = max([len(columns), *(len(r) for r in raw_rows)])
    title = Paragraph(_markup(table.title, fonts), styles.caption)
    note = getattr(table, "note", "")
    tail = [Paragraph(_markup(note, fonts), styles.note)] if note else [Spacer(1, 6)]
    if not ncols:
        return [KeepTogether([title, Paragraph("(empty table)", styles.body), *tail])]
    header = columns + [""] * (ncols - len(columns))
    rows = [r + [""] * (ncols - len(r)) for r in raw_rows]

    size = TABLE_SIZES[0]
    if _natural_width(header, rows, fonts, size) > VERY_WIDE * width:
        size = TABLE_SIZES[1]
    widths = column_widths(header, rows, fonts, size, width)
    numeric = [_numeric_column([r[i] for r in rows]) for i in range(ncols)]
    head_styles = [styles.cell(size, bold=True, right=numeric[i]) for i in range(ncols)]
    cell_styles = [styles.cell(size, right=numeric[i]) for i in range(ncols)]
    data = [[Paragraph(_markup(c, fonts), head_styles[i]) for i, c in enumerate(header)]]
    data += [[Paragraph(_markup(c, fonts), cell_styles[i]) for i, c in enumerate(row)]
             for row in rows]
    grid = _grid(data, widths, split_in_row=False)
    if max(grid._rowHeights) > FRAME_H / 2:  # a row that could not fit a page is split
        grid = _grid(data, widths, split_in_row=True)
    _, height = grid.wrap(width, FRAME_H)
    if height < FRAME_H / 3:  # a short table is not split over two pages
        return [KeepTogether([title, grid, *tail])]
    # A long table flows; the title only needs room for the header and a few rows below it.
    return [CondPageBreak(90), title, grid, *tail]


def _grid(data: list[list[Paragraph]], widths: list[float], *, split_in_row: bool) -> Table:
    grid = Table(data, colWidths=widths, repeatRows=1, splitInRow=int(split_in_row),
                 hAlign="LEFT")
    grid.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe7ef")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f5f7")]),
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.HexColor("#333333")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#333333")),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#c8ccd0")),
        ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.HexColor("#333333")),
    ]))
    grid.wrap(sum(widths), FRAME_H)  # row heights, to decide about splitting inside rows
    return grid


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def figure_flowables(title: str, png: bytes | None, styles: Styles, *,
                     max_height: float = FIGURE_MAX_H, width: float = FRAME_W) -> list[Flowable]:
    """A figure scaled to the frame width (aspect kept, height capped), kept with its title."""
    caption = Paragraph(_markup(title, styles.fonts), styles.caption)
    if not png:
        return [caption, Paragraph("Figure not available.", styles.body)]
    pixels_w, pixels_h = ImageReader(io.BytesIO(png)).getSize()
    w = width
    h = w * pixels_h / pixels_w
    if h > max_height:
        w, h = w * max_height / h, max_height
    image = Image(io.BytesIO(png), width=w, height=h, hAlign="CENTER")
    return [KeepTogether([caption, image, Spacer(1, 6)])]


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------

def _heading(text: str, styles: Styles, key: str) -> list[Flowable]:
    # A heading never ends a page: it needs room for a few lines of what follows.
    return [CondPageBreak(110), _Heading(_markup(text, styles.fonts), styles.h1, key, text)]


def _meta_table(pairs: list[tuple[str, str]], styles: Styles) -> Table:
    fonts = styles.fonts
    value_style = ParagraphStyle("meta_value", parent=styles.body, fontSize=8.5, leading=11,
                                 spaceAfter=0)
    key_w = 38 * mm
    data = [[Paragraph(_markup(k, fonts), styles.meta_key), Paragraph(_markup(v, fonts),
                                                                      value_style)]
            for k, v in pairs]
    meta = Table(data, colWidths=[key_w, FRAME_W - key_w], hAlign="LEFT")
    meta.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, colors.HexColor("#333333")),
    ]))
    return meta


def _plan_pairs(plan: dict | None) -> list[tuple[str, str]]:
    if not plan:
        return [("Analysis plan", "no signed analysis plan")]
    described = [f"version {plan.get('version', '?')}"]
    if plan.get("signed"):
        described.append(f"signed {plan['signed']}")
    if plan.get("primary_campaign"):
        described.append(f"primary campaign: {plan['primary_campaign']}")
    if plan.get("after_unblinding"):
        described.append("signed after the trial was unblinded")
    return [("Analysis plan", "; ".join(described)),
            ("Plan SHA-256", str(plan.get("sha256", "")))]


@dataclass
class _Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def _trial(context: dict[str, Any]) -> dict[str, Any]:
    """The context's trial as a dict (a Trial model instance is read the same way)."""
    trial = context.get("trial") or {}
    if isinstance(trial, dict):
        return trial
    return {key: getattr(trial, key, "") for key in ("name", "slug", "registry_id")}


def _story(context: dict[str, Any], styles: Styles) -> list[Flowable]:
    fonts = styles.fonts
    trial = _trial(context)
    prov = context.get("provenance") or {}
    story: list[Flowable] = [
        Paragraph(_markup(context.get("title", "Trial analysis report"), fonts), styles.title),
        Paragraph(_markup(trial.get("name", ""), fonts), styles.subtitle),
        _meta_table([
            ("Trial", f"{trial.get('name', '')} ({trial.get('slug', '')})"),
            ("Registry id", str(trial.get("registry_id") or "not registered")),
            ("Generated at", str(context.get("generated_at", ""))),
            *_plan_pairs(context.get("plan")),
            ("Data snapshot SHA-256", str(prov.get("data_sha256", ""))),
        ], styles),
        Spacer(1, 8),
    ]
    key_numbers = context.get("key_numbers") or []
    if key_numbers:
        story += [_Heading(_markup("Key numbers", fonts), styles.h1, "key_numbers",
                           "Key numbers")]
        story += [Paragraph(_markup(line, fonts), styles.bullet, bulletText="•")
                  for line in key_numbers]
    story += _heading("Participant flow", styles, "consort")
    consort = context.get("consort_png")
    if consort:
        story += figure_flowables("CONSORT flow diagram", consort, styles,
                                  max_height=CONSORT_MAX_H)
    else:
        story.append(Paragraph("CONSORT flow diagram: not available (no case screened yet).",
                               styles.body))

    for number, section in enumerate(context.get("sections") or [], start=1):
        story += _heading(section.get("title", ""), styles, f"section{number}")
        story += [Paragraph(_markup(p, fonts), styles.body) for p in section.get("intro") or []]
        # A section with ``blocks`` (tables, figures and paragraphs in reading order) is laid
        # out in that order; the others put their tables first, then their figures.
        blocks = section.get("blocks") or (
            [{"table": t} for t in section.get("tables") or []]
            + [{"figure": f} for f in section.get("figures") or []])
        for block in blocks:
            if "table" in block:
                story += table_flowables(block["table"], styles)
            elif "text" in block:
                story.append(Paragraph(_markup(block["text"], fonts), styles.body))
            elif "figure" in block:
                story += _section_figure(block["figure"], consort, styles)

    notes = context.get("notes") or []
    if notes:
        story += _heading("Notes", styles, "notes")
        story += [Paragraph(_markup(n, fonts), styles.bullet, bulletText="•") for n in notes]

    story += _heading("Provenance", styles, "provenance")
    story += _provenance(prov, styles)
    return story


def _section_figure(figure: dict[str, Any], consort: bytes | None,
                    styles: Styles) -> list[Flowable]:
    if consort and figure.get("png") == consort:  # shown once, under Participant flow
        return [Paragraph(_markup(f"{figure.get('title', 'CONSORT flow')}: see Participant "
                                  "flow above.", styles.fonts), styles.body)]
    # A tall figure (small multiples) may take most of a page.
    return figure_flowables(figure.get("title", figure.get("stem", "")), figure.get("png"),
                            styles, max_height=CONSORT_MAX_H if figure.get("tall")
                            else FIGURE_MAX_H)


def _provenance(prov: dict[str, Any], styles: Styles) -> list[Flowable]:
    fonts = styles.fonts
    out: list[Flowable] = []
    text = f"Data snapshot SHA-256: {prov.get('data_sha256', '')}"
    if prov.get("hash_note"):
        text += f" ({prov['hash_note']}"
        text += f": {', '.join(prov['data_files'])})" if prov.get("data_files") else ")"
    out.append(Paragraph(_markup(text, fonts), styles.body))
    if prov.get("export_note"):
        out.append(Paragraph(_markup(f"Exports: {prov['export_note']}", fonts), styles.body))
    versions = prov.get("versions") or {}
    if versions:
        out += table_flowables(_Table("Software versions", ["software", "version"],
                                      [[k, str(v)] for k, v in versions.items()]), styles)
    endpoints = prov.get("model_endpoints") or []
    if endpoints:
        rows = [[str(e.get("name", "")), str(e.get("model_name", "")),
                 str(e.get("fingerprint", ""))] for e in endpoints]
        out += table_flowables(_Table("Model endpoints", ["endpoint", "model", "fingerprint"],
                                      rows), styles)
    else:
        out.append(Paragraph("Model endpoints: none.", styles.body))
    run = prov.get("metrics_run")
    out.append(Paragraph(_markup(
        f"Report metrics: run {run['run']} of {run['created_at']}, labeller {run['labeller']} "
        f"({'rule-based' if run['labeller_kind'] == 'rules' else run['labeller_kind']}, "
        f"configuration {run['fingerprint']}), seed {run['seed']}, {run['resamples']} "
        f"resamples; results SHA-256 {run['results_sha256']} (results, not in the data "
        "snapshot hash)." if run else "Report metrics: no run stored.", fonts), styles.body))
    drafts = prov.get("draft_fingerprints") or []
    if drafts:
        rows = [[str(d.get("fingerprint", "")), str(d.get("endpoint", "")),
                 str(d.get("drafts", ""))] for d in drafts]
        out += table_flowables(_Table("Draft fingerprints", ["fingerprint", "endpoint",
                                                             "drafts"], rows), styles)
    return out


class _Document(BaseDocTemplate):
    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802 - reportlab's hook
        outline = getattr(flowable, "outline", None)
        if outline:
            key, title = outline
            self.canv.showOutline()  # the viewer opens with the sections listed
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(title, key, level=0, closed=False)


def _footer(context: dict[str, Any], fonts: Fonts, total: int | None
            ) -> Callable[[Any, Any], None]:
    trial = _trial(context)
    registry = _plain(trial.get("registry_id") or "not registered", fonts)
    data_hash = str((context.get("provenance") or {}).get("data_sha256", ""))[:SHORT_HASH]
    name = _plain(trial.get("name", ""), fonts)

    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        y = MARGIN_BOTTOM - 9 * mm
        canvas.setStrokeColor(colors.HexColor("#999999"))
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN_X, y + 10, PAGE[0] - MARGIN_X, y + 10)
        canvas.setFont(fonts.regular, 7)
        canvas.setFillColor(colors.HexColor("#444444"))
        left = f"{registry} · {name}"
        while len(left) > len(registry) + 4 and (
                pdfmetrics.stringWidth(left, fonts.regular, 7) > FRAME_W * 0.42):
            left = left[:-2] + "…"  # a long trial name; the registry id stays whole
        canvas.drawString(MARGIN_X, y, left)
        canvas.drawCentredString(PAGE[0] / 2 + 10 * mm, y, f"data {data_hash}")
        page = doc.page
        canvas.drawRightString(PAGE[0] - MARGIN_X, y,
                               f"page {page} of {total}" if total else f"page {page}")
        canvas.restoreState()

    return draw


def _build(context: dict[str, Any], target: Any, fonts: Fonts, total: int | None) -> int:
    styles = _styles(fonts)
    trial = _trial(context)
    doc = _Document(target, pagesize=PAGE, leftMargin=MARGIN_X, rightMargin=MARGIN_X,
                    topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM,
                    title=_plain(f"{context.get('title', '')}: {trial.get('name', '')}", fonts),
                    subject=_plain(str(trial.get("registry_id", "")), fonts),
                    author="cxr-reader-trials", creator="cxr-reader-trials analysis.pdf")
    frame = Frame(MARGIN_X, MARGIN_BOTTOM, FRAME_W, FRAME_H, id="body", leftPadding=0,
                  rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate("portrait", frames=[frame],
                                       onPage=_footer(context, fonts, total))])
    doc.build(_story(context, styles))
    return doc.page


def render_pdf(context: dict[str, Any], target: Path | BinaryIO) -> None:
    """Write report.pdf. Built twice: the first pass counts the pages for "page X of Y"
    (the footer lies outside the frame, so both passes lay out the same)."""
    fonts = _fonts(font_files())
    a85 = rl_config.useA85
    rl_config.useA85 = 0  # binary streams: smaller, and no slow pure-Python ASCII85 of images
    try:
        total = _build(context, io.BytesIO(), fonts, None)
        _build(context, str(target) if isinstance(target, str | Path) else target, fonts, total)
    finally:
        rl_config.useA85 = a85
