"""Edit distance between reports, checked by hand and against the textbook dynamic programme."""

from __future__ import annotations

import random

import pytest

from reader.texts import edit_distance, report_text


def reference_levenshtein(a: str, b: str) -> int:
    """Wagner-Fischer, the definition written out (insert, delete, substitute: 1 each)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("kitten", "sitting", 3),  # k->s, e->i, +g
    ("", "", 0), ("", "abc", 3), ("abc", "", 3), ("flaw", "lawn", 2),
    ("Heart size normal.", "Heart size normal.", 0),
    ("Pleural effusion.", "No pleural effusion.", 4),  # "No p" for "P": +N +o +space, P->p
    ("größe", "grosse", 3),  # characters, not bytes: ö->o, ß->s, +s
])
def test_edit_distance_by_hand(a: str, b: str, expected: int) -> None:
    assert edit_distance(a, b) == expected == reference_levenshtein(a, b)


def test_edit_distance_matches_the_dynamic_programme_on_report_like_texts() -> None:
    rng = random.Random(20261202)
    words = ("heart", "size", "normal", "lungs", "clear", "no", "pleural", "effusion",
             "pneumothorax", "opacity", "left", "right", "base", "é", "—", "\n")
    for _ in range(60):
        a = " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        b = " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        assert edit_distance(a, b) == reference_levenshtein(a, b)
        assert edit_distance(a, b) == edit_distance(b, a)


def test_an_edited_draft_is_as_far_as_its_edits() -> None:
    draft = report_text("Heart size is normal. Lungs are clear.", "No acute disease.")
    edited = report_text("Heart size is normal. Left basal opacity.", "Possible pneumonia.")
    assert edit_distance(draft, edited) == reference_levenshtein(draft, edited) > 0
