"""The rule-based labeller (``metrics.rules``): CheXpert's conventions on hand-written sentences,
and agreement with the truth of the demo's own reports.

No database: the labeller is plain Python; the demo's report writers are pure functions of
their seeds.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from demo.cases import demo_records, labels_of
from demo.reports import edit_draft, scp_report
from drafting.backends import demo_reply, write_report
from metrics import rules
from metrics.rules import label_many, label_report, mentions, split_sentences, with_no_finding
from trial.dicom.synthetic import KINDS, LOBES, SIZES, ZONES, ImageFinding
from trial.findings import FINDINGS, NO_FINDING


def positives(text: str, *, uncertain: str = "positive") -> set[str]:
    """The findings labelled 1, No Finding aside: what most tests compare."""
    labels = label_report(text, uncertain=uncertain)
    return {f for f, v in labels.items() if v and f != NO_FINDING}


def statuses(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in mentions(text):
        out.setdefault(m.finding, set()).add(m.status)
    return out


# --- The API ---------------------------------------------------------------------------------

def test_labels_are_the_fourteen_findings_in_order_as_0_or_1() -> None:
    labels = label_report("Small right pleural effusion. Cardiomegaly.")
    assert list(labels) == list(FINDINGS)
    assert set(labels.values()) <= {0, 1}
    assert labels["Pleural Effusion"] == labels["Cardiomegaly"] == 1
    assert labels[NO_FINDING] == 0


def test_description_says_rule_based_and_version_is_set() -> None:
    """Its labels are shown with this sentence: it must say what they are."""
    assert "Rule-based" in rules.DESCRIPTION and "not a validated" in rules.DESCRIPTION
    assert rules.RULES_VERSION
    assert rules.UNCERTAIN_POLICIES == ("positive", "negative")


def test_unknown_uncertain_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="uncertain"):
        label_report("Cardiomegaly.", uncertain="ignore")
    with pytest.raises(ValueError, match="uncertain"):
        label_many(["Cardiomegaly."], uncertain="")


def test_label_many_is_label_report_of_each() -> None:
    texts = ["Cardiomegaly.", "", "Possible pneumonia.", "No effusion."]
    for policy in rules.UNCERTAIN_POLICIES:
        assert label_many(texts, uncertain=policy) == [
            label_report(t, uncertain=policy) for t in texts]
    assert label_many(iter(texts)) == label_many(texts)  # any iterable


def test_empty_report_has_no_finding() -> None:
    """Decided: an empty report names no positive finding, so by CheXpert's rule its No
    Finding is 1 (a caller that wants to treat "no text" differently must check first)."""
    for text in ("", "   \n ", "FINDINGS:\nIMPRESSION:"):
        assert mentions(text) == []
        assert label_report(text) == {f: int(f == NO_FINDING) for f in FINDINGS}


def test_mention_explains_a_label() -> None:
    text = "Heart size normal. Left basal atelectasis; pneumonia is not excluded."
    found = mentions(text)
    assert found == [
        rules.Mention("Atelectasis", "Left basal atelectasis; pneumonia is not excluded.",
                      "atelectasis", "positive"),
        rules.Mention("Pneumonia", "Left basal atelectasis; pneumonia is not excluded.",
                      "pneumonia", "uncertain"),
    ]
    with pytest.raises(AttributeError):  # frozen: an explanation is not edited
        found[0].status = "negative"  # type: ignore[misc]


def test_mention_keeps_the_reports_own_case() -> None:
    (m,) = mentions("ENLARGED CARDIAC SILHOUETTE.")
    assert (m.finding, m.phrase, m.sentence) == (
        "Cardiomegaly", "ENLARGED CARDIAC SILHOUETTE", "ENLARGED CARDIAC SILHOUETTE.")


def test_with_no_finding_fills_all_keys_and_recomputes_no_finding() -> None:
    assert with_no_finding({}) == {f: int(f == NO_FINDING) for f in FINDINGS}
    out = with_no_finding({"Support Devices": 1, NO_FINDING: 0})
    assert out[NO_FINDING] == 1 and out["Support Devices"] == 1
    out = with_no_finding({"Fracture": 1, NO_FINDING: 1})
    assert out[NO_FINDING] == 0 and out["Fracture"] == 1


# --- Positive mentions: a good clinical list per finding ------------------------------------

@pytest.mark.parametrize(("text", "finding"), [
    ("The mediastinum is widened.", "Enlarged Cardiomediastinum"),
    ("Widened superior mediastinum.", "Enlarged Cardiomediastinum"),
    ("Lobulated mediastinal widening.", "Enlarged Cardiomediastinum"),
    ("Enlarged cardiomediastinal silhouette.", "Enlarged Cardiomediastinum"),
    ("Cardiomegaly.", "Cardiomegaly"),
    ("The heart is enlarged.", "Cardiomegaly"),
    ("Heart size is mildly enlarged.", "Cardiomegaly"),
    ("Cardiac enlargement.", "Cardiomegaly"),
    ("Enlarged heart.", "Cardiomegaly"),
    ("Increased cardiothoracic ratio.", "Cardiomegaly"),
    ("The cardiothoracic ratio is increased.", "Cardiomegaly"),
    ("Patchy opacity in the left lower zone.", "Lung Opacity"),
    ("Bibasal opacities.", "Lung Opacity"),
    ("Opacification of the left hemithorax.", "Lung Opacity"),
    ("Right perihilar infiltrate.", "Lung Opacity"),
    ("Multifocal air-space disease.", "Lung Opacity"),
    ("Nodular shadowing in the upper zones.", "Lung Opacity"),
    ("Perihilar haziness.", "Lung Opacity"),
    ("Ground-glass change at the bases.", "Lung Opacity"),
    ("A 2 cm nodule in the right upper lobe.", "Lung Lesion"),
    ("Multiple pulmonary nodules.", "Lung Lesion"),
    ("Left hilar mass.", "Lung Lesion"),
    ("Cavitary lesion in the left apex.", "Lung Lesion"),
    ("Well-defined rounded opacity in the left mid zone.", "Lung Lesion"),
    ("Pulmonary edema.", "Edema"),
    ("Interstitial oedema.", "Edema"),
    ("Pulmonary vascular congestion.", "Edema"),
    ("Upper lobe venous diversion with Kerley B lines.", "Edema"),
    ("Right lower lobe consolidation.", "Consolidation"),
    ("Consolidation with air bronchograms.", "Consolidation"),
    ("Right lower lobe pneumonia.", "Pneumonia"),
    ("Appearances consistent with infection.", "Pneumonia"),
    ("Infectious process at the right base.", "Pneumonia"),
    ("Bibasal atelectasis.", "Atelectasis"),
    ("Atelectatic changes at the left base.", "Atelectasis"),
    ("Left lower lobe collapse.", "Atelectasis"),
    ("Volume loss in the right upper lobe.", "Atelectasis"),
    ("Large left pneumothorax.", "Pneumothorax"),
    ("Bilateral pneumothoraces.", "Pneumothorax"),
    ("Small right pleural effusion.", "Pleural Effusion"),
    ("Bilateral effusions.", "Pleural Effusion"),
    ("Blunting of the left costophrenic angle.", "Pleural Effusion"),
    ("Fluid in the right costophrenic angle.", "Pleural Effusion"),
    ("Right apical pleural thickening.", "Pleural Other"),
    ("Calcified pleural plaques.", "Pleural Other"),
    ("Left fibrothorax.", "Pleural Other"),
    ("Pleural scarring at the right base.", "Pleural Other"),
    ("Fracture of the left 7th rib.", "Fracture"),
    ("Multiple old healed rib fractures.", "Fracture"),
    ("Fractured right clavicle.", "Fracture"),
    ("Endotracheal tube 4 cm above the carina.", "Support Devices"),
    ("Right internal jugular central venous catheter, tip in the SVC.", "Support Devices"),
    ("A right-sided central line with its tip over the SVC.", "Support Devices"),
    ("Left-sided dual-chamber pacemaker.", "Support Devices"),
    ("Left chest wall ICD.", "Support Devices"),
    ("Median sternotomy wires.", "Support Devices"),
    ("Surgical clips in the left axilla.", "Support Devices"),
    ("Right chest port.", "Support Devices"),
    ("Left intercostal drain.", "Support Devices"),
    ("Prosthetic aortic valve.", "Support Devices"),
    ("Mitral valve replacement.", "Support Devices"),
    ("Oesophageal stent.", "Support Devices"),
])
def test_a_positive_mention_labels_its_finding(text: str, finding: str) -> None:
    assert positives(text) == {finding}
    assert statuses(text) == {finding: {"positive"}}


def test_one_phrase_can_name_two_findings() -> None:
    assert positives("Right hydropneumothorax.") == {"Pneumothorax", "Pleural Effusion"}


@pytest.mark.parametrize("text", [
    "Pericardial effusion.", "Mass effect on the trachea.", "Soft tissue oedema of the arm.",
    "Kerley B lines.",  # lines: edema, not a support device
    "Plate-like atelectasis.",  # plate: atelectasis, not a fixation plate
    "The cardiac shadow is normal.",  # shadow: anatomy, not an opacity
    "The trachea is midline.", "The pleural cavity.", "Body mass index 31.",
])
def test_look_alike_words_are_not_the_finding(text: str) -> None:
    assert positives(text) <= {"Atelectasis", "Edema"}
    assert "Support Devices" not in positives(text)
    assert "Lung Opacity" not in positives(text) and "Lung Lesion" not in positives(text)
    assert "Pleural Effusion" not in positives(text)


# --- Negation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "No pneumothorax.",
    "There is no pleural effusion.",
    "Without focal consolidation.",
    "Negative for pneumonia.",
    "The lungs are free of consolidation.",
    "Absence of pulmonary oedema.",
    "No evidence of pneumothorax.",
    "No radiographic evidence of pneumonia.",
    "The left effusion has resolved.",
    "Resolved right pneumothorax.",
    "Interval resolution of the right effusion.",
    "Pneumonia is ruled out.",
    "Pneumothorax is not seen.",
    "Focal consolidation is not identified.",
    "Pleural effusions are not identified.",
    "The heart is not enlarged.",
    "The mediastinum is not widened.",
    "Mediastinum not widened.",
    "No new consolidation.",
    "No definite focal consolidation to suggest pneumonia.",
    "No displaced rib fracture.",
    "No lines or tubes.",
    "The nasogastric tube has been removed.",
    "Interval removal of the right chest drain.",
    "Effusion unlikely.",
])
def test_a_negated_mention_is_0(text: str) -> None:
    found = mentions(text)
    assert found and all(m.status == "negative" for m in found), found
    for policy in rules.UNCERTAIN_POLICIES:
        assert label_report(text, uncertain=policy)[NO_FINDING] == 1


def test_a_negation_list_negates_every_finding_in_it() -> None:
    text = "No pleural effusion, pneumothorax or focal consolidation."
    assert statuses(text) == {"Pleural Effusion": {"negative"}, "Pneumothorax": {"negative"},
                              "Consolidation": {"negative"}}
    text = ("No evidence of focal consolidation, pleural effusion, pneumothorax, pulmonary "
            "oedema or acute rib fracture.")
    assert {s for v in statuses(text).values() for s in v} == {"negative"}
    assert len(statuses(text)) == 5
    assert statuses("No consolidation or collapse.") == {
        "Consolidation": {"negative"}, "Atelectasis": {"negative"}}


@pytest.mark.parametrize(("text", "positive"), [
    ("No pleural effusion but there is a small left pneumothorax.", "Pneumothorax"),
    ("No consolidation, however the heart is enlarged.", "Cardiomegaly"),
    ("No effusion, although there is basal atelectasis.", "Atelectasis"),
    ("No pneumothorax; small right pleural effusion.", "Pleural Effusion"),
    ("No pneumothorax. Small right pleural effusion.", "Pleural Effusion"),
    ("No pleural effusion is seen and the heart is enlarged.", "Cardiomegaly"),
    ("No effusion, the heart is enlarged.", "Cardiomegaly"),
    ("No focal consolidation other than minor left basal atelectasis.", "Atelectasis"),
])
def test_a_negations_scope_stops_at_a_clause(text: str, positive: str) -> None:
    assert positives(text) == {positive}
    negated = {m.finding for m in mentions(text) if m.status == "negative"}
    assert negated and positive not in negated


def test_a_negation_after_the_mention_does_not_reach_back() -> None:
    assert positives("Right lower lobe consolidation, no effusion.") == {"Consolidation"}


def test_pseudo_negations_are_not_negations() -> None:
    """"No change in the effusion" says the effusion is there."""
    assert positives("No change in the moderate right pleural effusion.") == {
        "Pleural Effusion"}
    assert positives("No significant interval change in the cardiomegaly.") == {"Cardiomegaly"}
    assert positives("Small left effusion, not significantly changed.") == {"Pleural Effusion"}


@pytest.mark.parametrize(("text", "expected"), [
    ("Pneumothorax is not seen.", "negative"),
    ("Pleural effusion or pneumothorax is not seen.", "negative"),
    ("Consolidation in the right lower lobe is not seen.", "negative"),
    ("The right effusion has since resolved.", "negative"),
    ("Focal consolidations are not identified.", "negative"),
    ("The chest drain has been removed.", "negative"),
    ("Pneumonia cannot be excluded.", "uncertain"),
    ("A small effusion can not be ruled out.", "uncertain"),
    ("Early pneumonia is not excluded.", "uncertain"),
    ("Tuberculosis reactivation; cavitation to be excluded.", "uncertain"),
    ("Infection is possible.", "uncertain"),
    ("Pneumonia?", "uncertain"),
    ("Atelectasis versus consolidation.", "uncertain"),
])
def test_post_cues(text: str, expected: str) -> None:
    assert {s for v in statuses(text).values() for s in v} == {expected}


def test_a_post_cue_does_not_reach_back_past_a_verb() -> None:
    text = "The effusion has increased, the pneumothorax has resolved."
    assert statuses(text) == {"Pleural Effusion": {"positive"}, "Pneumothorax": {"negative"}}


def test_normal_and_unlikely_negate_only_the_mention_just_before() -> None:
    """"... is normal" is about its own subject, which is rarely a mention."""
    assert positives("The heart is enlarged, the mediastinum is normal.") == {"Cardiomegaly"}
    assert positives("Cardiomegaly and mediastinum normal.") == {"Cardiomegaly"}
    assert statuses("Pneumonia is unlikely.") == {"Pneumonia": {"negative"}}
    assert statuses("No pneumothorax following chest tube removal.") == {
        "Pneumothorax": {"negative"}, "Support Devices": {"negative"}}


# --- Uncertainty ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "finding"), [
    ("Possible right lower lobe pneumonia.", "Pneumonia"),
    ("Possibly a small left effusion.", "Pleural Effusion"),
    ("Probable left basal atelectasis.", "Atelectasis"),
    ("Appearances may represent early consolidation.", "Consolidation"),
    ("Findings suggestive of pulmonary oedema.", "Edema"),
    ("Suspicious for a left upper lobe mass.", "Lung Lesion"),
    ("Cannot exclude a small apical pneumothorax.", "Pneumothorax"),
    ("Question of a rib fracture.", "Fracture"),
    ("The differential includes pneumonia.", "Pneumonia"),
    ("Concerning for infection.", "Pneumonia"),
    ("Equivocal cardiomegaly.", "Cardiomegaly"),
    ("Borderline cardiomegaly.", "Cardiomegaly"),
    ("Heart size at the upper limit of normal.", "Cardiomegaly"),
    ("? consolidation at the left base.", "Consolidation"),
    ("Right lower zone consolidation, likely pneumonia.", "Pneumonia"),
])
def test_uncertain_mentions_follow_the_policy(text: str, finding: str) -> None:
    assert statuses(text)[finding] == {"uncertain"}
    assert finding in positives(text, uncertain="positive")
    assert finding not in positives(text, uncertain="negative")


def test_the_default_policy_counts_uncertain_as_positive() -> None:
    """The reference trial treated CheXbert's uncertain labels as positive."""
    assert label_report("Possible pneumonia.") == label_report("Possible pneumonia.",
                                                               uncertain="positive")
    assert label_report("Possible pneumonia.")["Pneumonia"] == 1


