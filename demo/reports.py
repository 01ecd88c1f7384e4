"""The simulated readers' reports, written from the pool the demo model's drafts come from
(``drafting.backends``): an SCP reader writes from scratch, an AI-arm reader edits the draft,
keeping what they agree with and correcting the rest. Neither has a house style, so a
report's wording does not tell its arm (``tests/demo/test_reports.py`` checks it)."""

from __future__ import annotations

import numpy as np

from drafting.backends import (
    STRUCTURE,
    classify_sentence,
    finding_sentence,
    normal_sentences,
    split_sentences,
    write_impression,
    write_report,
)
from trial.dicom.synthetic import ImageFinding

# Words that tie a sentence the pool does not have (a real model's, say) to a kind of finding.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "consolidation": ("consolidat", "pneumonia", "airspace"),
    "opacity": ("opacit", "shadowing"), "tb": ("tubercul", "cavit"),
    "nodule": ("nodul",), "mass": ("mass",), "effusion": ("effusion", "costophrenic"),
    "pneumothorax": ("pneumothora",), "cardiomegaly": ("cardiomegaly", "heart is enlarged",
                                                       "cardiothoracic ratio is increased"),
    "edema": ("oedema", "edema", "kerley"), "atelectasis": ("atelecta",),
    "line": ("line", "catheter", "tube"), "fracture": ("fracture",),
    "mediastinum": ("mediastin",), "pleural": ("pleural thicken",),
}


def scp_report(seen: list[ImageFinding], rng: np.random.Generator) -> tuple[str, str]:
    """An SCP reader's report of what they saw."""
    return write_report(seen, rng)


def _same(f: ImageFinding, kind: str, side: str) -> bool:
    return f.kind == kind and (not side or not f.side or side == f.side)


def _about(sentence: str) -> list[str]:
    lowered = sentence.lower()
    return [kind for kind, words in KEYWORDS.items() if any(w in lowered for w in words)]


def _negative(sentence: str) -> bool:
    lowered = sentence.lower()
    return lowered.startswith("no ") or any(
        w in lowered for w in (" no ", " not ", "normal", "clear", "intact"))


def edit_draft(draft_findings: str, draft_impression: str, seen: list[ImageFinding],
               rng: np.random.Generator) -> tuple[str, str]:
    """The AI-arm reader's edit of the draft: every sentence they agree with is kept as it
    stands (most of them); a finding they do not see is deleted, a normal statement about a
    structure they see abnormal is deleted, and what they see that the draft misses is added
    (a sentence from the pool, where an abnormal-first report would have it). The impression
    is kept unless a finding changed."""
    kept: list[tuple[bool, str]] = []  # (about a finding, sentence)
    matched: set[int] = set()
    changed = False
    abnormal_structures = {STRUCTURE[f.kind] for f in seen}
    for sentence in split_sentences(draft_findings):
        found = classify_sentence(sentence)
        if found is not None and found[0] == "normal":
            if set(found[1].split("+")) & abnormal_structures:
                changed = True
                continue
            kept.append((False, sentence))
            continue
        if found is not None:
            kinds, side = [found[1]], found[2]
        else:  # not from the pool: judge it by its words
            kinds, side = _about(sentence), ""
            if not kinds or _negative(sentence):
                if kinds and any(f.kind in kinds for f in seen):
                    changed = True
                    continue
                kept.append((False, sentence))
                continue
        hit = next((i for i, f in enumerate(seen) if i not in matched
                    and any(_same(f, k, side) for k in kinds)), None)
        if hit is None:
            changed = True  # a finding the reader does not see: deleted
            continue
        matched.add(hit)
        kept.append((True, sentence))
    for i, f in enumerate(seen):
        if i in matched:
            continue
        changed = True
        last = max((n + 1 for n, (about, _) in enumerate(kept) if about), default=0)
        kept.insert(last, (True, finding_sentence(f, rng)))
    sentences = [s for _, s in kept]
    if not sentences:
        free = set(STRUCTURE.values()) - {""} - abnormal_structures
        sentences = [s for _, s in normal_sentences(free, rng)]
    impression = draft_impression.strip()
    if changed or not impression:
        impression = write_impression(list(seen), rng)
    return " ".join(sentences), impression
