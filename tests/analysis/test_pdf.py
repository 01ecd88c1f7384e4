"""report.pdf (analysis.pdf) and the CONSORT flow figure (analysis.consort), checked the way a
reader meets them: the PDF's text per page as pdftotext extracts it (every header, CI and P of
the wide primary table present, the header repeated after a page break, no word beyond the
margins, the footer on every page) and its pages rendered to pixels (no mostly empty page).
No database: the context is built by hand, as ``analysis.report`` hands it over."""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from analysis import pdf
from analysis.consort import consort_figure, consort_png

REGISTRY = "ISRCTN-48151623"
PLAN_SHA = "ab12" * 16
DATA_SHA = "9f3c7e21d0b4a5c6" * 4
HEADERS = ["outcome", "analysis", "SCP", "AI-assisted", "difference", "95% CI", "P"]
ARM_LABELS = {"ai_assisted": "AI-assisted", "scp": "Standard clinical practice"}
REASONS = {
    "(no reason given)": 2,
    "image quality insufficient for interpretation (motion, rotation or under-penetration "
    "of the frontal projection)": 9,
    "duplicate study of a patient already enrolled": 5,
    "paediatric patient (< 18 years)": 4,
    "prior imaging unavailable": 3,
}
FLOW = {"screened": 240, "excluded": 23, "exclusion_reasons": REASONS, "awaiting_screening": 12,
        "enrolled": 205, "withdrawn": 3, "read_per_arm": {"ai_assisted": 198, "scp": 196},
        "read_both_arms": 190, "rated_per_arm": {"ai_assisted": 180, "scp": 177},
        "rated_both_arms": 171, "raters": 6, "ratings": 2134}


@dataclass
class Table:  # the shape of analysis.report.Table (that module needs Django models)
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


ANALYSES = ["independent t (Student, as published)", "independent t (Welch)",
            "paired by case", "mixed model (reader, case and rater random intercepts, REML, "
            "Satterthwaite degrees of freedom)"]


def primary_rows(n: int = 44) -> list[list[str]]:
    """Unique CI and P strings per row, long outcome and analysis texts, a long unavailable
    reason in the difference column now and then."""
    rows = []
    for i in range(n):
        outcome = (f"outcome{i:02d} report quality (Likert 1–5, per-report mean over the "
                   f"raters, pre-specified)" if i % 3 else f"outcome{i:02d} reading time, s")
        diff = (f"−0.{i:02d}4" if i % 7 else
                f"not available: fewer than two raters scored outcome{i:02d} in one arm "
                "(see methods note 3)")
        rows.append([outcome, ANALYSES[i % 4], f"3.{i:02d} ± 0.61 (n=118)",
                     f"3.{i + 10:02d} ± 0.58 (n=121)", diff,
                     f"−1.{i:02d}3 to 2.{i:02d}7", "< 0.001" if i == 5 else f"0.9{i:02d}"])
    return rows


@functools.cache
def png_figure(title: str, size: tuple[float, float]) -> bytes:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.boxplot([np.linspace(1, 5, 20), np.linspace(2, 5, 20)])
    ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


@functools.cache
def consort_bytes() -> bytes:
    return consort_png(FLOW, ARM_LABELS)


