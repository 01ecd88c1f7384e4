"""Benchmark of the automated report metrics: labelling and every metric of a large
retrospective trial, and the overhead of the LLM labeller over a bare model call.

    .venv/bin/python benchmarks/metrics.py [--cases 10000] [--texts 50] [--delay 0.2]
                                           [--poll 0.001] [--quick] [--only scale|llm]

Starts its own PostgreSQL and Redis (``tests/support/servers.py``) and a fake OpenAI-compatible
server (``tests/support/fake_openai.py``), migrates a fresh database, and reuses the helpers of
``benchmarks/drafts.py`` (Django set-up, the Celery worker processes). Report texts come from
the generator of ``tests/support/metrics_world.py`` (a truth drawn from its prevalences, each
report written from it with its sentences), with a view line and, for 70% of the reports, a
dated comparison line, so that nearly every text is distinct (the libraries' work is not
saved by repeats; the distinct counts are printed). No gold-standard labels, no probabilities:
kappa, ROC and the labeller validation are not timed.

(a) scale, in this process, on one retrospective campaign of ``--cases`` cases with the
    published report and 5 model sources (``modelA``..``modelE``, more errors each):
    - import: ``rating.report_import.import_reports`` of one CSV built in memory (all
      reports), seconds and ms per report row;
    - labelling: the texts the metrics compare (``metrics.sources.comparisons``, timed on its
      own) labelled by ``jobs.label(jobs.rules_labeller(trial), texts)``: seconds and ms per
      distinct text, of which the rules themselves (``jobs._label_by_rules``);
    - metrics: ``compute.run(trial, labeller, seed=1, resamples=1000, permutations=1000)``,
      seconds and ms per source report (cases x 5), split by timing the functions it calls
      (wrapped in this process, same run): text metrics (``metrics.text.text_stats`` on the
      same pairs), finding and bootstrap metrics (the rest of each comparison: labels to counts,
      the sources' bootstrap CIs, the 10 paired comparisons' permutation tests and paired
      bootstrap CIs), and the rest (gathering texts, reading labels, storing the run); each
      share is of compute.run's seconds. A sanity line shows each source's F1-14 micro (it
      falls as the source's error rate rises), and the run stops if a text was not labelled;
    - peak memory of this process (``ru_maxrss``) after each step.
(b) LLM labeller overhead, an LLM labeller pointing at the fake server, which answers after
    ``--delay`` seconds with a valid JSON label reply (the 14 findings):
    - baseline: a direct httpx call (kept-alive client) with exactly the body the labeller
      sends, median wall time per call;
    - platform: one ``celery -A config worker`` process; each text labelled alone, timed from
      ``metrics.tasks.send(row)`` until its row is done in the database; median, platform /
      baseline (goal <= 1.05 at 200 ms, as for drafts) and the overhead in ms, and where it
      goes (from the row's started_at, finished_at and latency_ms). This process checks the
      row every ``--poll`` seconds (1 ms, as drafts.py); on 2 CPUs that polling competes with
      the worker and adds a few ms (5 ms polling: about 5-10 ms less overhead, measured);
    - ``metrics.run.run_job`` called in this process (no Celery) on other texts: its median
      time besides the model call, of which its database queries and Redis commands (the
      concurrency slot), timed and counted here.
The worker is stopped before (a) runs. The header gives the load average before, between (b)
and (a), and after: other work on the machine skews every number.

``--quick`` is a smoke run: 500 cases, 20 texts, 20 baseline calls.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before benchmarks/: "metrics" is the app, not this script

import numpy as np  # noqa: E402

from benchmarks.drafts import Workers, bench_env, setup_django  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, Reply, fake_openai_server  # noqa: E402
from tests.support.servers import postgres_server, redis_server  # noqa: E402

GOAL = 1.05  # platform / baseline, at a model answering in GOAL_DELAY seconds
GOAL_DELAY = 0.2
QUICK = {"cases": 500, "texts": 20, "baseline_calls": 20}
# Model sources and how often each gets a finding wrong (missed or added), per finding.
MODELS = {"modelA": 0.03, "modelB": 0.06, "modelC": 0.10, "modelD": 0.15, "modelE": 0.20}
VIEWS = ("PA and lateral views of the chest.", "Single frontal view of the chest.",
         "AP portable chest radiograph.", "Frontal and lateral chest radiographs.")
FIRST_DAY = date(2015, 1, 1)
RESAMPLES = 1000
PERMUTATIONS = 1000
# Where a label's time goes, from timestamps: sent (here), started_at, finished_at (worker).
PARTS = {
    "to worker": "send, Celery delivery to the pool process (to the claim's start)",
    "model call": "the HTTP call, timed by the worker (latency_ms)",
    "worker, besides the call": "claim, slot, lease update, reply validation, store",
    "stored to seen": "the store's update and commit, this poll",
}
HIGH_CONCURRENCY = 64
WARMUP_TEXTS = 5
JOB_TIMEOUT = 120.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000,
                        help="Cases of the retrospective campaign (10000); 6 reports each.")
    parser.add_argument("--texts", type=int, default=50,
                        help="Texts labelled one at a time by the LLM labeller (50).")
    parser.add_argument("--delay", type=float, default=0.2,
                        help="Seconds the fake model takes to answer (0.2).")
    parser.add_argument("--baseline-calls", type=int, default=50,
                        help="Direct calls for the baseline (50).")
    parser.add_argument("--poll", type=float, default=0.001,
                        help="Seconds between this process's checks of a row (0.001, as "
                             "drafts.py).")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork",
                        help="Celery pool of the worker (prefork, as in production).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the report generator (7).")
    parser.add_argument("--only", choices=["scale", "llm"],
                        help="Run only (a) scale or (b) the LLM labeller overhead.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: 500 cases, 20 texts, 20 baseline calls "
                             "(unless given).")
    args = parser.parse_args()
    if args.quick:
        given = set(sys.argv[1:])
        for name, value in QUICK.items():
            if f"--{name.replace('_', '-')}" not in given:
                setattr(args, name, value)
    return args


# --- small tools ---------------------------------------------------------------------------

def peak_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


class Timers:
    """Seconds spent in functions wrapped for one block (``wrap``), summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)  # also "inner<outer": nested
        self.calls: dict[str, int] = defaultdict(int)
        self.active: list[str] = []

    @contextlib.contextmanager
    def wrap(self, owner: Any, name: str, label: str) -> Iterator[None]:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            outer = list(self.active)
            self.active.append(label)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                self.active.pop()
                self.seconds[label] += seconds
                self.calls[label] += 1
                for name in outer:
                    self.seconds[f"{label}<{name}"] += seconds

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# --- report texts --------------------------------------------------------------------------