def test_a_hedge_after_the_mention_leaves_it_positive() -> None:
    """"Opacity, likely atelectasis": the opacity is certain, its cause is not."""
    text = "Left basilar opacity may represent atelectasis or pneumonia."
    assert statuses(text) == {"Lung Opacity": {"positive"}, "Atelectasis": {"uncertain"},
                              "Pneumonia": {"uncertain"}}
    assert positives(text, uncertain="negative") == {"Lung Opacity"}


def test_any_positive_mention_wins() -> None:
    text = "Possible right effusion. Definite left pleural effusion."
    assert positives(text, uncertain="negative") == {"Pleural Effusion"}
    text = "No right pleural effusion. Small left pleural effusion."
    assert positives(text) == {"Pleural Effusion"}


# --- No Finding ----------------------------------------------------------------------------

def test_no_finding_is_computed_not_matched() -> None:
    """CheXpert's rule: No Finding is 1 exactly when no finding but Support Devices is 1."""
    devices = label_report("Endotracheal tube and right PICC in satisfactory position.")
    assert devices["Support Devices"] == 1 and devices[NO_FINDING] == 1
    abnormal = label_report("Endotracheal tube in place. Small left pneumothorax.")
    assert abnormal[NO_FINDING] == 0
    # the words "no finding" are not a label
    assert label_report("No findings. Cardiomegaly.")[NO_FINDING] == 0
    # an uncertain finding decides No Finding as the policy says
    assert label_report("Possible pneumonia.", uncertain="positive")[NO_FINDING] == 0
    assert label_report("Possible pneumonia.", uncertain="negative")[NO_FINDING] == 1


