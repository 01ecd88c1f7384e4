"""Report texts: their canonical form and how far apart two are (no Django: the analysis and
the services share them)."""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance in characters (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def report_text(findings: str, impression: str) -> str:
    return f"FINDINGS:\n{findings.strip()}\n\nIMPRESSION:\n{impression.strip()}"