def written(found: set[str], rng: np.random.Generator) -> tuple[str, str]:
    """(findings, impression) mentioning ``found``: metrics_world's sentences after a view
    line and, mostly, a dated comparison line (so texts rarely repeat)."""
    from tests.support.metrics_world import write  # after Django's set-up, as its imports

    findings, impression = write(found, rng)
    lead = VIEWS[int(rng.integers(len(VIEWS)))]
    if rng.random() < 0.7:
        day = FIRST_DAY + timedelta(days=int(rng.integers(0, 3650)))
        lead += f" Compared with the radiograph of {day:%d %B %Y}."
    return f"{lead} {findings}", impression


def case_reports(rng: np.random.Generator) -> dict[str, tuple[str, str]]:
    """One case's published report (from its truth) and each model's (with errors)."""
    from tests.support.metrics_world import PREVALENCE

    found = {f for f, p in PREVALENCE.items() if rng.random() < p}
    reports = {"published": written(found, rng)}
    for source, flip in MODELS.items():
        said = {f for f in PREVALENCE if (f in found) != (rng.random() < flip)}
        reports[source] = written(said, rng)
    return reports


def reports_csv(case_ids: list[str], seed: int) -> str:
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["case_id", "source", "findings", "impression"])
    for case_id in case_ids:
        for source, (findings, impression) in case_reports(rng).items():
            writer.writerow([case_id, source, findings, impression])
    return out.getvalue()


