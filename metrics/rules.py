"""The rule-based labeller: the 14 CheXpert findings (0/1) from a radiology report's text.

For the demo and for offline use. A real trial labels with an LLM labeller or CheXbert; these
labels must be shown as rule-based wherever they appear (``DESCRIPTION``).

How it works, following the CheXpert labeller's conventions (Irvin et al. 2019):

* The report is split into sentences (not at the dot of "1.5 cm" or "vs.") and each sentence
  into clauses (at ";", "but", "however", "although", "except", "there is" ...). Sections
  headed INDICATION, HISTORY, CLINICAL ..., REASON FOR ..., COMPARISON or TECHNIQUE are
  skipped to the next header or blank line: they state the question ("? pneumothorax"), not
  the finding.
* ``PHRASES`` is the table of mention phrases per finding (regex fragments, matched
  case-insensitively at word boundaries, British and American spellings, plurals); it is
  compiled once into one regex. Phrases name the abnormality ("heart is enlarged", not "heart
  size"), so normal boilerplate ("Heart size is normal") mentions nothing.
* A mention's status is, in this order: negative if the phrase itself says "not" ("the heart
  is not enlarged"); the fixed status of a ``FIXED`` phrase ("heart size at the upper limit
  of normal" is uncertain); else the nearest cue before it in its clause (``PRE_NEGATION``
  "no", "without", "free of" ...; ``PRE_UNCERTAIN`` "possible", "likely", "cannot exclude"
  ...; ``SUGGEST`` "to suggest", uncertain unless a negation reaches past it; a ``PSEUDO`` cue
  such as "no change in" is no cue), which reaches across a list ("No effusion, pneumothorax
  or consolidation") but not past a verb or a new subject ("No effusion is seen and the heart
  is enlarged", "No effusion, the heart is enlarged"); else a cue just after it
  (``POST_NEGATION`` "... is not seen", "... has resolved"; ``POST_UNCERTAIN`` "... cannot be
  excluded", "... is possible", "...?"; ``POST_NEGATION_ADJACENT`` "... is unlikely" only
  right after the mention); else positive. A hedge after a mention leaves it positive:
  "Opacity, may represent atelectasis" is a positive opacity, an uncertain atelectasis.
* A finding is 1 if any mention is positive, or uncertain under the policy "positive" (the
  reference trial treated CheXbert's uncertain labels as positive). "No Finding" is computed,
  never matched: 1 exactly when no finding other than Support Devices is 1 (CheXpert's rule);
  so an empty report has No Finding 1.

Speed: about 0.25 ms of CPU per 50-word report (one scan per sentence for mentions, cues only
in sentences that have one; see "Compiling"). Not a validated labeller: it has not been
measured against radiologists' labels; on the demo's own reports (written from a phrase pool
the rules were written against) it recovers the truth, see ``tests/metrics/test_rules.py``.

Bump ``RULES_VERSION`` whenever a phrase, cue or rule changes: it is part of the labeller's
fingerprint, so stored labels by older rules are not reused. No Django here.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from trial.findings import FINDINGS, NO_FINDING, with_no_finding

__all__ = [
    "DESCRIPTION", "FIXED", "PHRASES", "RULES_VERSION", "UNCERTAIN_POLICIES", "Mention",
    "label_many", "label_report", "labels_of", "mentions", "split_sentences", "with_no_finding",
]

RULES_VERSION = "1.0"
DESCRIPTION = ("Rule-based labeller (phrase rules with negation and uncertainty, NegEx-style; "
               "not a validated clinical labeller)")
UNCERTAIN_POLICIES = ("positive", "negative")
POSITIVE, NEGATIVE, UNCERTAIN = "positive", "negative", "uncertain"


@dataclass(frozen=True)
class Mention:
    """One finding named in a report: why a label is what it is."""

    finding: str
    sentence: str
    phrase: str
    status: str  # "positive" | "negative" | "uncertain"


# --- The phrase table ------------------------------------------------------------------------
#
# Regex fragments per finding, matched case-insensitively between word boundaries. Where two
# fragments could start at the same word the more specific one must come first (the findings
# are compiled in ``_PRIORITY`` order, the most generic, Lung Opacity, last). A fragment may
# contain "not" ("heart is not enlarged"): the mention is then negative.

_ENLARGED = r"(?:is |are |appears |remains |was |looks )?(?:not |no longer )?(?:\w+ )?"
PHRASES: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        r"(?:widened|widening of the|enlarged|enlargement of the|prominent|wide) "
        r"(?:superior |upper )?(?:mediastinum|mediastinal (?:contours?|silhouette|shadow)"
        r"|cardiomediastinal (?:silhouette|contours?|shadow))",
        r"(?:superior |upper )?mediastinal (?:widening|enlargement|prominence|lymphadenopathy"
        r"|adenopathy|mass(?:es)?)",
        r"(?:superior |upper )?mediastinum " + _ENLARGED + r"(?:widened|wide|enlarged|prominent)",
        r"cardiomediastinal (?:silhouette|contours?|shadow) " + _ENLARGED
        + r"(?:widened|enlarged|prominent)",
    ),
    "Cardiomegaly": (
        r"cardiomegaly",
        r"(?:enlarged|large|big|globular) (?:heart|cardiac (?:silhouette|shadow|contour|size"
        r"|outline))",
        r"cardiac enlargement", r"enlargement of the (?:heart|cardiac silhouette)",
        r"(?:heart|cardiac silhouette|cardiac shadow|cardiac contour|heart size|cardiac size) "
        + _ENLARGED + r"(?:enlarged|increased|large|prominent)",
        r"(?:increased|enlarged) (?:cardiothoracic ratio|ctr|heart size|cardiac size"
        r"|cardiac diameter)",
        r"(?:cardiothoracic ratio|ctr) " + _ENLARGED + r"(?:increased|enlarged|elevated|raised)",
        r"(?:left|right) (?:ventricular|atrial) enlargement",
    ),
    "Lung Opacity": (
        r"opacit(?:y|ies)", r"opacifi(?:cation|cations|ed)",
        r"infiltrat(?:e|es|ion|ions|ive)",
        r"air[- ]?space (?:disease|process|shadowing|change|changes)",
        r"shadowing", r"(?:patchy|alveolar|air[- ]?space|nodular|ring|reticular"
        r"|reticulonodular) shadows?",
        r"haziness", r"ground[- ]glass",
        r"(?:increased|patchy|focal|ill-defined|hazy|air[- ]?space|alveolar|retrocardiac"
        r"|basal|basilar) (?:density|densities)",
        r"reticulation", r"reticulonodular (?:pattern|change|changes|opacities)",
        r"reticular (?:pattern|markings?|change|changes)",
        r"interstitial (?:markings?|pattern|opacities|thickening|change|changes|prominence"
        r"|lung disease|disease|abnormality)",
        r"increased (?:lung|pulmonary|interstitial|bronchovascular) markings",
        r"(?:peribronchial|bronchial wall) (?:wall )?thickening",
        r"(?:parenchymal |pulmonary |lung )?scar(?:ring|s)?", r"fibrosis", r"fibrotic",
    ),
    "Lung Lesion": (
        r"nodules?", r"nodular (?:opacity|density|lesions?)", r"micronodules",
        r"(?<!body )mass(?:es)?(?! effect)", r"lesions?", r"tumou?rs?", r"neoplasms?",
        r"(?:lung |bronchogenic |bronchial )?(?:carcinoma|cancer)", r"malignan(?:cy|t)",
        r"metastas[ie]s", r"metastatic (?:disease|deposits?)",
        r"granulomas?", r"granulomata", r"hamartomas?", r"(?:lung )?abscess(?:es)?",
        r"(?<!pleural )(?<!thoracic )(?<!abdominal )(?<!oral )cavit(?:y|ies|ation|ating|ary)",
        r"(?:rounded|round) (?:opacity|density|lesion|shadow)", r"coin lesion",
    ),
    "Edema": (
        r"(?:interstitial |alveolar |pulmonary |airspace )?(?<!tissue )(?<!subcutaneous )"
        r"(?<!soft-tissue )o?edema(?:tous)?",
        r"(?:pulmonary venous|pulmonary vascular|pulmonary|vascular|venous) congestion",
        r"congestive (?:heart|cardiac) failure", r"chf",
        r"(?:heart|cardiac|left ventricular|lv) failure", r"fluid overload",
        r"kerley(?: [abc])? lines", r"septal lines",
        r"(?:upper lobe )?(?:venous |vascular )?(?:diversion|redistribution)",
        r"cephali[sz]ation", r"(?:peribronchial|perihilar) cuffing", r"bat[- ]?wing",
        r"(?:vascular|hilar) (?:indistinctness|engorgement)",
    ),
    "Consolidation": (
        r"consolidat(?:ion|ions|ed|ing|ive)", r"air[- ]?bronchograms?",
    ),
    "Pneumonia": (
        r"(?:broncho)?pneumonias?", r"pneumonic", r"pneumonitis",
        r"infections?", r"infective", r"infectious", r"lrti",
    ),
    "Atelectasis": (
        r"atelecta(?:sis|ses|tic)", r"(?<!vertebral )collapsed?", r"volume loss",
        r"loss of (?:lung )?volume",
    ),
    "Pneumothorax": (
        r"hydropneumothora(?:x|ces|xes)", r"pneumothora(?:x|ces|xes)", r"ptx",
    ),
    "Pleural Effusion": (
        r"hydropneumothora(?:x|ces|xes)",
        r"(?<!pericardial )(?<!joint )(?:pleural )?effusions?",
        r"pleural fluid", r"hydrothora(?:x|ces)", r"ha?emothora(?:x|ces)", r"empyemas?",
        r"blunt(?:ing|ed) (?:of )?(?:the |both |bilateral )?(?:(?:right|left) )?"
        r"costophrenic (?:angles?|recess(?:es)?|sulc(?:us|i))",
        r"costophrenic (?:angle )?blunting",
        r"costophrenic (?:angles?|recess(?:es)?) (?:is |are )?(?:\w+ )?blunted",
        r"fluid in the (?:\w+ )?(?:costophrenic (?:angles?|recess(?:es)?)|pleural space"
        r"|fissures?)",
        r"layering fluid",
    ),
    "Pleural Other": (
        r"pleural thickening", r"thickening of the pleura", r"thickened pleura",
        r"(?:calcified )?pleural plaques?", r"pleural calcifications?", r"fibrothorax",
        r"pleural scar(?:ring|s)?", r"pleuro-?parenchymal (?:scarring|scars?|thickening|bands?)",
        r"apical (?:pleural )?cap(?:s|ping)?", r"mesothelioma",
        r"pleural (?:mass(?:es)?|nodules?|tumou?rs?|metastases|disease)",
    ),
    "Fracture": (
        r"fractur(?:e|es|ed|ing)", r"broken (?:ribs?|bones?|clavicle)",
    ),
    "Support Devices": (
        r"lines? (?:and|or) tubes?", r"tubes?", r"catheters?", r"cvcs?", r"picc",
        r"(?:central venous|central|picc|arterial|internal jugular|jugular|ij|subclavian"
        r"|femoral|dialysis|ha?emodialysis|swan[- ]ganz|pulmonary artery|umbilical|venous"
        r"|tunnell?ed|hickman) lines?",
        r"line tips?", r"ett", r"ngt", r"pace(?:maker|r)s?", r"pacing (?:leads?|wires?|device|box)",
        r"(?:pacemaker|icd|pacer) leads?", r"a?icds?", r"defibrillators?", r"devices?",
        r"(?:guide)?wires?", r"stents?", r"clips?", r"staples", r"sternotomy",
        r"ports?", r"port-?a-?caths?", r"portacaths?", r"mediports?", r"drains?",
        r"(?:prosthetic|mechanical|bioprosthetic|metallic|endobronchial|artificial) "
        r"(?:\w+ )?valves?",
        r"valve (?:replacements?|prosthes[ie]s|repair)", r"annuloplasty(?: ring)?",
        r"tavi", r"tavr", r"avr", r"mvr", r"loop recorder", r"(?:intra-?aortic )?balloon pump",
        r"iabp", r"lvad", r"impella", r"ecmo", r"cannulae?", r"cannulas", r"coils?",
        r"(?:orthopaedic |orthopedic |surgical |spinal |fixation )?hardware",
        r"(?:fixation|surgical|orthopaedic|orthopedic|metallic|metal) plates?", r"screws?",
        r"arthroplast(?:y|ies)", r"(?:ecg|ekg|monitoring) (?:leads|electrodes|wires)",
        r"electrodes",
    ),
}
assert set(PHRASES) == set(FINDINGS) - {NO_FINDING}

# Phrases whose status is part of their meaning (not read from cues).
FIXED: tuple[tuple[str, str, str], ...] = (
    ("Cardiomegaly", r"(?:heart|cardiac) size (?:is )?(?:at )?(?:the )?(?:upper limits?|top) "
                     r"of normal|(?:top|high|upper)[- ]normal (?:heart|cardiac) size"
                     r"|(?:heart|cardiac) size (?:is )?(?:top|high|upper)[- ]normal"
                     r"|borderline (?:heart|cardiac) size", UNCERTAIN),
)

# The order fragments are tried in at one position: specific findings before generic ones.
_PRIORITY = ("Pleural Other", "Enlarged Cardiomediastinum", "Cardiomegaly", "Edema",
             "Pleural Effusion", "Pneumothorax", "Lung Lesion", "Consolidation", "Pneumonia",
             "Atelectasis", "Fracture", "Support Devices", "Lung Opacity")
assert sorted(_PRIORITY) == sorted(PHRASES)

# --- Cues ------------------------------------------------------------------------------------

PRE_NEGATION = (
    r"no", r"not", r"without", r"nor", r"neither", r"none", r"never", r"negative for",
    r"free (?:of|from)", r"clear of", r"absence of", r"absent", r"lack of",
    r"rule[sd]? out", r"resolution of", r"resolved", r"removal of", r"unlikely",
    r"fail(?:s|ed)? to (?:show|demonstrate|reveal)",
)
PRE_UNCERTAIN = (
    r"(?:can ?not|can't|could not|does not|do not|did not|would not) (?:be )?"
    r"(?:entirely |completely |totally |definitely |reliably )?(?:exclude[ds]?|rule[ds]? out)",
    r"not (?:entirely |completely |totally )?(?:exclude[ds]?|ruled out)",
    r"difficult to (?:exclude|rule out)", r"may", r"might", r"could", r"maybe", r"perhaps",
    r"possible", r"possibly", r"possibility of", r"probable", r"probably", r"likely",
    r"presumed", r"presumably", r"presumptive", r"potential", r"suspect(?:ed)?",
    r"suspicion (?:of|for)", r"suspicious (?:of|for)",
    r"question(?:able)?(?: of)?", r"query", r"equivocal", r"indeterminate", r"uncertain",
    r"borderline", r"versus", r"vs\.?", r"differential (?:diagnosis )?(?:includes?|would include"
    r"|considerations? includes?)", r"concern(?:ing)? (?:for|of)", r"worr(?:isome|ying) for",
    r"raising (?:the )?(?:possibility|question|concern) (?:of|for)", r"consider(?:ed)?",
    r"(?:evaluate|assess) for", r"(?<!\S)\?",
)
# Uncertain, except after a negation that reaches the mention: "No consolidation to suggest
# pneumonia" negates pneumonia, "Findings suggest pneumonia" hedges it.
SUGGEST = (r"to suggest", r"suggest(?:s|ed|ing|ive of)?")
PSEUDO = (  # look like a cue, say nothing about presence ("no change in the effusion")
    r"no (?:significant |interval |appreciable |substantial |definite |major |further )?"
    r"(?:interval )?(?:change|changes|increase|decrease|improvement|worsening|progression)",
    r"not (?:significantly |substantially )?(?:changed|increased|decreased|improved|worsened)",
    r"without (?:significant |interval )?(?:change|changes)", r"not only", r"not necessarily",
)
# Post-cues start at their content word: the auxiliary before it ("is", "has been") is
# skipped by the reach test (``_AUX``).
POST_NEGATION = (
    r"not (?:clearly |definitely |convincingly |currently |now )?(?:seen|identified"
    r"|visuali[sz]ed|demonstrated|appreciated|evident|apparent|present|noted|detected|visible"
    r"|shown|found)",
    r"no longer (?:seen|visible|present|evident|identified|demonstrated|apparent)",
    r"resolved", r"cleared", r"disappeared", r"removed", r"excluded", r"ruled out",
)
# These negate only the mention right before them ("Pneumonia is unlikely"): "The heart is
# enlarged and the mediastinum normal" says nothing against the heart.
POST_NEGATION_ADJACENT = (r"absent", r"normal", r"unremarkable", r"within normal limits",
                          r"unlikely", r"removal")
POST_UNCERTAIN = (
    r"(?:can ?not|can't|could not) (?:be )?(?:entirely |completely |totally |definitely )?"
    r"(?:excluded|ruled out)",
    r"not (?:been )?(?:entirely |totally |completely )?(?:excluded|ruled out)",
    r"to be (?:excluded|ruled out)",
    r"(?:is|are) (?:possible|likely|probable|suspected|questioned|favou?red|considered"
    r"|a (?:consideration|possibility))",
    r"(?:may|might|could) be (?:present|seen|noted)", r"suspected", r"versus", r"vs\.?", r"\?",
)
_AUX = frozenset(("is", "are", "was", "were", "has", "have", "had", "been", "be", "since",
                  "now", "currently", "completely", "fully", "largely", "then"))
# Clause boundaries: a cue's scope ends here.
_CLAUSE = re.compile(
    r"\b(?:but|however|although|though|whereas|while|except|apart from|aside from"
    r"|other than|yet|there (?:is|are))\b|;")
_CLAUSE_HINTS = ("but", "however", "though", "whereas", "while", "except", "apart", "aside",
                 "other", "yet", "there", ";")  # no clause regex without one of these
# A pre-cue does not reach a mention past one of these (a verb or a new subject), and a
# post-cue does not reach back past one: "No effusion is seen and the heart is enlarged".
_BLOCK = frozenset(("is", "are", "was", "were", "has", "have", "had", "show", "shows",
                    "showing", "demonstrate", "demonstrates", "seen", "noted", "present",
                    "identified", "visible", "persist", "persists", "remain", "remains",
                    "appear", "appears"))
# ... nor past a new subject after "and" or a comma: "No effusion, the heart is enlarged".
_NEW_SUBJECT = re.compile(r"(?:,|\band)\s*(?:the|a|an|there|this|these|it)\b")
_IN_PHRASE_NEGATION = re.compile(r"\b(?:not|no longer)\b")
_WORD = re.compile(r"\w+")
PRE_REACH = 8  # words (other mentions aside) a pre-cue reaches: a list of findings
POST_REACH = 6  # words a post-cue reaches back: "consolidation in the right lower lobe is ..."


# --- Compiling ---------------------------------------------------------------------------------
#
# Each scan is one regex without named groups (groups make Python's regex engine several times
# slower); a match is then told apart by which part regex matches it whole (cached). The
# scans run on lower-cased text without IGNORECASE (faster too), and their alternatives are
# bucketed by the letter a match can start with, each bucket behind a one-letter lookahead,
# so at a word start only that letter's fragments are tried (in their table order, so the
# first fragment that matches still wins). ``_first_letters`` reads the letters off the
# fragment's text; a fragment it cannot read goes into every bucket.

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _group_end(regex: str, i: int) -> int:
    """The index just past the group that opens at ``regex[i]``."""
    depth, j = 0, i
    while j < len(regex):
        c = regex[j]
        if c == "\\":
            j += 1
        elif c == "[":
            j = regex.index("]", j + 1)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ValueError(f"unbalanced group in {regex!r}")


def _top_alternatives(regex: str) -> list[str]:
    out, depth, start, j = [], 0, 0, 0
    while j < len(regex):
        c = regex[j]
        if c == "\\":
            j += 1
        elif c == "[":
            j = regex.index("]", j + 1)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(regex[start:j])
            start = j + 1
        j += 1
    return [*out, regex[start:]]


def _first_letters(regex: str) -> set[str] | None:
    """The characters a match of ``regex`` can start with ("" if it can be empty), or None
    when this small reader cannot tell (letters, "x?", "(?:a|b)", "(?:a)?" and lookarounds
    are all it reads)."""
    alternatives = _top_alternatives(regex)
    if len(alternatives) > 1:
        out: set[str] = set()
        for alternative in alternatives:
            first = _first_letters(alternative)
            if first is None:
                return None
            out |= first
        return out
    if not regex:
        return {""}
    if regex[0] == "(":
        end = _group_end(regex, 0)
        inner, rest = regex[1:end - 1], regex[end:]
        if inner.startswith(("?<!", "?<=", "?!", "?=")):  # zero width
            return _first_letters(rest)
        if not inner.startswith("?:"):
            return None
        first = _first_letters(inner[2:])
        if first is not None and rest[:1] in ("?", "*"):
            first = first | {""}
            rest = rest[1:]
        if first is None or "" not in first:
            return first
        after = _first_letters(rest)
        return None if after is None else (first - {""}) | after
    if regex[0].isalpha():
        if regex[1:2] in ("?", "*"):
            after = _first_letters(regex[2:])
            return None if after is None else {regex[0]} | after
        return {regex[0]}
    return None


def _dispatch(fragments: Iterable[str]) -> str:
    """``fragments`` (all starting with a letter) as one alternation, bucketed by first
    letter behind lookaheads; same matches as ``"|".join(fragments)``."""
    buckets: dict[str, list[str]] = {}
    for fragment in fragments:
        first = _first_letters(fragment)
        letters = (sorted(first) if first is not None and "" not in first
                   and first <= set(_LETTERS) else _LETTERS)
        for letter in letters:
            buckets.setdefault(letter, []).append(fragment)
    return "|".join(f"(?={letter})(?:{'|'.join(parts)})"
                    for letter, parts in sorted(buckets.items()))


def _cue_regex(fragments: Iterable[str]) -> re.Pattern[str]:
    """Cues as one regex: words match whole words, a fragment starting with punctuation ("?")
    as it stands."""
    fragments = list(fragments)
    words = [rf"(?:{f})(?!\w)" for f in fragments if f[0].isalpha()]
    other = [f for f in fragments if not f[0].isalpha()]
    return re.compile("|".join([rf"\b(?:{_dispatch(words)})", *other]))


def _one_of(parts: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts))


_PRE_KINDS = {"pseudo": PSEUDO, "suggest": SUGGEST, "unc": PRE_UNCERTAIN, "neg": PRE_NEGATION}
_POST_KINDS = {"unc": POST_UNCERTAIN, "neg": POST_NEGATION, "adjacent": POST_NEGATION_ADJACENT}
_PRE_CUES = _cue_regex(f for fragments in _PRE_KINDS.values() for f in fragments)
_POST_CUES = _cue_regex(f for fragments in _POST_KINDS.values() for f in fragments)
_CUE_KINDS = {
    "pre": tuple((kind, _cue_regex(f)) for kind, f in _PRE_KINDS.items()),
    "post": tuple((kind, _cue_regex(f)) for kind, f in _POST_KINDS.items()),
}
_MENTION_FRAGMENTS = ([f for _, f, _ in FIXED]
                      + [f for finding in _PRIORITY for f in PHRASES[finding]])
_MENTION = re.compile(rf"\b(?:{_dispatch(_MENTION_FRAGMENTS)})\b")
_FIXED_PARTS = tuple((finding, _one_of([f]), status) for finding, f, status in FIXED)
_FINDING_PARTS = tuple((finding, _one_of(PHRASES[finding])) for finding in _PRIORITY)


@lru_cache(maxsize=4096)
def _cue_kind(side: str, cue: str) -> str:
    return next((kind for kind, part in _CUE_KINDS[side] if part.fullmatch(cue)), "")


@lru_cache(maxsize=8192)
def _findings_of(phrase: str) -> tuple[tuple[str, ...], str]:
    """(the findings ``phrase`` names, its fixed status or ""): every finding whose phrases
    match it whole, "hydropneumothorax" two."""
    fixed = [(finding, status) for finding, part, status in _FIXED_PARTS
             if part.fullmatch(phrase)]
    if fixed:
        return tuple(f for f, _ in fixed), fixed[0][1]
    return tuple(f for f, part in _FINDING_PARTS if part.fullmatch(phrase)), ""


# --- Sections and sentences ------------------------------------------------------------------

_SKIP_HEADERS = (r"indications?|(?:clinical )?history|clinical (?:information|details|indications?"
                 r"|questions?|notes)|reasons? for (?:the )?(?:exam|examination|study|request"
                 r"|referral)|comparisons?|technique|examination|exam")
_KEEP_HEADERS = (r"findings?|impressions?|conclusions?|opinion|report|comments?|summary"
                 r"|interpretation|results?")
_HEADER = re.compile(rf"^[ \t]*(?:(?P<skip>{_SKIP_HEADERS})|{_KEEP_HEADERS})[ \t]*:",
                     re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# A sentence ends at ".", "!" (not after "vs", "e.g", "i.e", "approx", "Dr" and not in
# "1.5") or "?" (not a "? consolidation" query) before a space; at a blank line; at a line
# break before a bullet, a number or a capitalised header.
_SENTENCE_END = re.compile(
    r"[.!]+(?=\s)(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bapprox\.)(?<!\bdr\.)(?<!\bfig\.)"
    r"|\?(?<=\S\?)\?*(?=\s)|\n[ \t]*\n"
    r"|\n(?=[ \t]*(?:[-*\u2022]|\d+[.)]\s|(?-i:[A-Z][A-Za-z /]{2,40}:)))",
    re.IGNORECASE)


def _kept_text(text: str) -> str:
    """``text`` without its history-like sections (they ask, they do not find)."""
    if ":" not in text:
        return text
    out, pos, skipping = [], 0, False
    for header in _HEADER.finditer(text):
        if not skipping:
            out.append(text[pos:header.start()])
        else:  # a skipped section also ends at a blank line
            blank = _BLANK_LINE.search(text, pos, header.start())
            if blank:
                out.append(text[blank.end():header.start()])
        skipping, pos = header.group("skip") is not None, header.start()
        if skipping:
            pos = header.end()
        out.append("\n\n")
    if skipping:
        blank = _BLANK_LINE.search(text, pos)
        out.append(text[blank.end():] if blank else "")
    else:
        out.append(text[pos:])
    return "".join(out)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, each keeping its final punctuation."""
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        piece = text[start:end.end()].strip()
        if piece:
            out.append(piece)
        start = end.end()
    piece = text[start:].strip()
    if piece:
        out.append(piece)
    return out