def make_context(*, plan: bool = True) -> dict:
    primary = Table("outcomes", "Primary outcomes per arm", HEADERS, primary_rows(),
                    "Quality and agreement: AI-assisted − SCP over per-report mean scores; "
                    "reading time: SCP − AI-assisted (the reduction).")
    kendall = Table("kendall", "Kendall's W per instrument per arm",
                    ["instrument", "arm", "W", "χ²", "df", "P", "raters", "cases"],
                    [[f"instrument {k}", arm, "0.41", "38.2", "29", "0.118", "6", "30"]
                     for k in range(4) for arm in ("AI-assisted", "SCP")],
                    "W ≥ 0.7: strong agreement.")
    return {
        "title": "Trial analysis report",
        "trial": {"name": "CXR-AI reader trial (two sites)", "slug": "cxr-ai",
                  "registry_id": REGISTRY},
        "generated_at": "2026-12-01T16:41:44Z",
        "plan": {"version": 3, "sha256": PLAN_SHA, "signed": "Ada Stat, 2026-11-30 10:00 UTC",
                 "primary_campaign": "Prospective rating, round 1"} if plan else None,
        "provenance": {"data_sha256": DATA_SHA,
                       "versions": {"Python": "3.11.9", "Django": "5.2.1", "numpy": "2.1.0",
                                    "reportlab": "4.4.0"},
                       "model_endpoints": [{"name": "drafting", "model_name": "cxr-draft-7b",
                                            "fingerprint": "e3b0c44298fc1c149afbf4c8996fb924"
                                                           "27ae41e4649b934ca495991b7852b855"}],
                       "export_note": "Text cells starting with =, +, -, @ are prefixed with '."},
        "key_numbers": ["quality: AI-assisted 3.62 vs SCP 3.41, difference 0.210 "
                        "(95% CI 0.050 to 0.370), P 0.010",
                        "reading time: SCP 95.0 s vs AI-assisted 71.2 s, reduction 23.8 s "
                        "(25.1%), P < 0.001 → the pre-specified primary outcome"],
        "consort_png": consort_bytes(),
        "sections": [
            {"title": "Primary outcomes",
             "intro": ["Pre-specified: the primary comparison of the analysis plan, "
                       "AI-assisted − SCP, with 95% confidence intervals (mean ± SD per arm)."],
             "tables": [primary],
             "figures": [{"stem": "quality_by_arm", "title": "Report quality (Likert)",
                          "png": png_figure("quality", (5, 4))}]},
            {"title": "Secondary and exploratory analyses",
             "intro": ["Exploratory: agreement between raters (Kendall's W, χ² test)."],
             "tables": [kendall],
             "figures": [{"stem": "reading_time_by_arm", "title": "Reading time",
                          "png": png_figure("reading time", (6, 3))}]},
        ],
        "notes": ["Differences are AI-assisted − SCP; reading time differences are SCP − "
                  "AI-assisted.", "P values are two-sided; α = 0.05."],
    }


def poppler(tool: str, *args: str) -> str:
    """Run a poppler-utils tool (as a reader's viewer would read the file); its stdout."""
    if not shutil.which(tool):
        pytest.fail(f"{tool} not found: apt-get install poppler-utils (scripts/test.sh does)")
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout


def page_texts(path: Path, pages: int) -> list[str]:
    return [poppler("pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-")
            for n in range(1, pages + 1)]


def page_count(path: Path) -> int:
    return poppler("pdftotext", str(path), "-").count("\f")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    pdf.render_pdf(make_context(), path)
    return path, page_texts(path, page_count(path))


def test_primary_table_complete_on_its_pages(rendered) -> None:
    _, texts = rendered
    rows = primary_rows()
    header = re.compile(r"outcome\s+analysis\s+SCP\s+AI-assisted\s+difference\s+95% CI\s+P\b")
    table_pages = [n for n, text in enumerate(texts)
                   if any(f"outcome{i:02d}" in text for i in range(len(rows)))]
    assert len(table_pages) >= 2, "the primary table is long enough to break over pages"
    for n in table_pages:  # the header row, whole, on every page the table reaches
        assert header.search(texts[n]), f"page {n + 1} lacks the table header"
    everything = " ".join(" ".join(text.split()) for text in texts)
    for i, row in enumerate(rows):
        ci, p = row[5], row[6]
        # CI and P of a row side by side on one line: nothing pushed off the right edge.
        assert any(re.search(re.escape(ci) + r"\s+" + re.escape(p), t) for t in texts), (i, ci)
        for cell in row:  # long texts wrap, every word is there
            for word in cell.split():
                assert word in everything, (i, word)
    for text in texts:
        assert "…" not in text  # nothing shortened


def test_no_text_beyond_the_margins(rendered) -> None:
    path, _ = rendered
    html = poppler("pdftotext", "-bbox", str(path), "-")
    width = float(re.search(r'<page width="([\d.]+)"', html).group(1))
    words = [(float(a), float(b), w) for a, b, w in
             re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" '
                        r'yMax="[\d.]+">([^<]*)</word>', html)]
    assert len(words) > 500
    left, right = pdf.MARGIN_X - 1, width - pdf.MARGIN_X + 1
    outside = [w for w in words if w[0] < left or w[1] > right]
    assert not outside, outside[:5]