NORMAL_REPORTS = [
    "The heart size is normal. No pleural effusion or pneumothorax. Lungs are clear. No "
    "focal consolidation. The cardiomediastinal silhouette is within normal limits. No acute "
    "osseous abnormality.",
    "FINDINGS: PA and lateral views of the chest. The heart is normal in size. The mediastinal "
    "and hilar contours are unremarkable. The lungs are clear without focal consolidation, "
    "pleural effusion or pneumothorax. No pulmonary oedema. The visualised bones are intact.\n"
    "IMPRESSION: No acute cardiopulmonary process.",
    "Clear lungs. The costophrenic angles are clear. Normal cardiac size. Normal hila and "
    "mediastinum. Cardiothoracic ratio within normal limits. No acute bony abnormality. "
    "Normal chest radiograph.",
    "Heart size normal. Mediastinum not widened. No consolidation or collapse. No effusion. "
    "No pneumothorax is seen. No displaced rib fracture. No active disease.",
]


@pytest.mark.parametrize("text", NORMAL_REPORTS)
def test_normal_boilerplate_is_all_zero(text: str) -> None:
    for policy in rules.UNCERTAIN_POLICIES:
        assert label_report(text, uncertain=policy) == {
            f: int(f == NO_FINDING) for f in FINDINGS}
    assert all(m.status == "negative" for m in mentions(text))