# --- Mentions --------------------------------------------------------------------------------

def _gap_ok(sentence: str, start: int, end: int, spans: list[tuple[int, int]], reach: int,
            *, post: bool = False) -> bool:
    """Whether a cue reaches across ``sentence[start:end]``: other mentions (a list of
    findings) do not count, a verb or a new subject stops it, and so does length. A post-cue's
    auxiliary ("is", "has been") is part of it."""
    gap = sentence[start:end]
    for s, e in reversed(spans):  # blank out the mentions inside the gap
        if start <= s and e <= end:
            gap = gap[:s - start] + " " + gap[e - start:]
    words = _WORD.findall(gap)
    if post:
        while words and words[-1] in _AUX:
            words.pop()
    if len(words) > reach:
        return False
    return not any(w in _BLOCK for w in words) and not _NEW_SUBJECT.search(gap)


Cue = tuple[int, int, str, int]  # start, end, kind, clause


def _status(match: re.Match[str], fixed: str, clause: int, sentence: str,
            spans: list[tuple[int, int]], pre: list[Cue], post: list[Cue]) -> str:
    """A mention's status: see the module's docstring for the order of the rules."""
    if _IN_PHRASE_NEGATION.search(match.group()):
        return NEGATIVE
    if fixed:
        return fixed
    start, end = match.span()
    before = [c for c in pre if c[3] == clause and c[1] <= start]
    if before:  # the nearest cue before; a pseudo-cue ("no change in") is none
        _, cue_end, kind, _ = before[-1]
        if (kind == "suggest" and len(before) > 1 and before[-2][2] == "neg"
                and _gap_ok(sentence, before[-2][1], start, spans, PRE_REACH)):
            return NEGATIVE
        if kind != "pseudo" and _gap_ok(sentence, cue_end, start, spans, PRE_REACH):
            return NEGATIVE if kind == "neg" else UNCERTAIN
    after = next((c for c in post if c[3] == clause and c[0] >= end), None)
    if after is not None and _gap_ok(sentence, end, after[0], spans,
                                     0 if after[2] == "adjacent" else POST_REACH, post=True):
        return UNCERTAIN if after[2] == "unc" else NEGATIVE
    return POSITIVE


