"""``manage.py report_metrics --trial SLUG --out DIR [--labeller NAME] [--seed N]``.

Computes every automated report metric of the trial (text metrics, finding-label metrics,
kappa, AUC, the labeller validation; bootstrap CIs and paired comparisons), stores the run (the
analysis page and report show the newest) and writes it to DIR: ``report_metrics.json`` (the
whole run) and one CSV per table (``metrics.exports``).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from metrics import compute, exports, jobs, sources
from metrics.levels import trial_alpha
from metrics.models import Labeller
from trial.management.base import ServiceCommand, find_trial, find_user
from trial.management.progress import draw
from trial.spreadsheet import csv_bytes


class Command(ServiceCommand):
    help = ("Compute the trial's automated report metrics (BLEU, ROUGE-L, F1-14/F1-5, kappa, "
            "AUC) with bootstrap CIs, store the run and write its tables to --out.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--out", required=True, help="Folder for the JSON and CSV files.")
        parser.add_argument("--labeller", help="Labeller whose labels are used (default: the "
                                               "rule-based one).")
        parser.add_argument("--seed", type=int, help="Bootstrap seed (default: a random one, "
                                                     "printed and stored).")
        parser.add_argument("--resamples", type=int, default=compute.RESAMPLES)
        parser.add_argument("--permutations", type=int, default=compute.PERMUTATIONS)
        parser.add_argument("--alpha", type=float,
                            help="Two-sided alpha of the CIs (default: the signed analysis "
                                 "plan's, else 0.05).")
        parser.add_argument("--by", help="Username recorded in the audit log.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        name = options.get("labeller")
        if name:
            labeller = Labeller.objects.filter(trial=trial, name=name).first()
            if labeller is None:
                raise CommandError(f"Trial {trial.slug!r} has no labeller {name!r}.")
        else:
            labeller = jobs.rules_labeller(trial)
            # The rule-based labeller needs no worker: label what it has not labelled yet.
            jobs.label(labeller, [t for c in sources.comparisons(trial) for t in c.texts()])
        if options["resamples"] < 100 or options["permutations"] < 100:
            raise CommandError("--resamples and --permutations must be at least 100.")
        alpha = options["alpha"] if options["alpha"] is not None else trial_alpha(trial)
        if not 0 < alpha < 1:
            raise CommandError("--alpha must be between 0 and 1.")
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(2**31)
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Labeller: {labeller.description}. Seed {seed}, "
                          f"{options['resamples']} resamples, alpha {alpha:g}.")
        run = compute.run(trial, labeller, seed=seed, by=find_user(options.get("by")),
                          resamples=options["resamples"], permutations=options["permutations"],
                          alpha=alpha,
                          progress=lambda done, total, what: draw(self.stderr, done, total,
                                                                  what[:40]))
        self.stderr.write("")
        results = run.results
        (out / "report_metrics.json").write_text(json.dumps(results, indent=1))
        for stem, frame in exports.tables(results).items():
            (out / f"{stem}.csv").write_bytes(csv_bytes(frame))
        for comparison in results["comparisons"]:
            self.stdout.write(f"{comparison['title']} (reference: "
                              f"{comparison['reference_name']})")
            if comparison["labels_reason"]:
                self.stdout.write(f"  finding metrics {comparison['labels_reason']}")
            for source in comparison["sources"]:
                shown = ", ".join(_shown(compute.NAMES[key], source["metrics"][key])
                                  for key in ("f1_14_micro", "f1_5_micro", "bleu4", "rouge_l"))
                self.stdout.write(f"  {source['name']} (n={source['n']}): {shown}")
        if results["gold_reason"]:
            self.stdout.write(f"Kappa, AUC and labeller validation {results['gold_reason']}.")
        self.stdout.write(f"Stored as run {run.pk} in {run.seconds:.1f} s; files in {out}.")


def _shown(name: str, value: dict) -> str:
    if value.get("value") is None:
        return f"{name} n/a"
    return (f"{name} {value['value']:.3f} ({value['ci_low']:.3f} to {value['ci_high']:.3f})"
            if value.get("ci_low") is not None else f"{name} {value['value']:.3f}")