# --- Text handling ---------------------------------------------------------------------------

@pytest.mark.parametrize(("british", "american", "finding"), [
    ("Pulmonary oedema.", "Pulmonary edema.", "Edema"),
    ("Tumour in the left lung.", "Tumor in the left lung.", "Lung Lesion"),
    ("Right haemothorax.", "Right hemothorax.", "Pleural Effusion"),
    ("Orthopaedic hardware.", "Orthopedic hardware.", "Support Devices"),
    ("Cephalisation of the vessels.", "Cephalization of the vessels.", "Edema"),
])
def test_british_and_american_spelling(british: str, american: str, finding: str) -> None:
    assert positives(british) == positives(american) == {finding}


def test_case_and_plural_forms() -> None:
    assert positives("BILATERAL PLEURAL EFFUSIONS.") == {"Pleural Effusion"}
    assert positives("Multiple Nodules And Masses.") == {"Lung Lesion"}
    assert positives("Bilateral opacities and infiltrates.") == {"Lung Opacity"}
    assert positives("Two catheters and three tubes.") == {"Support Devices"}
    assert positives("NO PNEUMOTHORAX.") == set()


def test_decimals_and_abbreviations_do_not_split_sentences() -> None:
    assert split_sentences("A 1.5 cm nodule. No effusion.") == [
        "A 1.5 cm nodule.", "No effusion."]
    assert split_sentences("Atelectasis vs. pneumonia. Heart normal.") == [
        "Atelectasis vs. pneumonia.", "Heart normal."]
    # the negation's scope does not run into the next sentence, nor stop inside "1.5"
    assert positives("No effusion. A 1.5 cm nodule.") == {"Lung Lesion"}
    assert statuses("No 1.5 cm nodule or effusion.") == {
        "Lung Lesion": {"negative"}, "Pleural Effusion": {"negative"}}


