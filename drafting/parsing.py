"""Split a model's reply into FINDINGS and IMPRESSION.

Models answer ``FINDINGS: ... IMPRESSION: ...`` more or less: headers in any case, in
markdown (``**Findings:**``, ``## Impression``), with prose before them, or missing. Without
a findings header, everything before the impression (or everything) is findings.
"""

from __future__ import annotations

import re

# A header starts a line (after markdown marks) and ends with a colon or the line itself, or
# stands inside a line followed by a colon (the reference model's one-line "FINDINGS: ...
# IMPRESSION: ...").
_HEADER = (
    r"(?:(?:^|\n)[ \t]*[#>*_ \t]*(?P<line>{names})[ \t]*[*_]*[ \t]*(?:[:：][ \t]*[*_]*|(?=\n|$))"
    r"|\b(?P<inline>{names})[*_]*[ \t]*[:：][ \t]*[*_]*)[ \t]*"
)
FINDINGS_RE = re.compile(_HEADER.format(names="findings?"), re.IGNORECASE)
IMPRESSION_RE = re.compile(
    _HEADER.format(names="impressions?|conclusions?|summary|diagnosis"), re.IGNORECASE
)


class UnparseableReply(ValueError):
    """The reply holds no report text at all."""


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "\n".join(lines).strip().strip("*_").strip()


def parse_report(text: str) -> tuple[str, str]:
    """(findings, impression) from a model reply; raises UnparseableReply if it is empty."""
    if not text or not text.strip():
        raise UnparseableReply("The model returned an empty report.")
    body = text.replace("\r\n", "\n")
    impression_match = IMPRESSION_RE.search(body)
    findings_match = FINDINGS_RE.search(body)
    if impression_match and findings_match and findings_match.start() > impression_match.start():
        # IMPRESSION first, FINDINGS after: read each section up to the other header.
        impression = body[impression_match.end():findings_match.start()]
        findings = body[findings_match.end():]
    else:
        end = impression_match.start() if impression_match else len(body)
        start = findings_match.end() if findings_match and findings_match.start() < end else 0
        findings = body[start:end]
        impression = body[impression_match.end():] if impression_match else ""
    findings, impression = _tidy(findings), _tidy(impression)
    if not findings and not impression:
        raise UnparseableReply("The model's reply has headers but no report text.")
    return findings, impression


def report_warning(text: str, findings: str, impression: str) -> str:
    """Why a parsed report needs a look ('' if it does not): a section came out empty.

    ``parse_report`` puts a reply without headers wholly in FINDINGS, so the draft would start
    the reader with an empty IMPRESSION; such drafts are stored done, with this warning.
    """
    empty = [name for name, value in (("FINDINGS", findings), ("IMPRESSION", impression))
             if not value]
    if not empty:
        return ""
    body = text.replace("\r\n", "\n")
    if not (FINDINGS_RE.search(body) or IMPRESSION_RE.search(body)):
        return ("The model's reply has no FINDINGS or IMPRESSION header: all of it was put in "
                "FINDINGS, and IMPRESSION is empty.")
    names, verb = " and ".join(empty), "is" if len(empty) == 1 else "are"
    return f"The model's reply has no {names} text: {names} {verb} empty."
