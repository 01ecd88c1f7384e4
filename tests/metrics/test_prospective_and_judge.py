"""The prospective trial's comparisons (drafts and junior reports against the final report, and
the readers' reports against the AI draft) and the LLM error judge against a real HTTP server,
compared with the experts' own error counts."""

from __future__ import annotations

import json

import pytest

from metrics import compute, jobs, judging, sources, tasks
from metrics.models import ChatJob, Judge, Judgement
from rating import instruments as inst
from rating import ratings
from rating.instruments import ERROR_TYPES
from rating.models import RaterItem
from tests.support.campaign_world import AI_TEXT, SCP_TEXT, build_campaign_world
from tests.support.fake_openai import Reply


@pytest.fixture
def world(db, tmp_path):
    return build_campaign_world(tmp_path / "src", cases=2, raters=2,
                                instruments=(inst.ERRORS,), include_ai_alone=True)


def test_prospective_comparisons_use_the_final_report_and_the_draft(world) -> None:
    final, survival = sources.prospective(world.trial)
    assert (final.reference, list(final.sources)) == ("final_report",
                                                      ["ai_draft", "ai_assisted", "scp"])
    assert (survival.reference, list(survival.sources)) == ("ai_draft", ["ai_assisted", "scp"])
    case = next(iter(final.references))
    assert final.references[case].startswith("Reference opacity")
    assert AI_TEXT in final.sources["ai_assisted"][case]
    assert SCP_TEXT in final.sources["scp"][case]
    # signature lines are stripped, as raters see them
    assert "signed" not in final.sources["scp"][case].lower()
    assert survival.references[case] == final.sources["ai_draft"][case]


def test_prospective_metrics_per_arm(world) -> None:
    labeller = jobs.rules_labeller(world.trial)
    jobs.label(labeller, [t for c in sources.comparisons(world.trial) for t in c.texts()])
    found = compute.compute(world.trial, labeller, seed=3, resamples=100, permutations=100)
    by_key = {c["key"]: c for c in found["comparisons"]}
    final = by_key["prospective-final"]
    assert [s["source"] for s in final["sources"]] == ["ai_draft", "ai_assisted", "scp"]
    assert {s["n"] for s in final["sources"]} == {2}
    survival = by_key["prospective-draft"]
    assert [s["name"] for s in survival["sources"]] == ["AI-assisted reader", "SCP reader"]
    pairs = {(p["a"], p["b"]) for p in final["paired"]}
    assert ("ai_assisted", "scp") in pairs


def judge_reply(significant: int = 0) -> str:
    counts = {key: {"significant": 0, "insignificant": 0} for key, _ in ERROR_TYPES}
    counts["omitted_finding"]["significant"] = significant
    return json.dumps(counts)


@pytest.fixture
def judge(world, fake_model) -> Judge:
    return Judge.objects.create(trial=world.trial, name="Judge", base_url=fake_model.url,
                                model_name="judge-model", max_attempts=2,
                                retry_backoff_s=0.0)


def test_judge_counts_every_report_once_and_fails_invalid_replies(world, judge,
                                                                  fake_model) -> None:
    fake_model.default = Reply(content=judge_reply(1))
    rows = judging.queue(world.trial, judge)
    # 2 cases x 3 sources (AI draft, AI-assisted, SCP) against the final report
    assert len(rows) == 6
    tasks.send_all(rows)
    assert Judgement.objects.filter(status=ChatJob.Status.DONE).count() == 6
    assert judging.queue(world.trial, judge) == [] and len(fake_model.requests) == 6
    system, user = fake_model.requests[0].body["messages"]
    assert "omitted_finding" in system["content"]
    assert user["content"].startswith("Reference report:\nReference opacity")
    # a reply without every type is retried, then failed with the schema's reason
    judge.prompt += " Be strict."
    judge.save()
    fake_model.default = Reply(content=json.dumps({"false_finding": {"significant": 1}}))
    again = judging.queue(world.trial, judge)
    tasks.send(again[0])
    failed = Judgement.objects.get(pk=again[0].pk)
    assert failed.status == ChatJob.Status.FAILED
    assert "does not match the schema" in failed.error and failed.counts is None


def test_judge_is_summarised_and_compared_with_the_experts(world, judge, fake_model) -> None:
    # each rater counts one significant omitted finding in every report; the judge agrees on
    # the AI drafts only
    for rater_item in RaterItem.objects.filter(campaign=world.campaign).select_related(
            "item__report"):
        counts = {key: {"significant": 0, "insignificant": 0} for key, _ in ERROR_TYPES}
        counts["omitted_finding"]["significant"] = 1
        ratings.submit(ratings.open_item(rater_item), {inst.ERRORS: counts},
                       by=rater_item.rater.user)
    rows = judging.queue(world.trial, judge)
    for row in rows:
        fake_model.script([Reply(content=judge_reply(1 if "Kestrel" not in row.candidate
                                                     and "Plover" not in row.candidate
                                                     else 0))])
        tasks.send(row)
    (summary,) = judging.summarise(world.trial, seed=1, resamples=100, alpha=0.05)
    by_source = {s["source"]: s for s in summary["sources"]}
    assert by_source["ai_draft"]["significant_per_report"] == 1.0
    assert by_source["scp"]["significant_per_report"] == 0.0
    omitted = {s: next(a for a in by_source[s]["agreement"] if a["type"] == "omitted_finding")
               for s in ("ai_draft", "scp")}
    assert omitted["ai_draft"]["exact_agreement"] == 1.0
    assert omitted["scp"]["exact_agreement"] == 0.0
    assert omitted["scp"]["pairs"] == 4  # 2 cases x 2 raters