def test_line_breaks() -> None:
    """A wrapped line is one sentence; a blank line or a new header ends one."""
    assert statuses("No pleural effusion or\npneumothorax.") == {
        "Pleural Effusion": {"negative"}, "Pneumothorax": {"negative"}}
    assert positives("No effusion\n\nPneumothorax") == {"Pneumothorax"}
    assert positives("FINDINGS: no effusion\nIMPRESSION: Pneumothorax") == {"Pneumothorax"}


def test_question_mark_before_a_word_does_not_end_the_sentence() -> None:
    assert split_sentences("Right basal ? consolidation. Heart normal.") == [
        "Right basal ? consolidation.", "Heart normal."]


def test_history_sections_are_not_labelled() -> None:
    """The clinical question names what is asked about, not what is found."""
    text = ("INDICATION: Fever, ? pneumonia. History of pneumothorax.\n\n"
            "COMPARISON: None.\n\n"
            "FINDINGS: The lungs are clear. No effusion.\n"
            "IMPRESSION: No acute abnormality.")
    assert positives(text) == set()
    assert {m.finding for m in mentions(text)} == {"Pleural Effusion"}
    assert positives("Clinical history: cough.\nFindings: Right lower lobe pneumonia.") == {
        "Pneumonia"}


# --- The phrase tables ---------------------------------------------------------------------

