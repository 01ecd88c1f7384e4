"""``manage.py sample_size --delta D --sd S [--alpha --power --dropout --design --points]``.

Prints the number of cases a trial needs for an exact two-sided t-test (noncentral t, see
``analysis.stats.sample_size``) and the power at a few sample sizes, so a coordinator can
check a protocol's sample-size paragraph before the trial starts. The reference trial's
inputs (``--delta 0.207 --sd 0.872 --alpha 0.05 --power 0.9 --dropout 0.3``, paired) give
n = 188.39 -> 189 evaluable cases -> 189 / (1 - 0.3) = 270 to recruit.

It reads no data and touches no database.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.stats import StatsError, power_curve, sample_size

DEFAULT_POINTS = (50, 100, 150, 200, 250, 300)


class Command(BaseCommand):
    help = ("Required number of cases for the exact (noncentral t) two-sided t-test, and "
            "the power curve's key points.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--delta", type=float, required=True,
                            help="difference to detect (e.g. 0.207 Likert points)")
        parser.add_argument("--sd", type=float, required=True,
                            help="SD of the paired differences (paired) or of the outcome "
                                 "in each group (independent)")
        parser.add_argument("--alpha", type=float, default=0.05, help="two-sided (0.05)")
        parser.add_argument("--power", type=float, default=0.9, help="target power (0.9)")
        parser.add_argument("--dropout", type=float, default=0.0,
                            help="expected share of cases lost, 0-1 (0)")
        parser.add_argument("--design", choices=["paired", "independent"], default="paired",
                            help="paired: every case read in both arms (the protocol's "
                                 "design); independent: two separate groups")
        parser.add_argument("--points", type=int, nargs="+", default=None,
                            help="sample sizes at which to print the power (default "
                                 "50 100 150 200 250 300 and the required n)")

    def handle(self, *args: Any, **options: Any) -> None:
        design = options["design"]
        try:
            result = sample_size(options["delta"], options["sd"], alpha=options["alpha"],
                                 power=options["power"], dropout=options["dropout"],
                                 design=design)
            points = sorted({*(options["points"] or DEFAULT_POINTS), result.n_evaluable})
            curve = power_curve(options["delta"], options["sd"], points,
                                alpha=options["alpha"], design=design)
        except StatsError as exc:
            raise CommandError(str(exc)) from None

        unit = result.unit
        meaning = ("a pair is a case read in both arms" if design == "paired"
                   else "each arm needs this many cases")
        test = ("paired t-test (one-sample t on the differences)" if design == "paired"
                else "independent two-sample t-test (Student)")
        write = self.stdout.write
        write(f"Sample size, exact two-sided {test}, noncentral t")
        write(f"  delta {result.delta:g}, SD {result.sd:g} (effect size d = "
              f"{result.effect_size:.4f}), alpha {result.alpha:g}, power {result.power:g}, "
              f"dropout {result.dropout:.0%}")
        write(f"  n = {result.n_exact:.2f} -> {result.n_evaluable} evaluable {unit} "
              f"({meaning}); power {result.achieved_power:.4f}")
        if result.dropout:
            write(f"  {result.n_evaluable} / (1 - {result.dropout:g}) -> "
                  f"{result.n_required} to recruit")
        if design == "paired":
            write(self.style.SUCCESS(f"Required number of cases: {result.n_required}"))
        else:
            write(self.style.SUCCESS(f"Required number of cases: {result.n_required} per "
                                     f"group ({result.n_total} in total)"))
        write("")
        write(f"Power curve before dropout (n = {unit}):")
        write(f"  {'n':>6}  power")
        for n, pw in zip(curve["n"], curve["power"], strict=True):
            mark = "  <- required before dropout" if n == result.n_evaluable else ""
            write(f"  {n:>6}  {pw:.4f}{mark}")
