"""``manage.py check_published [--file PATH] [--out DIR]``: do the published numbers add up?

Reads a summary file (per outcome and arm: n, mean, SD; per outcome: the published difference,
95% CI and P), recomputes each difference with its CI and P under an independent Student
t-test, Welch's test and a paired t-test whose within-case correlation is fitted to the
published CI width, and says which design reproduces the published CI (``analysis.published``
has the formulas and the rule). Without ``--file`` it checks the reference trial's prospective
results, ``analysis/examples/reference_trial_summary.csv``. With ``--out`` it also writes
``published_check.csv`` (one row per outcome and design) and ``published_check.json``.

It reads no database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)

from analysis.datasets import csv_bytes
from analysis.published import (
    CSV_COLUMNS,
    EXAMPLE_FILE,
    RULE,
    SummaryFileError,
    check_published,
    csv_rows,
    format_report,
    read_summary,
    report_dict,
)
from analysis.stats import StatsError

CSV_NAME = "published_check.csv"
JSON_NAME = "published_check.json"

def _fill(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=88)


HELP = "\n\n".join([
    _fill("""Check a published results table against its own summary statistics: recompute
          each difference, its 95% CI and P under an independent Student t-test (pooled SD),
          Welch's test and a paired t-test (within-case correlation r fitted to the published
          CI width), and say which design reproduces the published CI. Also reports the n per
          arm an independent design would need for the published CI width, and whether the
          published difference and the CI's centre agree with the difference of the published
          means."""),
    _fill(f"""The file (--file; default the reference trial's
          analysis/examples/{EXAMPLE_FILE.name}) is CSV, UTF-8, with a header and one row per
          outcome and arm:""") + """
  outcome               outcome name (the two rows of an outcome share it)
  unit                  unit, e.g. "Likert points", "s"
  arm                   arm name, e.g. SCP, AI-assisted
  n                     cases analysed in that arm (whole number >= 2)
  mean, sd              as published; the decimals written are the published rounding
  published_difference  the published difference (may be blank)
  published_ci_low,     the published 95% CI, both ends or neither, with the published
  published_ci_high     decimals (0.160, not 0.16)
  published_p           0.003, <0.001, >0.05 (may be blank)
  direction             "<arm> - <arm>": the difference taken as first minus second arm,
                        e.g. "AI-assisted - SCP" (arm names may contain hyphens)
""" + _fill("""unit, published_* and direction are repeated, identical, on both rows of an
          outcome; other columns are ignored. Problems in the file are all reported, each with
          its line, and nothing is written."""),
    _fill(f"Rule: {RULE}"),
    _fill(f"""--out DIR writes {CSV_NAME} (one row per outcome and design) and {JSON_NAME},
          only once everything has been computed, replacing earlier ones."""),
])


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's column list kept as written."""


class Command(BaseCommand):
    help = HELP
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", default=str(EXAMPLE_FILE),
                            help="summary CSV file (default: the reference trial's, "
                                 f"analysis/examples/{EXAMPLE_FILE.name})")
        parser.add_argument("--out", default=None,
                            help=f"directory for {CSV_NAME} and {JSON_NAME} (created)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            summaries = read_summary(path)
            checks = check_published(summaries)
        except SummaryFileError as exc:
            raise CommandError(f"Cannot check {exc}") from None
        except (StatsError, OSError) as exc:
            raise CommandError(f"Cannot check {path}: {exc}") from None
        self.stdout.write(format_report(checks, source=str(path)), ending="")
        if options["out"]:
            files = {
                CSV_NAME: csv_bytes(pd.DataFrame(csv_rows(checks), columns=list(CSV_COLUMNS))),
                JSON_NAME: (json.dumps(report_dict(checks, source=str(path)), indent=2,
                                       ensure_ascii=False, allow_nan=False) + "\n").encode(),
            }
            written = _write_all(Path(options["out"]), files)
            self.stdout.write("")
            for target in written:
                self.stdout.write(f"Written: {target}")


def _write_all(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write every file or none: each goes to a temporary file in ``folder`` first, and the
    temporary files are renamed over the targets only once all of them are complete."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {folder}: exists and is not a directory")
    blocked = [folder / name for name in files
               if (folder / name).exists() and not (folder / name).is_file()]
    if blocked:  # a rename onto these would fail half-way: refuse before writing anything
        raise CommandError(f"--out {folder}: {', '.join(map(str, blocked))} exist(s) and "
                           "is not a regular file; nothing written")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {folder}: cannot create it ({exc})") from None
    umask = os.umask(0)
    os.umask(umask)
    temporary: dict[Path, Path] = {}
    try:
        for name, content in files.items():
            handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            temporary[folder / name] = Path(tmp)
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> what open() would have made
        for target, tmp in temporary.items():
            os.replace(tmp, target)
    except OSError as exc:
        raise CommandError(f"--out {folder}: cannot write the files ({exc}); none written") \
            from None
    finally:
        for tmp in temporary.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return list(temporary)