def test_every_fragment_is_lower_case() -> None:
    """The scans run on lower-cased text without IGNORECASE: a capital would never match."""
    fragments = [f for fs in rules.PHRASES.values() for f in fs] + [f for _, f, _ in rules.FIXED]
    fragments += [f for fs in (*rules._PRE_KINDS.values(), *rules._POST_KINDS.values())
                  for f in fs]
    for fragment in fragments:
        assert not re.search(r"[A-Z]", re.sub(r"\\.", "", fragment)), fragment


def test_every_fragment_is_read_for_the_first_letter_dispatch() -> None:
    """A fragment ``_first_letters`` cannot read still works (it is tried at every word), but
    slowly: keep the table readable to it."""
    for fragment in rules._MENTION_FRAGMENTS:
        first = rules._first_letters(fragment)
        assert first and "" not in first and first <= set(rules._LETTERS), fragment


def test_the_dispatched_scan_finds_what_the_plain_alternation_finds() -> None:
    plain = re.compile(r"\b(?:" + "|".join(rules._MENTION_FRAGMENTS) + r")\b")
    texts = [t for r in _demo_rows() for t in split_sentences(r[1])] + NORMAL_REPORTS
    texts += ["no pleural effusion, pneumothorax, hydropneumothorax or consolidation. "
              "superior mediastinal widening; upper lobe venous diversion; interstitial "
              "pulmonary oedema; lung abscess; bronchopneumonia; aicd; guidewire."]
    for text in texts:
        lowered = text.lower()
        assert ([m.span() for m in rules._MENTION.finditer(lowered)]
                == [m.span() for m in plain.finditer(lowered)]), text


def test_rules_version_is_a_string_for_the_fingerprint() -> None:
    assert isinstance(rules.RULES_VERSION, str) and isinstance(rules.DESCRIPTION, str)