def _cues(side: str, sentence: str, start: int, end: int, spans: list[tuple[int, int]],
          stops: list[int]) -> list[Cue]:
    """The cues in ``sentence[start:end]`` outside the mentions, with their clause."""
    pattern = _PRE_CUES if side == "pre" else _POST_CUES
    out = []
    for c in pattern.finditer(sentence, start, end):
        s, e = c.span()
        if any(ms <= s and e <= me for ms, me in spans):  # "not" in "heart is not enlarged"
            continue
        out.append((s, e, _cue_kind(side, c.group()), bisect_right(stops, s)))
    return out


def mentions(text: str) -> list[Mention]:
    """Every finding mention in ``text`` with its status, in reading order: the explanation of
    ``label_report``'s labels."""
    out: list[Mention] = []
    for sentence in split_sentences(_kept_text(text or "")):
        lowered = sentence.lower()
        if len(lowered) != len(sentence):  # a rare letter whose lower case is longer
            sentence = lowered
        found = list(_MENTION.finditer(lowered))
        if not found:
            continue
        spans = [m.span() for m in found]
        stops = ([c.start() if c.group() != ";" else c.end() for c in _CLAUSE.finditer(lowered)]
                 if any(hint in lowered for hint in _CLAUSE_HINTS) else [])
        pre = _cues("pre", lowered, 0, spans[-1][0], spans, stops)
        post = _cues("post", lowered, spans[0][1], len(lowered), spans, stops)
        for m in found:
            findings, fixed = _findings_of(m.group())
            status = _status(m, fixed, bisect_right(stops, m.start()), lowered, spans, pre,
                             post)
            phrase = sentence[m.start():m.end()]
            out.extend(Mention(finding=f, sentence=sentence, phrase=phrase, status=status)
                       for f in findings)
    return out


# --- Labels ----------------------------------------------------------------------------------

def _check_policy(uncertain: str) -> None:
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, not {uncertain!r}")


def labels_of(found: list[Mention], uncertain: str) -> dict[str, int]:
    """The 14 findings as 0/1 from a report's ``mentions`` (no second reading of the text)."""
    counted = (POSITIVE, UNCERTAIN) if uncertain == "positive" else (POSITIVE,)
    return with_no_finding({m.finding: 1 for m in found if m.status in counted})


def label_report(text: str, *, uncertain: str = "positive") -> dict[str, int]:
    """The 14 findings of ``text`` as 0/1. An uncertain mention counts as ``uncertain`` says;
    an empty report has no positive finding, so its No Finding is 1."""
    _check_policy(uncertain)
    return labels_of(mentions(text), uncertain)


def label_many(texts: Iterable[str], *, uncertain: str = "positive") -> list[dict[str, int]]:
    """``label_report`` of each text, in order."""
    _check_policy(uncertain)
    return [labels_of(mentions(text), uncertain) for text in texts]
