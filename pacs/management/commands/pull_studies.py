"""``manage.py pull_studies --trial SLUG --site CODE [--node NAME] (--accession FILE |
--date-range FROM TO) [--by USERNAME]``: pull studies from a site's PACS into the trial.

FILE is the coordinator's worklist: one accession number per line, or a CSV with a column
``accession_number`` (or ``accession``). Each is queried, retrieved and imported (see
``pacs.pull``); the report, one line per accession number with what happened and why, goes
to stdout for the coordinator (the numbers themselves are stored nowhere), the progress bar
to stderr. Running the same list again skips what is in and retries what failed. Exits
non-zero if any accession number failed (the PACS unreachable, a retrieval that broke).
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from pacs.models import PullItem, PullRun, RemoteNode
from pacs.pull import pull, pull_dates
from trial.management.base import ServiceCommand, find_trial, find_user
from trial.management.progress import draw
from trial.models import Site

COLUMNS = ("accession_number", "accession", "accessionnumber")


def read_accessions(path: Path) -> list[str]:
    """The file's accession numbers, one entry per line of the file (a header or blank line
    gives an empty entry, ignored), so an item's line is the file's line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    lines = text.splitlines()
    if not any("," in line or ";" in line or "\t" in line for line in lines[:5]):
        return [line.strip() for line in lines]
    rows = list(csv.reader(io.StringIO(text), csv.Sniffer().sniff(text[:4096], ",;\t")))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    column = next((header.index(c) for c in COLUMNS if c in header), None)
    if column is None:
        raise CommandError(f"{path}: no column named accession_number in its first line")
    return [""] + [row[column].strip() if len(row) > column else "" for row in rows[1:]]


def day(value: str) -> str:
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.datetime.strptime(value, pattern).strftime("%Y%m%d")
        except ValueError:
            continue
    raise CommandError(f"not a date: {value!r} (YYYY-MM-DD)")


class Command(ServiceCommand):
    help = ("Query a site's PACS for a list of accession numbers (or a study date range), "
            "retrieve and import the studies, and report what happened to each.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug")
        parser.add_argument("--site", required=True, help="Site code")
        parser.add_argument("--node", help="The site's PACS node name (if it has several)")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--accession", type=Path, metavar="FILE",
                           help="One accession number per line, or a CSV with a column "
                                "accession_number")
        which.add_argument("--date-range", nargs=2, metavar=("FROM", "TO"),
                           help="Study dates, YYYY-MM-DD, both included")
        parser.add_argument("--by", help="Username recorded as having asked (optional)")

    def handle(self, *args, **options) -> None:
        trial = find_trial(options["trial"])
        site = Site.objects.filter(trial=trial, code=options["site"]).first()
        if site is None:
            raise CommandError(f"trial {trial.slug!r} has no site {options['site']!r}")
        node = self.node(site, options["node"])
        by = find_user(options["by"])
        bar = (lambda done, total: draw(self.stderr, done, total)) \
            if options["verbosity"] > 0 else None
        if options["accession"]:
            accessions = read_accessions(options["accession"])
            run = pull(site, node, accessions, by=by, progress=bar,
                       request_label=options["accession"].name)
        else:
            first, last = (day(v) for v in options["date_range"])
            run = pull_dates(site, node, first, last, by=by, progress=bar)
        if bar:
            self.stderr.write("")
        self.report(run)

    @staticmethod
    def node(site: Site, name: str | None) -> RemoteNode:
        nodes = RemoteNode.objects.filter(site=site, retrieve=True)
        if name:
            nodes = nodes.filter(name=name)
        found = list(nodes)
        if len(found) == 1:
            return found[0]
        if not found:
            raise CommandError(f"site {site.code} has no PACS node to retrieve from"
                               + (f" named {name!r}" if name else ""))
        names = ", ".join(n.name for n in found)
        raise CommandError(f"site {site.code} has several PACS nodes ({names}): say which "
                           "with --node")

    def report(self, run: PullRun) -> None:
        labels = getattr(run, "accessions", {})
        for item in run.items.select_related("case"):
            parts = [f"line {item.line}", labels.get(item.line, "?"), item.status]
            if item.case:
                parts.append(f"case {item.case.case_id}")
            if item.instances:
                parts.append(f"{item.instances} instance(s)")
            if item.reason:
                parts.append(item.reason)
            self.stdout.write("  ".join(parts))
        counts = {s: run.items.filter(status=s).count() for s in PullItem.Status.values}
        self.stdout.write(
            f"Pull run #{run.pk} from {run.node.name}: "
            + ", ".join(f"{counts[s]} {label.lower()}" for s, label in PullItem.Status.choices
                        if s != PullItem.Status.PENDING)
            + (f" (import #{run.job.pk})" if getattr(run, "job", None) else ""))
        if run.status == PullRun.Status.FAILED:
            raise CommandError(run.error or "the pull failed")
        if counts[PullItem.Status.FAILED]:
            raise CommandError(f"{counts[PullItem.Status.FAILED]} accession number(s) failed: "
                               "run the same command again to retry them")