def loose_texts(count: int, seed: int) -> list[str]:
    """Model report texts (as the metrics read them) for the LLM labeller, all distinct."""
    from metrics.sources import report_text

    rng = np.random.default_rng(seed)
    texts: dict[str, None] = {}
    while len(texts) < count:
        texts[report_text(*case_reports(rng)["modelB"])] = None
    return list(texts)


# --- (a) scale -----------------------------------------------------------------------------

def import_all(campaign: Any, case_ids: list[str], seed: int, out: dict[str, Any]) -> None:
    from rating import build, report_import

    data, out["csv_s"] = timed(lambda: reports_csv(case_ids, seed))
    out["csv_mib"] = len(data.encode()) / 2**20
    print(f"(a) import_reports: {len(case_ids) * (1 + len(MODELS))} reports "
          f"({out['csv_mib']:.1f} MiB CSV)...", flush=True)
    t = Timers()
    with t.wrap(report_import, "make_report", "make_report"), \
            t.wrap(build, "blind_text", "blind_text"):
        out["rows"], out["import_s"] = timed(lambda: report_import.import_reports(campaign,
                                                                                  data))
    out["make_report_s"], out["blind_s"] = t.seconds["make_report"], t.seconds["blind_text"]


def label_all(trial: Any, labeller: Any, out: dict[str, Any]) -> None:
    from metrics import jobs, sources, text

    comparisons, out["gather_s"] = timed(lambda: sources.comparisons(trial))
    texts = [t for c in comparisons for t in c.texts()]
    out["texts"], out["distinct"] = len(texts), len(jobs.distinct(texts))
    out["words"] = statistics.mean(len(text.tokenize(t)) for t in texts)
    out["pairs"] = sum(len(s) for c in comparisons for s in c.sources.values())
    out["distinct_pairs"] = len({(h, c.references[k]) for c in comparisons
                                 for s in c.sources.values() for k, h in s.items()})
    label_timers = Timers()
    with label_timers.wrap(jobs, "_label_by_rules", "rules"):
        new, out["label_s"] = timed(lambda: jobs.label(labeller, texts))
    out["labelled"], out["rules_s"] = len(new), label_timers.seconds["rules"]