# --- Agreement with the demo's reports -------------------------------------------------------
#
# The demo writes reports from known truths (``drafting.backends`` phrasing pool): the demo
# model's drafts, the SCP reader's reports and the AI-arm reader's edits of a draft; its truth
# maps to CheXpert findings with ``demo.cases.labels_of`` (the mapping the simulated readers
# tick). Where the demo's mapping and CheXpert's conventions part, the labeller follows
# CheXpert and the test says so:
#
# * tuberculosis maps to Lung Opacity only, but some of its phrasings say "upper zone
#   consolidation": the labeller says Consolidation (and not Lung Opacity, CheXpert's labeller
#   does not infer the parent of a finding);
# * consolidation and oedema phrasings say "airspace opacification", "airspace shadowing" and
#   "perihilar haziness": the labeller adds Lung Opacity, which the demo's mapping leaves out;
#   with CheXpert's hierarchy (Lung Opacity is the parent of Consolidation, Pneumonia, Edema,
#   Atelectasis and Lung Lesion) closed on both sides, they agree;
# * an opacity's impression says "infection is possible": Pneumonia is uncertain, so 1 under
#   the policy "positive", 0 under "negative".
#
# Measured (RULES_VERSION 1.0), agreement per finding with the truth, uncertain as positive:
# * 1,800 demo reports (600 demo cases, seed 11; 600 drafts, 600 SCP reports, 600 AI-arm
#   edits): 1.000 for 12 of the 14 findings; Lung Opacity 0.8806 (1.000 closed under the
#   hierarchy), Consolidation 0.9378. The same with uncertain as negative.
# * 1,500 reports of 0-3 findings of every kind the pool phrases (seed 5): 1.000 for 11 of the
#   14; Lung Opacity 0.9067 (1.000 closed), Consolidation 0.9507, Pneumonia 0.9040 (1.000 with
#   uncertain as negative).
# Every disagreement is one of the three above (``_explained``). 1.000 is no evidence of
# accuracy on real reports: the rules were written knowing the demo's pool.

LUNG_OPACITY_CHILDREN = ("Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis")
DEMO_CASES = 600
KINDS_REPORTS = 1500
NO_SIDE = ("cardiomegaly", "edema", "line", "mediastinum")


def _truth(findings: tuple[ImageFinding, ...] | list[ImageFinding]) -> dict[str, int]:
    return with_no_finding({label: 1 for f in findings
                            for label in labels_of(f.kind, cavity=f.cavity)})


def _closed(labels: dict[str, int]) -> dict[str, int]:
    """``labels`` with CheXpert's hierarchy: a child finding implies Lung Opacity."""
    out = dict(labels)
    out["Lung Opacity"] = int(out["Lung Opacity"] or any(out[c] for c in LUNG_OPACITY_CHILDREN))
    return out


Row = tuple[str, str, dict[str, int], tuple[str, ...]]  # source, report, truth, truth's kinds
_ROWS: list[Row] = []


def _demo_rows() -> list[Row]:
    """(source, report, truth labels, truth kinds) for the demo's cases, made once."""
    if _ROWS:
        return _ROWS
    for i, record in enumerate(demo_records(DEMO_CASES, seed=11)):
        case = record.truth
        kinds = tuple(f.kind for f in case.findings)
        findings, impression = scp_report(list(case.findings), np.random.default_rng([i, 1]))
        _ROWS.append(("scp", f"{findings}\n{impression}", _truth(case.findings), kinds))
        draft = demo_reply(prompt=record.history, png=b"").text  # the demo model's draft
        _ROWS.append(("draft", draft, _truth(case.draft), tuple(f.kind for f in case.draft)))
        d_findings, d_impression = write_report(case.draft, np.random.default_rng([case.key, 3]))
        findings, impression = edit_draft(d_findings, d_impression, list(case.findings),
                                          np.random.default_rng([i, 2]))
        _ROWS.append(("edit", f"{findings}\n{impression}", _truth(case.findings), kinds))
    return _ROWS


def _random_finding(kind: str, rng: np.random.Generator) -> ImageFinding:
    side = "" if kind in NO_SIDE else str(rng.choice(["right", "left"]))
    if kind in ("tb", "atelectasis", "effusion") and rng.random() < 0.25:
        side = "both"
    lobes = LOBES["left" if side == "left" else "right"]
    return ImageFinding(
        kind, side=side, lobe=str(rng.choice(lobes)) if kind == "consolidation" else "",
        zone=str(rng.choice(ZONES)) if kind in ("nodule", "mass", "opacity") else "",
        size=str(rng.choice(SIZES)) if kind in ("effusion", "pneumothorax") else "",
        cm=float(rng.integers(2, 13)) / 2 if kind in ("nodule", "mass") else 0.0,
        cavity=bool(rng.random() < 0.5) if kind == "tb" else False,
        rib=int(rng.integers(4, 11)) if kind == "fracture" else 0)


