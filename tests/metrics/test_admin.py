"""The coordinator's admin for report metrics: labellers, judges, their rows, label sets, the
imports, metric runs, and the trial page's panel.

Who may open what (a coordinator of another trial gets 403 on this trial's objects and import
pages, and sees none of its rows in the lists), that an API key's value never reaches a page,
that an import lists every problem of a refused file and imports nothing, that the tools label,
judge and retry, that a run's tables download as a zip of CSVs, and that nothing of a locked
trial changes.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from metrics import compute, exports, jobs, sources
from metrics.models import (
    ChatJob,
    Judge,
    Judgement,
    Labeller,
    Labelling,
    LabelSet,
    MetricsRun,
    Probabilities,
    text_hash,
)
from rating import instruments as inst
from rating.instruments import ERROR_TYPES
from rating.models import Campaign
from rating.report_import import import_reports
from tests.support.factories import CaseFactory
from tests.support.fake_openai import Reply
from tests.support.trial_world import ROLES, World, build_world
from trial.findings import FINDINGS
from trial.models import AuditEvent, Trial

ANON, DENIED = 302, 403
OBJECT_PAGE = {"anonymous": ANON, "reader": DENIED, "senior": DENIED, "rater": DENIED,
               "statistician": DENIED, "coordinator": 200, "other_coordinator": DENIED,
               "superuser": 200}
LIST_PAGE = {**OBJECT_PAGE, "other_coordinator": 200}
SECRET = "sk-live-Mx7pQ2wE9rT4yU1i"  # an API key's value: must never appear anywhere
CASES = ("A-0001", "A-0002", "A-0003")
REPORTS = "\n".join([
    "case_id,source,findings,impression",
    "A-0001,published,Right pleural effusion.,Small right pleural effusion.",
    "A-0001,modelA,Small right pleural effusion.,Pleural effusion.",
    "A-0002,published,The heart is enlarged.,Cardiomegaly.",
    "A-0002,modelA,Cardiomegaly. No pneumothorax.,Enlarged heart.",
    "A-0003,published,The lungs are clear.,Normal chest.",
    "A-0003,modelA,Left lower lobe consolidation.,Pneumonia.",
]) + "\n"
N_TEXTS = 6  # distinct report texts of the campaign above
LABEL_HEADER = "case_id," + ",".join(FINDINGS)


def label_row(case_id: str, *positive: str) -> str:
    return case_id + "," + ",".join("1" if f in positive else "0" for f in FINDINGS)


GOLD = "\n".join([LABEL_HEADER, label_row("A-0001", "Pleural Effusion"),
                  label_row("A-0002", "Cardiomegaly"), label_row("A-0003", "No Finding")]) + "\n"
LLM_LABELS = json.dumps({**dict.fromkeys(FINDINGS, 0), "Edema": 1})
JUDGE_REPLY = json.dumps({key: {"significant": 1 if key == "false_finding" else 0,
                                "insignificant": 0} for key, _ in ERROR_TYPES})


@dataclass
class Metrics:
    world: World
    campaign: Campaign
    rules: Labeller
    llm: Labeller
    judge: Judge
    labelling: Labelling  # done, by the rule-based labeller
    failed: Labelling  # failed, by the LLM labeller
    judgement: Judgement  # failed
    gold: LabelSet
    run: MetricsRun


@pytest.fixture
def world(db) -> World:
    return build_world(staff_roles=True)  # a 403 proves the role check, not ``is_staff``


def retrospective_campaign(world: World) -> Campaign:
    """Trial A's retrospective campaign: a published report and model A's per case."""
    for case_id in CASES[1:]:
        CaseFactory(trial=world.trial, site=world.site, case_id=case_id)
    campaign = Campaign.objects.create(trial=world.trial, name="Retro",
                                       kind=Campaign.Kind.RETROSPECTIVE,
                                       instruments=list(inst.ALL), seed=3)
    import_reports(campaign, REPORTS.encode())
    return campaign


def failed_row(model, tool, text: str, error: str = "HTTP 503 from the model server"):
    fields = ({"text": text} if model is Labelling
              else {"reference": "Reference.", "candidate": text})
    key = text_hash(text) if model is Labelling else text_hash("Reference.", text)
    return model.objects.create(trial=tool.trial, fingerprint=tool.fingerprint, input_hash=key,
                                status=ChatJob.Status.FAILED, attempts=3, error=error,
                                queued_at=timezone.now(),
                                **{("labeller" if model is Labelling else "judge"): tool},
                                **fields)


@pytest.fixture
def metrics(world: World) -> Metrics:
    from metrics.imports import import_labels

    campaign = retrospective_campaign(world)
    rules = jobs.rules_labeller(world.trial)
    texts = [text for comparison in sources.comparisons(world.trial)
             for text in comparison.texts()]
    jobs.label(rules, [*texts, "Right pleural effusion."])
    llm = Labeller.objects.create(trial=world.trial, name="Hosted labeller", base_url=
                                  "http://127.0.0.1:9/v1", model_name="labeller-7b",
                                  api_key_env="CXR_METRICS_TEST_KEY")
    judge = Judge.objects.create(trial=world.trial, name="Judge", base_url=
                                 "http://127.0.0.1:9/v1", model_name="judge-7b")
    gold = import_labels(world.trial, GOLD.encode(), name="Gold labels", gold=True)
    run = compute.run(world.trial, rules, seed=5, resamples=100, permutations=100)
    return Metrics(world=world, campaign=campaign, rules=rules, llm=llm, judge=judge,
                   labelling=Labelling.objects.get(input_hash=text_hash("Right pleural effusion.")),
                   failed=failed_row(Labelling, llm, "Unlabelled text."),
                   judgement=failed_row(Judgement, judge, "Candidate report."), gold=gold,
                   run=run)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def page(response) -> str:
    return response.content.decode()


def upload(text: str, name: str = "labels.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def labeller_form(labeller: Labeller, **changes) -> dict:
    names = ("name", "kind", "base_url", "model_name", "api_key_env", "timeout_s", "prompt",
             "uncertain_policy", "max_tokens", "temperature", "max_attempts", "retry_backoff_s",
             "concurrency")
    return {**{name: getattr(labeller, name) for name in names}, **changes}


# --- who may open what ------------------------------------------------------------------------

OBJECT_PAGES = {
    "labeller page": lambda m: reverse("admin:metrics_labeller_change", args=[m.llm.pk]),
    "rule-based labeller page": lambda m: reverse("admin:metrics_labeller_change",
                                                  args=[m.rules.pk]),
    "judge page": lambda m: reverse("admin:metrics_judge_change", args=[m.judge.pk]),
    "labelling page": lambda m: reverse("admin:metrics_labelling_change",
                                        args=[m.labelling.pk]),
    "judgement page": lambda m: reverse("admin:metrics_judgement_change",
                                        args=[m.judgement.pk]),
    "label set page": lambda m: reverse("admin:metrics_labelset_change", args=[m.gold.pk]),
    "run page": lambda m: reverse("admin:metrics_metricsrun_change", args=[m.run.pk]),
    "run download": lambda m: reverse("admin:metrics_metricsrun_download", args=[m.run.pk]),
    "import labels of A": lambda m: reverse("admin:metrics_labelset_import")
    + f"?trial={m.world.trial.pk}",
    "ticks of A": lambda m: reverse("admin:metrics_labelset_from_ticks")
    + f"?trial={m.world.trial.pk}",
    "import probabilities of A": lambda m: reverse("admin:metrics_labelset_import_probabilities")
    + f"?trial={m.world.trial.pk}",
    "compute for A": lambda m: reverse("admin:metrics_metricsrun_compute")
    + f"?trial={m.world.trial.pk}",
}
LIST_PAGES = {
    name: reverse_name for name, reverse_name in (
        ("labellers", "admin:metrics_labeller_changelist"),
        ("labeller add", "admin:metrics_labeller_add"),
        ("judges", "admin:metrics_judge_changelist"),
        ("judge add", "admin:metrics_judge_add"),
        ("labellings", "admin:metrics_labelling_changelist"),
        ("judgements", "admin:metrics_judgement_changelist"),
        ("label sets", "admin:metrics_labelset_changelist"),
        ("runs", "admin:metrics_metricsrun_changelist"),
        ("import labels", "admin:metrics_labelset_import"),
        ("ticks", "admin:metrics_labelset_from_ticks"),
        ("import probabilities", "admin:metrics_labelset_import_probabilities"),
        ("compute", "admin:metrics_metricsrun_compute"),
    )
}


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_object_and_trial_pages_are_for_the_trials_coordinators(metrics: Metrics,
                                                               name: str) -> None:
    url = OBJECT_PAGES[name](metrics)
    for role in ROLES:
        response = metrics.world.client(role).get(url)
        assert response.status_code == OBJECT_PAGE[role], (name, role)
        if response.status_code == ANON:
            assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("name", LIST_PAGES)
def test_lists_and_pages_without_a_trial_are_for_coordinators(metrics: Metrics,
                                                             name: str) -> None:
    url = reverse(LIST_PAGES[name])
    for role in ROLES:
        assert metrics.world.client(role).get(url).status_code == LIST_PAGE[role], (name, role)


@pytest.mark.parametrize("name", [n for n in LIST_PAGES if "add" not in n])
def test_another_trials_coordinator_sees_none_of_its_rows(metrics: Metrics, name: str) -> None:
    html = page(metrics.world.client("other_coordinator").get(reverse(LIST_PAGES[name])))
    for needle in ("Trial A", "Hosted labeller", "Rule-based labeller", "Gold labels",
                   "labeller-7b", "Right pleural effusion"):
        assert needle not in html, (name, needle)


def test_another_trials_coordinator_cannot_import_into_it(metrics: Metrics) -> None:
    client = metrics.world.client("other_coordinator")
    trial = metrics.world.trial
    posts = {
        "admin:metrics_labelset_import": {"trial": trial.pk, "name": "Theirs",
                                          "csv_file": upload(GOLD)},
        "admin:metrics_labelset_from_ticks": {"trial": trial.pk, "name": "Theirs"},
        "admin:metrics_labelset_import_probabilities": {
            "trial": trial.pk, "csv_file": upload("case_id,source,Edema\nA-0001,m,0.5\n")},
        "admin:metrics_metricsrun_compute": {"trial": trial.pk, "resamples": 100},
    }
    for name, data in posts.items():
        assert client.post(reverse(name), data).status_code == DENIED, name
    assert list(LabelSet.objects.values_list("name", flat=True)) == ["Gold labels"]
    assert not Probabilities.objects.exists()
    assert MetricsRun.objects.count() == 1
    tool = reverse("admin:metrics_labeller_label_all", args=[metrics.rules.pk])
    assert client.post(tool).status_code == DENIED
    choices = page(client.get(reverse("admin:metrics_labelset_import")))
    assert "Trial B" in choices and "Trial A" not in choices


def test_the_pages_render_for_the_coordinator(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    for make in OBJECT_PAGES.values():
        assert client.get(make(metrics)).status_code == 200
    for name in LIST_PAGES.values():
        assert client.get(reverse(name)).status_code == 200
    rules_page = page(client.get(reverse("admin:metrics_labeller_change",
                                         args=[metrics.rules.pk])))
    assert escape(metrics.rules.description) in rules_page
    assert "The server, prompt and limits below do not apply." in rules_page
    assert "Not used: the rule-based labeller calls no server." in rules_page
    assert "changes the fingerprint" in rules_page and metrics.rules.fingerprint in rules_page
    assert 'data-tool="label-all"' in rules_page and 'data-tool="retry-failed"' in rules_page


# --- labellers and judges ---------------------------------------------------------------------

def test_the_key_is_never_shown_only_whether_its_variable_is_set(metrics: Metrics,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("CXR_METRICS_TEST_KEY", SECRET)
    client = metrics.world.client("coordinator")
    edit = reverse("admin:metrics_labeller_change", args=[metrics.llm.pk])
    assert client.post(edit, labeller_form(metrics.llm, timeout_s=30)).status_code == 302
    event = AuditEvent.objects.filter(action="labeller.changed").latest("at")
    pages = [
        reverse("admin:metrics_labeller_changelist"), edit,
        reverse("admin:metrics_labeller_add"), reverse("admin:metrics_labelling_changelist"),
        reverse("admin:metrics_labelling_change", args=[metrics.failed.pk]),
        reverse("admin:trial_trial_change", args=[metrics.world.trial.pk]),
        reverse("admin:trial_auditevent_changelist"),
        reverse("admin:trial_auditevent_change", args=[event.pk]),
    ]
    for url in pages:
        assert SECRET not in page(client.get(url)), url
    assert "<code>CXR_METRICS_TEST_KEY</code> is <strong>set</strong>" in page(client.get(edit))
    monkeypatch.delenv("CXR_METRICS_TEST_KEY")
    assert "is <strong>not set</strong>" in page(client.get(edit))
    rules = page(client.get(reverse("admin:metrics_labeller_change", args=[metrics.rules.pk])))
    assert "The rule-based labeller calls no server and sends no key." in rules


def test_a_labeller_edit_is_audited_and_changes_the_fingerprint(metrics: Metrics) -> None:
    before = metrics.llm.fingerprint
    url = reverse("admin:metrics_labeller_change", args=[metrics.llm.pk])
    client = metrics.world.client("coordinator")
    response = client.post(url, labeller_form(metrics.llm, prompt="Label this report."))
    assert response.status_code == 302
    labeller = Labeller.objects.get(pk=metrics.llm.pk)
    assert labeller.fingerprint != before
    event = AuditEvent.objects.get(action="labeller.changed")
    assert (event.actor, event.trial) == (metrics.world.users["coordinator"], metrics.world.trial)
    assert event.after["prompt"] == "Label this report."
    assert labeller.fingerprint in page(client.get(url))
    assert Labelling.objects.filter(pk=metrics.failed.pk).exists()  # old rows kept


def test_an_llm_labeller_needs_a_server_and_a_model(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    data = {**labeller_form(metrics.llm, name="No server", base_url="", model_name=""),
            "trial": metrics.world.trial.pk}
    response = client.post(reverse("admin:metrics_labeller_add"), data)
    assert response.status_code == 200
    assert "An LLM tool needs a base URL and a model name." in page(response)
    assert not Labeller.objects.filter(name="No server").exists()


def test_a_labeller_that_labelled_cannot_be_deleted_an_unused_one_can(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    for labeller in (metrics.rules, metrics.llm):
        url = reverse("admin:metrics_labeller_delete", args=[labeller.pk])
        assert client.post(url, {"post": "yes"}).status_code == DENIED
        assert Labeller.objects.filter(pk=labeller.pk).exists()
    spare = Labeller.objects.create(trial=metrics.world.trial, name="Spare",
                                    kind=Labeller.Kind.RULES)
    url = reverse("admin:metrics_labeller_delete", args=[spare.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Labeller.objects.filter(pk=spare.pk).exists()
    assert AuditEvent.objects.filter(action="labeller.deleted", object_id=str(spare.pk)).exists()


def test_label_all_with_the_rule_based_labeller_labels_the_campaigns_texts(world: World) -> None:
    retrospective_campaign(world)
    labeller = jobs.rules_labeller(world.trial)
    url = reverse("admin:metrics_labeller_label_all", args=[labeller.pk])
    client = world.client("coordinator")
    response = client.post(url, follow=True)
    assert ("success", f"{labeller.name}: {N_TEXTS} new text(s) labelled; 0 already labelled "
                       "(or queued) by its current configuration.") in messages_of(response)
    rows = Labelling.objects.filter(trial=world.trial, fingerprint=labeller.fingerprint)
    assert rows.count() == N_TEXTS
    assert set(rows.values_list("status", flat=True)) == {ChatJob.Status.DONE}
    effusion = rows.get(text__startswith="Right pleural effusion.")
    assert effusion.labels["Pleural Effusion"] == 1
    again = client.post(url, follow=True)
    assert ("success", f"{labeller.name}: 0 new text(s) labelled; {N_TEXTS} already labelled "
                       "(or queued) by its current configuration.") in messages_of(again)
    listing = page(client.get(reverse("admin:metrics_labelling_changelist")))
    assert "Pleural Effusion" in listing  # the positive findings by name


def test_label_all_without_reports_says_so(world: World) -> None:
    labeller = jobs.rules_labeller(world.trial)
    url = reverse("admin:metrics_labeller_label_all", args=[labeller.pk])
    response = world.client("coordinator").post(url, follow=True)
    assert ("warning", "Trial A: no report to label yet (no retrospective campaign reports, AI "
                       "drafts, submitted readings or signed final reports).") in (
        messages_of(response))


def test_label_all_and_retry_with_an_llm_labeller(world: World, fake_model) -> None:
    retrospective_campaign(world)
    labeller = Labeller.objects.create(trial=world.trial, name="LLM", base_url=fake_model.url,
                                       model_name="labeller-7b", max_attempts=1,
                                       retry_backoff_s=0.0, timeout_s=5)
    fake_model.default = Reply(content=LLM_LABELS)
    failed = failed_row(Labelling, labeller, "Retried text.")
    client = world.client("coordinator")
    response = client.post(reverse("admin:metrics_labeller_label_all", args=[labeller.pk]),
                           follow=True)
    assert ("success", f"LLM: {N_TEXTS} new text(s) queued for labelling ({N_TEXTS} sent to the "
                       "worker); 0 already labelled (or queued) by its current configuration."
            ) in messages_of(response)  # no broker in tests: already labelled
    assert Labelling.objects.filter(labeller=labeller, status=ChatJob.Status.DONE).count() == (
        N_TEXTS)
    retried = client.post(reverse("admin:metrics_labeller_retry_failed", args=[labeller.pk]),
                          follow=True)
    assert ("success", "LLM: 1 failed labelling(s) re-queued (1 sent to the worker).") in (
        messages_of(retried))
    failed.refresh_from_db()
    assert (failed.status, failed.labels["Edema"]) == (ChatJob.Status.DONE, 1)
    assert AuditEvent.objects.filter(action="labelling.retried").count() == 1
    html = page(client.get(reverse("admin:metrics_labeller_changelist")))
    done = escape(reverse("admin:metrics_labelling_changelist") + "?" + (
        f"trial__id__exact={world.trial.pk}&fingerprint={labeller.fingerprint}"
        "&status__exact=done"))
    assert f'<a href="{done}">{N_TEXTS + 1}</a>' in html
    total = N_TEXTS + 1
    detail = page(client.get(reverse("admin:metrics_labeller_change", args=[labeller.pk])))
    assert (f'<progress value="{total}" max="{total}" title="{total} of {total} finished">'
            in detail)


def test_the_retry_action_of_the_labelling_list(metrics: Metrics, fake_model) -> None:
    Labeller.objects.filter(pk=metrics.llm.pk).update(base_url=fake_model.url, api_key_env="",
                                                      max_attempts=1,
                                                      retry_backoff_s=0.0, timeout_s=5)
    llm = Labeller.objects.get(pk=metrics.llm.pk)
    failed = failed_row(Labelling, llm, "Another text.")  # of the new fingerprint
    fake_model.default = Reply(content=LLM_LABELS)
    response = metrics.world.client("coordinator").post(
        reverse("admin:metrics_labelling_changelist"),
        {"action": "retry_failed_action",
         "_selected_action": [failed.pk, metrics.failed.pk, metrics.labelling.pk]}, follow=True)
    shown = messages_of(response)
    assert ("success", "Hosted labeller: 1 failed labelling(s) re-queued (1 sent to the "
                       "worker).") in shown
    assert ("warning", "2 selected row(s) left alone: only a failed row of its labeller's "
                       "current configuration can be retried.") in shown
    assert Labelling.objects.get(pk=failed.pk).status == ChatJob.Status.DONE
    assert Labelling.objects.get(pk=metrics.failed.pk).status == ChatJob.Status.FAILED


def test_judge_all_queues_every_report_with_a_reference(metrics: Metrics, fake_model) -> None:
    judge = Judge.objects.create(trial=metrics.world.trial, name="Live judge",
                                 base_url=fake_model.url, model_name="judge-7b",
                                 max_attempts=1, retry_backoff_s=0.0, timeout_s=5)
    fake_model.default = Reply(content=JUDGE_REPLY)
    client = metrics.world.client("coordinator")
    url = reverse("admin:metrics_judge_judge_all", args=[judge.pk])
    response = client.post(url, follow=True)
    assert ("success", "Live judge: 3 new report(s) queued for judging (3 sent to the worker); "
                       "0 already judged (or queued) by its current configuration.") in (
        messages_of(response))
    rows = Judgement.objects.filter(judge=judge)
    assert set(rows.values_list("status", flat=True)) == {ChatJob.Status.DONE}
    listing = page(client.get(reverse("admin:metrics_judgement_changelist")))
    assert "False finding 1 significant, 0 insignificant" in listing


def test_a_rows_error_is_truncated_in_the_list_and_whole_on_its_page(metrics: Metrics) -> None:
    error = "HTTP 400 from the model server: " + "x" * 200 + " END-OF-ERROR"
    Labelling.objects.filter(pk=metrics.failed.pk).update(error=error,
                                                          raw_response='{"Edema": 2}')
    client = metrics.world.client("coordinator")
    listing = page(client.get(reverse("admin:metrics_labelling_changelist")))
    detail = page(client.get(reverse("admin:metrics_labelling_change",
                                     args=[metrics.failed.pk])))
    assert "HTTP 400 from the model server" in listing and "END-OF-ERROR" not in listing
    assert "END-OF-ERROR" in detail and "Unlabelled text." in detail
    assert "&quot;Edema&quot;: 2" in detail  # the reply, indented


def test_a_locked_trial_keeps_its_set_up_but_its_analysis_goes_on(metrics: Metrics) -> None:
    """After the lock (the unblinding) the texts no longer change: labelling them, importing
    gold labels and computing metrics is the analysis, so it goes on; the tools' set-up and
    the label sets stay as they were."""
    Trial.objects.filter(pk=metrics.world.trial.pk).update(status=Trial.Status.LOCKED)
    client = metrics.world.client("coordinator")
    edit = reverse("admin:metrics_labeller_change", args=[metrics.llm.pk])
    assert client.post(edit, labeller_form(metrics.llm, timeout_s=9)).status_code == DENIED
    deleted = client.post(reverse("admin:metrics_labelset_delete", args=[metrics.gold.pk]),
                          {"post": "yes"})
    assert deleted.status_code == DENIED
    labelled = client.post(reverse("admin:metrics_labeller_label_all",
                                   args=[metrics.rules.pk]), follow=True)
    assert any(level == "success" for level, _ in messages_of(labelled))
    imported = client.post(reverse("admin:metrics_labelset_import"), {
        "trial": metrics.world.trial.pk, "name": "Late", "csv_file": upload(GOLD)},
        follow=True)
    assert imported.status_code == 200
    assert LabelSet.objects.filter(name="Late").exists()
    assert LabelSet.objects.count() == 2 and MetricsRun.objects.count() == 1


# --- label sets and imports -------------------------------------------------------------------

def test_the_import_page_imports_a_good_file(world: World) -> None:
    retrospective_campaign(world)
    client = world.client("coordinator")
    response = client.post(reverse("admin:metrics_labelset_import"), {
        "trial": world.trial.pk, "name": "Two radiologists", "description": "Consensus",
        "gold": "on", "csv_file": upload(GOLD)}, follow=True)
    label_set = LabelSet.objects.get(trial=world.trial)
    assert (label_set.name, label_set.gold, label_set.created_by) == (
        "Two radiologists", True, world.users["coordinator"])
    assert ("success", "Trial A: label set “Two radiologists” imported from labels.csv as the "
                       "trial's gold standard (3 case(s)).") in messages_of(response)
    assert response.redirect_chain[-1][0] == reverse("admin:metrics_labelset_change",
                                                     args=[label_set.pk])
    html = page(response)
    assert "<td>A-0002</td><td>Cardiomegaly</td>" in html
    assert "<td>A-0003</td><td>No Finding</td>" in html


def test_a_bad_file_lists_every_problem_and_imports_nothing(world: World) -> None:
    retrospective_campaign(world)
    bad = "\n".join([LABEL_HEADER, label_row("A-0001"), label_row("Z-9"),
                     label_row("A-0002").replace(",0,", ",2,", 1), label_row("A-0001")]) + "\n"
    response = world.client("coordinator").post(reverse("admin:metrics_labelset_import"), {
        "trial": world.trial.pk, "name": "Bad", "csv_file": upload(bad)})
    assert response.status_code == 200
    html = page(response)
    assert "Nothing imported:<ul>" in html
    for problem in ("line 3: no case &#x27;Z-9&#x27; in this trial",
                    "line 4: No Finding is &#x27;2&#x27;, not 0 or 1",
                    "line 5: case A-0001 is earlier in this file"):
        assert f"<li>{problem}</li>" in html, problem
    assert not LabelSet.objects.exists()
    assert not AuditEvent.objects.filter(action="label_set.imported").exists()


def test_label_sets_are_never_added_by_hand_nor_changed(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    assert client.get(reverse("admin:metrics_labelset_add")).status_code == DENIED
    url = reverse("admin:metrics_labelset_change", args=[metrics.gold.pk])
    client.post(url, {"name": "Renamed", "gold": ""})
    assert LabelSet.objects.get(pk=metrics.gold.pk).name == "Gold labels"
    listing = page(client.get(reverse("admin:metrics_labelset_changelist")))
    for link in ("import", "from_ticks", "import_probabilities"):
        assert reverse(f"admin:metrics_labelset_{link}") in listing


def test_a_label_set_is_deleted_while_the_trial_is_open_and_audited(metrics: Metrics) -> None:
    url = reverse("admin:metrics_labelset_delete", args=[metrics.gold.pk])
    assert metrics.world.client("coordinator").post(url, {"post": "yes"}).status_code == 302
    assert not LabelSet.objects.exists()
    assert AuditEvent.objects.filter(action="labelset.deleted").exists()


def test_probabilities_import_and_labels_from_ticks(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    data = "case_id,source,Edema,Pleural Effusion\nA-0001,modelA,0.2,0.9\nA-0002,modelA,,0.1\n"
    response = client.post(reverse("admin:metrics_labelset_import_probabilities"), {
        "trial": metrics.world.trial.pk, "csv_file": upload(data, "probs.csv")}, follow=True)
    assert ("success", "Trial A: 2 row(s) of probabilities imported from probs.csv.") in (
        messages_of(response))
    assert Probabilities.objects.filter(trial=metrics.world.trial).count() == 2
    ticks = client.post(reverse("admin:metrics_labelset_from_ticks"), {
        "trial": metrics.world.trial.pk, "name": "Readers' ticks"})
    assert ticks.status_code == 200  # no submitted reading: refused, said why
    assert "no submitted readings to take ticked findings from" in page(ticks)
    assert not LabelSet.objects.filter(name="Readers' ticks").exists()


# --- metric runs ------------------------------------------------------------------------------

def test_compute_now_stores_a_run_and_says_how_long_it_took(world: World) -> None:
    retrospective_campaign(world)
    client = world.client("coordinator")
    form = page(client.get(reverse("admin:metrics_metricsrun_compute")))
    assert "The trial&#x27;s rule-based labeller (made if missing)" in form
    response = client.post(reverse("admin:metrics_metricsrun_compute"), {
        "trial": world.trial.pk, "seed": "42", "resamples": "100"}, follow=True)
    run = MetricsRun.objects.get(trial=world.trial)
    assert (run.seed, run.resamples, run.created_by) == (42, 100, world.users["coordinator"])
    assert response.redirect_chain[-1][0] == reverse("admin:metrics_metricsrun_change",
                                                     args=[run.pk])
    assert ("success", f"Trial A: metrics computed in {run.seconds:.1f} s with Rule-based "
                       "labeller (seed 42, 100 resamples).") in messages_of(response)
    html = page(response)
    assert "Retro" in html and "BLEU-4" in html  # the summary table
    assert "not computed: the trial has no gold-standard label set" in html
    assert Labelling.objects.filter(trial=world.trial).count() == N_TEXTS  # labelled first


def test_compute_refuses_another_trials_labeller(metrics: Metrics) -> None:
    other = Labeller.objects.create(trial=metrics.world.other, name="B's",
                                    kind=Labeller.Kind.RULES)
    client = metrics.world.client("superuser")
    response = client.post(reverse("admin:metrics_metricsrun_compute"), {
        "trial": metrics.world.trial.pk, "labeller": other.pk, "resamples": "100"})
    assert response.status_code == 200
    assert "B&#x27;s is a labeller of Trial B, not of Trial A." in page(response)
    assert MetricsRun.objects.count() == 1


def test_the_runs_zip_holds_its_tables_as_csv(metrics: Metrics) -> None:
    url = reverse("admin:metrics_metricsrun_download", args=[metrics.run.pk])
    response = metrics.world.client("coordinator").get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="trial-a-metrics-{metrics.run.pk}.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    stems = set(exports.tables(metrics.run.results))
    assert set(archive.namelist()) == {f"{stem}.csv" for stem in stems} | {
        "report_metrics.json"}
    summary = archive.read("report_metrics.csv").decode()
    assert summary.startswith("comparison,") and "modelA" in summary
    kappa = archive.read("kappa.csv").decode()
    assert "Pleural Effusion" in kappa  # against the gold labels
    assert AuditEvent.objects.filter(action="metricsrun.downloaded").count() == 1
    page_html = page(metrics.world.client("coordinator").get(
        reverse("admin:metrics_metricsrun_change", args=[metrics.run.pk])))
    assert escape(url) in page_html and "Gold labels" in page_html


def test_runs_are_never_added_changed_or_deleted_by_hand(metrics: Metrics) -> None:
    client = metrics.world.client("superuser")
    assert client.get(reverse("admin:metrics_metricsrun_add")).status_code == DENIED
    delete = reverse("admin:metrics_metricsrun_delete", args=[metrics.run.pk])
    assert client.post(delete, {"post": "yes"}).status_code == DENIED
    assert MetricsRun.objects.filter(pk=metrics.run.pk).exists()


# --- the trial's page -------------------------------------------------------------------------

def test_the_trial_page_shows_the_report_metrics_panel(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    html = page(client.get(reverse("admin:trial_trial_change", args=[metrics.world.trial.pk])))
    assert "Report metrics" in html and 'class="metrics-panel"' in html
    assert escape(reverse("admin:metrics_labeller_change", args=[metrics.rules.pk])) in html
    assert "Hosted labeller (labeller-7b)</a>: " in html
    assert "Rule-based labeller (rule-based)</a>: " in html
    assert escape(reverse("admin:metrics_labelset_change", args=[metrics.gold.pk])) in html
    assert "Gold labels" in html
    assert escape(reverse("admin:metrics_metricsrun_change", args=[metrics.run.pk])) in html
    assert escape(reverse("admin:metrics_metricsrun_download", args=[metrics.run.pk])) in html
    failed = escape(reverse("admin:metrics_labelling_changelist") + "?" + (
        f"trial__id__exact={metrics.world.trial.pk}&fingerprint={metrics.llm.fingerprint}"
        "&status__exact=failed"))
    assert f'<a href="{failed}">1</a> failed' in html


def test_the_panel_of_a_trial_without_metrics_says_none(world: World) -> None:
    html = page(world.client("coordinator").get(reverse("admin:trial_trial_change",
                                                        args=[world.trial.pk])))
    assert "None yet: <a href=" in html
    assert "none (<a href=" in html and "import labels</a>)" in html
    assert "compute metrics now</a>)" in html


def test_an_upload_over_the_limit_is_refused_before_it_is_read(world: World, monkeypatch
                                                               ) -> None:
    from metrics import admin as metrics_admin

    monkeypatch.setattr(metrics_admin, "MAX_BYTES", 10)
    client = world.client("coordinator")
    response = client.post(reverse("admin:metrics_labelset_import"), {
        "trial": world.trial.pk, "name": "Big", "csv_file": upload(GOLD)})
    assert "The file is larger than" in page(response)
    assert not LabelSet.objects.exists()


def test_looking_at_a_run_is_recorded_as_the_analysis_is(metrics: Metrics) -> None:
    client = metrics.world.client("coordinator")
    run = MetricsRun.objects.get()
    assert client.get(reverse("admin:metrics_metricsrun_change", args=[run.pk])).status_code == 200
    event = AuditEvent.objects.filter(action="analysis.viewed").latest("pk")
    assert event.after == {"what": f"metrics run {run.pk}"}