def scale(cases: int, seed: int) -> dict[str, Any]:
    from metrics import compute, jobs, resample, sources, text
    from rating import instruments as inst
    from rating.models import Campaign
    from trial.models import Case, Site, Trial

    out: dict[str, Any] = {}
    trial = Trial.objects.create(name="Metrics benchmark", slug="metrics-bench",
                                 registry_id="BENCH-M")
    site = Site.objects.create(trial=trial, code="M1", name="Bench hospital")
    case_ids = [f"R{n:05d}" for n in range(1, cases + 1)]
    _, out["cases_s"] = timed(lambda: Case.objects.bulk_create(
        [Case(trial=trial, site=site, case_id=c, status=Case.Status.ENROLLED)
         for c in case_ids], batch_size=2000))
    campaign = Campaign.objects.create(trial=trial, name="Retrospective", seed=5,
                                       kind=Campaign.Kind.RETROSPECTIVE,
                                       instruments=[inst.LIKERT])
    import_all(campaign, case_ids, seed, out)
    out["mem_import"] = peak_mib()
    print("(a) labelling with the rule-based labeller...", flush=True)
    labeller = jobs.rules_labeller(trial)
    label_all(trial, labeller, out)
    out["mem_label"] = peak_mib()

    print(f"(a) compute.run: {RESAMPLES} resamples, {PERMUTATIONS} permutations...",
          flush=True)
    t = Timers()
    wrapped = [(compute, "compute", "compute"), (sources, "comparisons", "gather"),
               (compute, "Labels", "labels"), (compute, "_comparison", "comparison"),
               (compute, "_stats", "stats"), (text, "text_stats", "text_stats"),
               (compute, "_source_result", "source_ci"), (compute, "_paired", "paired"),
               (resample, "paired_permutation", "permutation"),
               (resample, "paired_bootstrap_ci", "paired_ci"),
               (resample, "bootstrap_weights", "weights"),
               (compute.judging, "summarise", "judge")]
    with contextlib.ExitStack() as stack:
        for owner, name, label in wrapped:
            stack.enter_context(t.wrap(owner, name, label))
        stored, out["run_s"] = timed(lambda: compute.run(
            trial, labeller, seed=1, resamples=RESAMPLES, permutations=PERMUTATIONS))
    out["t"], out["calls"] = dict(t.seconds), dict(t.calls)
    [comparison] = stored.results["comparisons"]
    if not comparison["labelled"]:
        sys.exit(f"the finding metrics were not computed: {comparison['labels_reason']}")
    out["f1"] = {s["source"]: s["metrics"]["f1_14_micro"] for s in comparison["sources"]}
    out["results_mib"] = len(json.dumps(stored.results).encode()) / 2**20
    out["paired_rows"] = sum(len(c["paired"]) for c in stored.results["comparisons"])
    out["mem_compute"] = peak_mib()
    return out


# --- (b) the LLM labeller ------------------------------------------------------------------

def label_reply() -> str:
    """A valid label reply: the 14 findings, one of them uncertain."""
    from trial.findings import FINDINGS

    values: dict[str, int | str] = {f: 0 for f in FINDINGS}
    values.update({"Cardiomegaly": 1, "Pleural Effusion": 1, "Edema": "uncertain"})
    return json.dumps(values)


def llm_labeller(trial: Any, fake: FakeOpenAI) -> Any:
    from metrics.models import Labeller

    return Labeller.objects.create(
        trial=trial, kind=Labeller.Kind.LLM, name="Bench LLM labeller", base_url=fake.url,
        model_name="bench-labeller", timeout_s=30, concurrency=HIGH_CONCURRENCY,
        retry_backoff_s=0.5)


def wait_done(pks: list[int], *, poll: float) -> None:
    from metrics.models import ChatJob, Labelling

    deadline = time.monotonic() + JOB_TIMEOUT
    finished = Labelling.objects.filter(pk__in=pks, status__in=[ChatJob.Status.DONE,
                                                                 ChatJob.Status.FAILED])
    while finished.count() < len(pks):
        if time.monotonic() > deadline:
            sys.exit(f"labels not finished within {JOB_TIMEOUT} s")
        time.sleep(poll)
    failed = list(Labelling.objects.filter(pk__in=pks, status=ChatJob.Status.FAILED)
                  .values_list("error", flat=True))
    if failed:
        sys.exit(f"{len(failed)} labels failed, e.g.: {failed[0]}")


def baseline(fake: FakeOpenAI, bodies: list[dict], calls: int) -> list[float]:
    """Wall seconds of direct calls (a kept-alive client, as the workers' pooled one)."""
    import httpx

    times = []
    with httpx.Client(base_url=fake.url + "/", timeout=30, trust_env=False) as client:
        for n in range(calls + 3):
            started = time.perf_counter()
            client.post("chat/completions", json=bodies[n % len(bodies)]).raise_for_status()
            if n >= 3:  # the first calls open the connection
                times.append(time.perf_counter() - started)
    return times