def _kinds_rows() -> list[Row]:
    """Reports of 0-3 findings of every kind the pool phrases (the simulated readers' reports
    of cases that are not the demo's, and their over-calls, come from the same writer)."""
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(KINDS_REPORTS):
        kinds = rng.choice(KINDS, size=int(rng.integers(0, 4)), replace=False)
        found = [_random_finding(str(k), rng) for k in kinds]
        findings, impression = write_report(found, rng)
        rows.append(("kinds", f"{findings}\n{impression}", _truth(found),
                     tuple(f.kind for f in found)))
    return rows


def _agreement(rows: list[Row], *, uncertain: str = "positive",
               closed: bool = False) -> tuple[dict[str, float], dict[str, list]]:
    agree: Counter[str] = Counter()
    wrong: dict[str, list] = {f: [] for f in FINDINGS}
    for row in rows:
        got, truth = label_report(row[1], uncertain=uncertain), row[2]
        if closed:
            got, truth = _closed(got), _closed(truth)
        for f in FINDINGS:
            if got[f] == truth[f]:
                agree[f] += 1
            else:
                wrong[f].append((row, got[f]))
    return {f: agree[f] / len(rows) for f in FINDINGS}, wrong


def _explained(f: str, row: Row, got: int) -> bool:
    """A disagreement the comment above explains (the demo's mapping, not the rules)."""
    text, kinds = row[1].lower(), row[3]
    if f == "Consolidation":  # tuberculosis phrased as consolidation
        return got == 1 and "tb" in kinds and "consolidation" in text
    if f == "Lung Opacity":  # a child finding's opacity words, or tuberculosis's consolidation
        return ((got == 1 and any(w in text for w in ("opacification", "shadowing", "haziness")))
                or (got == 0 and "tb" in kinds))
    if f == "Pneumonia":  # an opacity's "infection is possible"
        return got == 1 and "opacity" in kinds and "infection is possible" in text
    return False


# Thresholds: just under the measured agreement (above): a finding measured at 1.000 may lose
# one report in 1,000, the explained ones about two points; and every disagreement must be an
# explained one.
DEMO_MIN = {f: 0.999 for f in FINDINGS} | {"Lung Opacity": 0.86, "Consolidation": 0.92}
KINDS_MIN = {f: 0.999 for f in FINDINGS} | {"Lung Opacity": 0.88, "Consolidation": 0.93,
                                             "Pneumonia": 0.88}


def test_the_labeller_recovers_the_truth_of_the_demos_reports() -> None:
    rows = _demo_rows()
    assert len(rows) == 3 * DEMO_CASES
    assert Counter(r[0] for r in rows) == {"scp": DEMO_CASES, "draft": DEMO_CASES,
                                           "edit": DEMO_CASES}
    agreement, wrong = _agreement(rows)
    low = {f: round(a, 4) for f, a in agreement.items() if a < DEMO_MIN[f]}
    assert not low, low
    unexplained = [(f, r[1], g) for f, rs in wrong.items() for r, g in rs
                   if not _explained(f, r, g)]
    assert not unexplained, unexplained[:5]
    closed, _ = _agreement(rows, closed=True)
    assert closed["Lung Opacity"] >= 0.999, closed["Lung Opacity"]


def test_the_labeller_recovers_every_kind_the_demo_phrases() -> None:
    rows = _kinds_rows()
    seen = Counter(k for r in rows for k in r[3])
    assert set(seen) == set(KINDS) and min(seen.values()) >= 100
    agreement, wrong = _agreement(rows)
    low = {f: round(a, 4) for f, a in agreement.items() if a < KINDS_MIN[f]}
    assert not low, low
    unexplained = [(f, r[1], g) for f, rs in wrong.items() for r, g in rs
                   if not _explained(f, r, g)]
    assert not unexplained, unexplained[:5]
    strict, _ = _agreement(rows, uncertain="negative")
    assert strict["Pneumonia"] >= 0.999, strict["Pneumonia"]
    closed, _ = _agreement(rows, closed=True)
    assert closed["Lung Opacity"] >= 0.999, closed["Lung Opacity"]