def test_title_block_footer_and_glyphs(rendered) -> None:
    _, texts = rendered
    total = len(texts)
    for n, text in enumerate(texts, start=1):
        assert f"page {n} of {total}" in text
        assert REGISTRY in text
        assert f"data {DATA_SHA[:12]}" in text
    first = texts[0]
    for expected in ("Trial analysis report", "CXR-AI reader trial (two sites)", PLAN_SHA,
                     DATA_SHA, "version 3", "Ada Stat, 2026-11-30 10:00 UTC",
                     "2026-12-01T16:41:44Z", "Key numbers", "reduction 23.8 s"):
        assert expected in first, expected
    joined = "".join(texts)
    for glyph in ("±", "−", "→", "≥", "χ²", "α"):
        assert glyph in joined, glyph
    last = " ".join(texts[-1].split()) + " ".join(texts[-2].split())
    for expected in ("Provenance", "cxr-draft-7b", "e3b0c44298fc1c149afbf4c8996fb924",
                     "reportlab", "Secondary and exploratory analyses"):
        assert expected in joined, expected
    assert "Python" in last


def test_no_mostly_empty_page_and_sensible_length(rendered, tmp_path) -> None:
    path, texts = rendered
    # Title + key numbers + CONSORT, ~44 wrapped table rows, two figures, a second table,
    # notes, provenance: about six A4 pages, never the twelve mostly empty ones of old.
    assert 4 <= len(texts) <= 8, len(texts)
    poppler("pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "p"))
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == len(texts)
    for n, png in enumerate(pages, start=1):
        grey = np.asarray(Image.open(png).convert("L"))
        body = grey[: int(grey.shape[0] * 0.93)]  # without the footer
        ink_rows = np.flatnonzero((body < 200).any(axis=1))
        share = (body < 200).mean()
        assert share > 0.01, (n, share)
        if n < len(pages):  # content reaches at least halfway down every page but the last
            assert ink_rows.max() > 0.5 * body.shape[0], (n, ink_rows.max() / body.shape[0])


def test_consort_figure_in_a_section_is_not_drawn_twice(tmp_path) -> None:
    context = make_context()
    context["sections"] = [{"title": "Participant flow and baseline", "intro": [],
                            "tables": [], "figures": [{"stem": "consort_flow",
                                                       "title": "Participant flow (CONSORT)",
                                                       "png": consort_bytes()}]}]
    path = tmp_path / "r.pdf"
    pdf.render_pdf(context, path)
    texts = page_texts(path, page_count(path))
    assert "Participant flow (CONSORT): see Participant flow above." in "".join(texts)
    assert "".join(texts).count("Assessed for eligibility") == 0  # a picture, drawn once
    listing = poppler("pdfimages", "-list", str(path)).splitlines()[2:]
    assert [line.split()[2] for line in listing].count("image") == 1


def test_no_plan_no_consort_and_helvetica_fallback(tmp_path, monkeypatch) -> None:
    """Without DejaVu Sans the glyphs Helvetica lacks become ASCII, nothing is dropped."""
    monkeypatch.setattr(pdf, "font_files", lambda: None)
    context = make_context(plan=False)
    context["consort_png"] = None
    context["sections"] = context["sections"][1:]
    buffer = io.BytesIO()
    pdf.render_pdf(context, buffer)
    path = tmp_path / "r.pdf"
    path.write_bytes(buffer.getvalue())
    texts = page_texts(path, page_count(path))
    text = "".join(texts)
    assert "no signed analysis plan" in text
    assert "CONSORT flow diagram: not available" in text
    assert "-> the pre-specified" in text and "W >= 0.7" in text and "chi²" in text
    assert "alpha = 0.05" in text and "?" not in text
    assert f"page {len(texts)} of {len(texts)}" in texts[-1]


def test_font_found_on_this_machine() -> None:
    files = pdf.font_files()
    assert files is not None and all(f.name.startswith("DejaVuSans") for f in files)


# --------------------------------------------------------------------------------------------
# CONSORT
# --------------------------------------------------------------------------------------------

def box_texts(fig: Figure) -> list[str]:
    return [" ".join(t.get_text().split()) for t in fig.axes[0].texts]


def test_consort_png_and_its_text() -> None:
    png = consort_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size[0] > 1000  # 150 dpi
    texts = box_texts(consort_figure(FLOW, ARM_LABELS))
    joined = " | ".join(texts)
    excluded = next(t for t in texts if t.startswith("Excluded (n=23)"))
    for reason, n in REASONS.items():
        assert f"• {reason} (n={n})" in excluded, reason
    for expected in ("Assessed for eligibility (n=240)", "Awaiting screening (n=12)",
                     "Enrolled (n=205)", "Withdrawn after enrolment (n=3)",
                     "AI-assisted Read (n=198)", "Standard clinical practice Read (n=196)",
                     "Rated (n=180)", "Rated (n=177)", "Read in both arms: 190"):
        assert expected in joined, expected


def test_consort_text_fits_its_boxes_and_many_reasons_grow_the_box() -> None:
    many = {f"reason {k}: " + "a rather long free-text exclusion reason " * (k % 3 + 1): k + 1
            for k in range(14)}
    flow = {**FLOW, "exclusion_reasons": many, "excluded": sum(many.values()),
            "withdrawn": 0, "awaiting_screening": 0}
    fig = consort_figure(flow, ARM_LABELS)
    small = consort_figure(FLOW, ARM_LABELS)
    assert fig.get_size_inches()[1] > small.get_size_inches()[1] + 2
    texts = box_texts(fig)
    assert not any("Withdrawn" in t or "Awaiting" in t for t in texts)
    for reason, n in many.items():
        assert any(f"{' '.join(reason.split())} (n={n})" in t for t in texts), reason
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in fig.axes[0].patches
             if isinstance(p, Rectangle)]
    figure_box = fig.bbox
    for text in fig.axes[0].texts:
        extent = text.get_window_extent(renderer)
        assert figure_box.contains(extent.x0, extent.y0) and figure_box.contains(extent.x1,
                                                                                extent.y1)
        if text.get_text().startswith("n = cases"):
            continue  # the footnote stands below the boxes
        assert any(b.x0 <= extent.x0 and extent.x1 <= b.x1 and b.y0 <= extent.y0
                   and extent.y1 <= b.y1 for b in boxes), text.get_text()[:40]