def one_at_a_time(labeller: Any, texts: list[str], *,
                  poll: float) -> tuple[list[float], dict[str, float]]:
    """Seconds from send to a stored label, one text in flight, and where the time went."""
    from metrics import jobs, tasks
    from metrics.models import Labelling

    times, sent, seen = [], {}, {}
    for text in texts:
        [row] = jobs.label(labeller, [text])
        sent[row.pk] = time.time()
        started = time.perf_counter()
        tasks.send(row)
        wait_done([row.pk], poll=poll)
        times.append(time.perf_counter() - started)
        seen[row.pk] = time.time()
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    for row in Labelling.objects.filter(pk__in=list(sent)):
        begun, finished = row.started_at.timestamp(), row.finished_at.timestamp()
        call = row.latency_ms / 1000
        parts["to worker"].append(begun - sent[row.pk])
        parts["model call"].append(call)
        parts["worker, besides the call"].append(finished - begun - call)
        parts["stored to seen"].append(seen[row.pk] - finished)
    return times, {name: statistics.median(values) for name, values in parts.items()}


def in_process(labeller: Any, texts: list[str]) -> dict[str, float]:
    """``metrics.run.run_job`` called here (no Celery): medians of its seconds less its model
    call, of its database queries' and Redis commands' seconds and of their counts."""
    import redis
    from django.db import connection

    from metrics import jobs, run
    from metrics.models import ChatJob, Labelling

    db: list[float] = []

    def timed_query(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db.append(time.perf_counter() - started)

    own, db_s, queries, redis_s, commands = [], [], [], [], []
    for n, text in enumerate(texts):
        [row] = jobs.label(labeller, [text])
        db.clear()
        r = Timers()
        started = time.perf_counter()
        with connection.execute_wrapper(timed_query), \
                r.wrap(redis.Redis, "execute_command", "redis"):
            outcome = run.run_job("label", row.pk)
        seconds = time.perf_counter() - started
        if outcome.status != ChatJob.Status.DONE:
            sys.exit(f"run_job in-process: {outcome}")
        if n >= 2:  # the first calls open the connection
            own.append(seconds - Labelling.objects.get(pk=row.pk).latency_ms / 1000)
            db_s.append(sum(db))
            queries.append(len(db))
            redis_s.append(r.seconds["redis"])
            commands.append(r.calls["redis"])
    return {"own": statistics.median(own), "db": statistics.median(db_s),
            "queries": statistics.median(queries), "redis": statistics.median(redis_s),
            "commands": statistics.median(commands)}


def parse_cost(reply: str, runs: int = 300) -> float:
    """Median seconds of ``prompts.parse_labels`` on the reply (here, as the worker does)."""
    from metrics import prompts

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        prompts.parse_labels(reply, uncertain="positive")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def llm(args: argparse.Namespace, stack: contextlib.ExitStack, env: dict[str, str],
        tmp: Path) -> dict[str, Any]:
    from drafting.backends import text_request
    from metrics import jobs, prompts, tasks
    from trial.models import Trial

    fake = stack.enter_context(fake_openai_server())
    reply = label_reply()
    fake.default = Reply(delay=args.delay, content=reply)
    trial = Trial.objects.create(name="LLM labeller benchmark", slug="llm-bench",
                                 registry_id="BENCH-L")
    labeller = llm_labeller(trial, fake)
    texts = loose_texts(WARMUP_TEXTS + 2 * args.texts + 2, seed=args.seed + 1)
    warm, here = texts[:WARMUP_TEXTS], texts[WARMUP_TEXTS + args.texts:]
    texts = texts[WARMUP_TEXTS:WARMUP_TEXTS + args.texts]
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as worker_stack:  # the worker stops before (a)
        workers = Workers(worker_stack, env=env, logs=tmp, pool=args.pool)
        print("(b) starting 1 worker...", flush=True)
        workers.start(1)
        log = (tmp / "worker0.log").read_text(errors="replace")
        if "metrics.tasks.run_chat_job" not in log:
            sys.exit(f"the worker has not registered metrics.tasks.run_chat_job:\n{log}")
        rows = jobs.label(labeller, warm)  # imports, connections, the worker's client
        for row in rows:
            tasks.send(row)
        wait_done([row.pk for row in rows], poll=0.02)
        bodies = [text_request(labeller, prompts.label_messages(labeller.prompt, t))
                  for t in texts]
        print(f"(b) baseline: {args.baseline_calls} direct calls...", flush=True)
        out["base"] = statistics.median(baseline(fake, bodies, args.baseline_calls))
        print(f"(b) platform: {len(texts)} texts one at a time, 1 worker...", flush=True)
        out["times"], out["parts"] = one_at_a_time(labeller, texts, poll=args.poll)
        print(f"(b) run_job in this process: {len(here) - 2} texts...", flush=True)
        out["here"] = in_process(labeller, here)
    out["platform"] = statistics.median(out["times"])
    out["parse"] = parse_cost(reply)
    out["body_kib"] = statistics.mean(len(json.dumps(b)) for b in bodies) / 1024
    return out


# --- the report ----------------------------------------------------------------------------

def print_scale(a: dict[str, Any], cases: int) -> None:
    t = a["t"]
    reports, pairs, run = a["rows"], a["pairs"], a["run_s"]
    text_s = t["text_stats"]
    finding_s = t["comparison"] - text_s

    def line(name: str, seconds: float, note: str = "") -> None:
        print(f"    {name:<50}{seconds:8.2f} s  {note}")

    def part(name: str, seconds: float, note: str = "") -> None:
        line(name, seconds, f"{100 * seconds / run:5.1f}%  {note}".rstrip())

    print(f"(a) scale: {cases} cases x ({len(MODELS)} model sources + published) = {reports} "
          f"reports; {a['distinct']} distinct texts of {a['texts']} compared (mean "
          f"{a['words']:.0f} tokens); {a['distinct_pairs']} distinct (report, reference) "
          f"pairs of {pairs}")
    line(f"create {cases} cases (bulk_create)", a["cases_s"])
    line(f"build the CSV in memory ({a['csv_mib']:.1f} MiB)", a["csv_s"])
    line(f"import_reports ({reports} rows)", a["import_s"],
         f"{ms(a['import_s'] / reports).strip()} per report")
    line("  of which make_report (blind + INSERT, per row)", a["make_report_s"])
    line("    of which blind_text", a["blind_s"])
    line("gather texts (sources.comparisons)", a["gather_s"],
         f"{ms(a['gather_s'] / a['texts']).strip()} per text")
    labelled = max(a["labelled"], 1)
    line(f"label, rule-based (jobs.label, {a['labelled']} texts)", a["label_s"],
         f"{ms(a['label_s'] / labelled).strip()} per text")
    line("  of which the rules (_label_by_rules)", a["rules_s"],
         f"{ms(a['rules_s'] / labelled).strip()} per text")
    line(f"compute.run ({RESAMPLES} resamples, {PERMUTATIONS} permutations)", run,
         f"{ms(run / pairs).strip()} per source report ({pairs})")
    part("  text metrics (text_stats, the same pairs)", text_s,
         f"{ms(text_s / pairs).strip()} per pair")
    part("  finding + bootstrap metrics", finding_s)
    part("    labels -> per-case counts (_stats - text)", t["stats"] - text_s)
    part("    sources' bootstrap CIs (_source_result)", t["source_ci"],
         f"{a['calls']['source_ci']} sources")
    part("    paired comparisons (_paired)", t["paired"],
         f"{a['paired_rows']} (pair, metric) rows")
    part("      permutation tests", t["permutation"])
    part("      paired bootstrap CIs", t["paired_ci"])
    weights_outside = t["weights"] - t.get("weights<paired", 0.0)
    part("    bootstrap weights (outside _paired)", weights_outside,
         f"all {a['calls']['weights']} calls: {t['weights']:.2f} s")
    part("    other (top 5, per finding, export rows)", finding_s - (t["stats"] - text_s)
         - t["source_ci"] - t["paired"] - weights_outside)
    part("  the rest", run - t["comparison"])
    part("    gather texts (sources.comparisons)", t["gather"])
    part("    read labels (Labels)", t["labels"])
    part("    judge summary, results dict", t["compute"] - t["gather"] - t["labels"]
         - t["comparison"])
    part("    store (MetricsRun JSON, audit)", run - t["compute"],
         f"results {a['results_mib']:.1f} MiB of JSON")
    print("    sanity, F1-14 micro [95% CI]: " + ", ".join(
        f"{name} {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
        for name, m in a["f1"].items()))
    print(f"    peak memory (maxrss) after import {a['mem_import']:.0f} MiB, labelling "
          f"{a['mem_label']:.0f} MiB, compute.run {a['mem_compute']:.0f} MiB")


def print_llm(b: dict[str, Any], args: argparse.Namespace) -> None:
    base, platform, times = b["base"], b["platform"], b["times"]
    ratio = platform / base
    print(f"(b) LLM labeller, {len(times)} texts one at a time, model answers after "
          f"{args.delay * 1000:.0f} ms, request body {b['body_kib']:.1f} KiB, Celery pool "
          f"{args.pool}, polled every {args.poll * 1000:g} ms")
    print(f"    baseline, direct httpx call        median {ms(base)}")
    print(f"    platform, send -> row done         median {ms(platform)}   "
          f"(p95 {ms(sorted(times)[int(0.95 * (len(times) - 1))]).strip()})")
    print(f"    overhead                           median {ms(platform - base)}")
    for name, seconds in b["parts"].items():
        print(f"      {name + ':':<33}median {ms(seconds)}   {PARTS[name]}")
    print(f"      (reply validation, parse_labels, timed here: {ms(b['parse']).strip()})")
    here = b["here"]
    print(f"    run_job called in this process, no Celery: median {ms(here['own']).strip()} "
          f"besides the call, of which {here['queries']:.0f} database queries "
          f"{ms(here['db']).strip()}, {here['commands']:.0f} Redis commands "
          f"{ms(here['redis']).strip()}")
    if abs(args.delay - GOAL_DELAY) < 1e-9:
        verdict = f"goal <= {GOAL:.2f} at 200 ms: {'met' if ratio <= GOAL else 'NOT met'}"
    else:
        verdict = f"(the goal, <= {GOAL:.2f}, is set at 200 ms: --delay 0.2)"
    print(f"    ratio platform / baseline          {ratio:.3f}   {verdict}")
    overhead = platform - base
    print("    the same overhead on slower models " + ", ".join(
        f"{(d + overhead) / d:.3f} at {d:g} s" for d in (1.0, 2.0, 5.0)) + " (computed)")


def main() -> None:
    args = parse_args()
    command = " ".join([".venv/bin/python", "benchmarks/metrics.py",
                        *map(shlex.quote, sys.argv[1:])])
    load_before = os.getloadavg()
    a = b = None
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxr-bench-m-")))
        print("Starting PostgreSQL and Redis...", flush=True)
        pg = stack.enter_context(postgres_server())
        redis_url = stack.enter_context(redis_server())
        env = bench_env(pg, redis_url, tmp, "cxr_bench_metrics")
        setup_django(env)
        if args.only != "scale":
            b = llm(args, stack, env, tmp)
        load_mid = os.getloadavg()
        if args.only != "llm":
            a = scale(args.cases, args.seed)
    load_after = os.getloadavg()

    print()
    print(f"Metrics benchmark: {command}")
    print(f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, "
          f"{load_mid[0]:.2f} between (b) and (a), {load_after[0]:.2f} after "
          f"(5 min: {load_before[1]:.2f} before, {load_after[1]:.2f} after)")
    if a is not None:
        print()
        print_scale(a, args.cases)
    if b is not None:
        print()
        print_llm(b, args)


if __name__ == "__main__":
    main()
