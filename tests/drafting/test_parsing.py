"""Splitting a model's reply into FINDINGS and IMPRESSION, however the model formats it."""

import pytest

from drafting.parsing import UnparseableReply, parse_report, report_warning


def test_reference_one_line_format() -> None:
    reply = "FINDINGS: Right lower zone consolidation. IMPRESSION: Pneumonia."
    assert parse_report(reply) == ("Right lower zone consolidation.", "Pneumonia.")


def test_reference_format_on_two_lines() -> None:
    reply = "FINDINGS: The lungs are clear.\nIMPRESSION: Normal chest."
    assert parse_report(reply) == ("The lungs are clear.", "Normal chest.")


@pytest.mark.parametrize("findings, impression", [
    ("findings", "impression"), ("Findings", "Impression"), ("FiNdInGs", "iMpReSsIoN"),
])
def test_headers_in_any_case(findings: str, impression: str) -> None:
    reply = f"{findings}: Small left effusion.\n{impression}: Left pleural effusion."
    assert parse_report(reply) == ("Small left effusion.", "Left pleural effusion.")


def test_markdown_bold_headers() -> None:
    reply = "**Findings:** Cardiomegaly.\n\n**Impression:** Enlarged heart."
    assert parse_report(reply) == ("Cardiomegaly.", "Enlarged heart.")


def test_markdown_heading_lines() -> None:
    reply = "## Findings\nCardiomegaly.\nNo effusion.\n\n## Impression\nEnlarged heart.\n"
    assert parse_report(reply) == ("Cardiomegaly.\nNo effusion.", "Enlarged heart.")


def test_prose_before_the_headers_is_dropped() -> None:
    reply = ("Sure! Here is the report of this chest X-ray.\n\n"
             "FINDINGS: Clear lungs.\nIMPRESSION: No acute disease.")
    assert parse_report(reply) == ("Clear lungs.", "No acute disease.")


def test_no_headers_at_all_is_all_findings() -> None:
    reply = "The lungs are clear. Heart size is normal."
    assert parse_report(reply) == ("The lungs are clear. Heart size is normal.", "")


def test_impression_only_makes_what_precedes_it_findings() -> None:
    reply = "The lungs are clear.\nImpression: Normal chest."
    assert parse_report(reply) == ("The lungs are clear.", "Normal chest.")


def test_impression_before_findings() -> None:
    reply = "IMPRESSION: Pneumonia.\nFINDINGS: Right lower zone consolidation."
    assert parse_report(reply) == ("Right lower zone consolidation.", "Pneumonia.")


@pytest.mark.parametrize("reply", ["", "   \n\t "])
def test_an_empty_reply_is_unparseable(reply: str) -> None:
    with pytest.raises(UnparseableReply, match="empty report"):
        parse_report(reply)


def test_headers_without_text_are_unparseable() -> None:
    with pytest.raises(UnparseableReply, match="headers but no report text"):
        parse_report("FINDINGS:\nIMPRESSION:\n")


def test_the_words_findings_and_impression_inside_sentences_are_not_headers() -> None:
    reply = ("FINDINGS: No acute findings; the overall impression is of clear lungs.\n"
             "IMPRESSION: Normal chest.")
    assert parse_report(reply) == (
        "No acute findings; the overall impression is of clear lungs.", "Normal chest."
    )


@pytest.mark.parametrize(("reply", "warning"), [
    ("FINDINGS: Clear lungs.\nIMPRESSION: Normal chest.", ""),
    ("The lungs are clear.\nImpression: Normal chest.", ""),
    ("The lungs are clear. Heart size is normal.",
     "The model's reply has no FINDINGS or IMPRESSION header: all of it was put in FINDINGS, "
     "and IMPRESSION is empty."),
    ("FINDINGS: Clear lungs.\r\nIMPRESSION:", "The model's reply has no IMPRESSION text: "
                                             "IMPRESSION is empty."),
    ("IMPRESSION: Normal chest.", "The model's reply has no FINDINGS text: FINDINGS is empty."),
], ids=["both", "impression-only-header", "no-headers", "empty-impression", "no-findings"])
def test_a_report_missing_a_section_gets_a_warning(reply: str, warning: str) -> None:
    assert report_warning(reply, *parse_report(reply)) == warning