def test_consort_nothing_screened() -> None:
    assert consort_png({**FLOW, "screened": 0}, ARM_LABELS) is None


@pytest.mark.parametrize(("text", "units"), [
    ("-0.798 to 0.923", ["-0.798 to 0.923"]),
    ("30.1% to 95.4%", ["30.1% to 95.4%"]),  # a range of percentages is one unit too
    ("4.6% to 69.9%", ["4.6% to 69.9%"]),
    ("3.38 ± 0.48", ["3.38 ± 0.48"]),
    ("75.0% of 4 cases", ["75.0%", "of", "4", "cases"]),
    ("P < 0.001", ["P", "< 0.001"]),
])
def test_number_ranges_are_kept_whole(text: str, units: list[str]) -> None:
    assert pdf._units(text) == units


def test_a_column_of_percentage_ranges_is_as_wide_as_its_widest_range() -> None:
    """Table 1 broke "30.1% to 95.4%" over two lines when the column was narrowed (the range
    had been measured as three words); the PDF test then found no whole CI on its page."""
    fonts = pdf._fonts(pdf.font_files())
    header = ["outcome", "95% CI", "P", "analysis"]
    rows = [["Preference for AI-assisted (% of cases, majority of raters)", "30.1% to 95.4%",
             "0.625", "majority of raters vs 50% (exact binomial)"]] * 3
    widths = pdf.column_widths(header, rows, fonts, 7.5, 200.0)
    ci = pdf._measure("30.1% to 95.4%", fonts.regular, 7.5).natural
    assert widths[1] >= ci + 2 * pdf.CELL_PAD + 1 - 1e-6
