"""Reader randomisation: permuted blocks from a seed or an imported list; atomic allocation.

Concealment: nothing here returns the arm of a free slot. ``allocation_table`` lists allocated
slots only (without block numbers, which would help predict the next arm), and the seed is
revealed only once the trial is locked. The commitment hash, shown from the start, lets anyone
check afterwards that the list was not changed.

A list is never replaced, but it can be extended: ``extend_list`` appends whole blocks for one
stratum (a site added after the list was made, or more readers than slots), generated the same
way from a fresh seed the platform draws, and ``import_extension`` appends a statistician's CSV
extension. Each extension has its own commitment (same formula, over its own slots), is
audited, and leaves every existing slot, and the list's own commitment, as they were.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from . import audit
from .errors import Invalid
from .lifecycle import TrialLocked, check_writable
from .models import (
    AllocationSlot,
    Arm,
    Membership,
    RandomizationExtension,
    RandomizationList,
    Role,
    Trial,
)

MIN_SLOTS_PER_STRATUM = 12
MAX_SLOTS = 10_000
MAX_EXTENSION_BLOCKS = 100
CSV_HEADER = "position,arm[,stratum][,block]"
_MAX_PROBLEMS_SHOWN = 20


class RandomizationError(Invalid):
    """Base class (400); the message says what was got and what was expected."""


class ListAlreadyExists(RandomizationError):
    status = 409


class NoList(RandomizationError):
    status = 409


class InvalidList(RandomizationError):
    """A refused CSV list; ``problems`` holds one message per problem (with line numbers)."""

    problems_heading = "Randomisation list refused:"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, problems=problems or [message])


class ListExhausted(RandomizationError):
    """No free slot in the reader's stratum; ``remedy`` says how to extend the list."""

    status = 409

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(f"{message}. {remedy}" if remedy else message)
        self.problem, self.remedy = message, remedy


class AlreadyAllocated(RandomizationError):
    status = 409


class NotAReader(RandomizationError):
    pass


class PlannedSlot(NamedTuple):
    stratum: str
    position: int
    block: int
    block_size: int
    arm: str


# --- planning (pure: no database) -------------------------------------------------------------


def check_block_sizes(block_sizes: Any, ratio: tuple[int, int]) -> list[int]:
    """The block sizes, refused unless each is a positive multiple of the ratio's sum."""
    unit = sum(ratio)
    if not isinstance(block_sizes, list) or not block_sizes:
        raise RandomizationError(f"block sizes: got {block_sizes!r}, expected a list like [2, 4]")
    bad = [s for s in block_sizes if not isinstance(s, int) or s <= 0 or s % unit]
    if bad:
        raise RandomizationError(
            f"block sizes {bad} are not positive multiples of {unit} "
            f"(ratio {ratio[0]}:{ratio[1]}); expected e.g. [{unit}, {2 * unit}]"
        )
    return list(block_sizes)


def plan_sequence(
    seed: int, *, strata: Mapping[str, int], ratio: tuple[int, int], block_sizes: list[int]
) -> list[PlannedSlot]:
    """Permuted blocks per stratum from ``random.Random(seed)``, strata in sorted order.

    ``strata`` maps each stratum to the minimum number of slots it needs; whole blocks are
    drawn until that many exist, so every block is complete and holds exactly the ratio.
    """
    rng = random.Random(seed)
    planned: list[PlannedSlot] = []
    for stratum in sorted(strata):
        position = block = 0
        while position < strata[stratum]:
            block += 1
            drawn = _draw_block(rng, stratum, position, block, ratio, block_sizes)
            position += len(drawn)
            planned += drawn
    return planned


def plan_blocks(
    seed: int, *, stratum: str, blocks: int, ratio: tuple[int, int], block_sizes: list[int],
    after_position: int = 0, after_block: int = 0,
) -> list[PlannedSlot]:
    """``blocks`` permuted blocks for one stratum from ``random.Random(seed)``, drawn as
    ``plan_sequence`` draws them, numbered on from ``after_position`` and ``after_block`` (an
    extension continues its stratum's positions and blocks)."""
    rng = random.Random(seed)
    planned: list[PlannedSlot] = []
    for number in range(after_block + 1, after_block + blocks + 1):
        planned += _draw_block(rng, stratum, after_position + len(planned), number, ratio,
                               block_sizes)
    return planned


def _draw_block(rng: random.Random, stratum: str, after: int, block: int,
                ratio: tuple[int, int], block_sizes: list[int]) -> list[PlannedSlot]:
    """One block: its size drawn from ``block_sizes``, then the ratio's arms shuffled."""
    unit = sum(ratio)
    size = rng.choice(block_sizes)
    arms = [Arm.AI_ASSISTED.value] * (ratio[0] * size // unit)
    arms += [Arm.SCP.value] * (ratio[1] * size // unit)
    rng.shuffle(arms)
    return [PlannedSlot(stratum, after + i, block, size, arm) for i, arm in enumerate(arms, 1)]


def commitment(seed: int | None, sequence: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 (hex) of the seed and the ordered (stratum, position, arm) sequence."""
    lines = [f"seed={'' if seed is None else seed}"]
    lines += [f"{stratum},{position},{arm}" for stratum, position, arm in sorted(sequence)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def check_commitment(randomization: RandomizationList) -> bool:
    """Does the stored list (without its extensions) still match the commitment published
    when it was made?"""
    rows = randomization.slots.filter(extension=None).values_list("stratum", "position", "arm")
    return commitment(randomization.seed, rows) == randomization.commitment


def check_extension_commitment(extension: RandomizationExtension) -> bool:
    """Do an extension's stored slots still match the commitment published when it was made?"""
    rows = extension.slots.values_list("stratum", "position", "arm")
    return commitment(extension.seed, rows) == extension.commitment


# --- making the list --------------------------------------------------------------------------


def _strata(trial: Trial) -> list[str]:
    if not trial.stratify_by_site:
        return [""]
    codes = sorted(trial.sites.values_list("code", flat=True))
    if not codes:
        raise RandomizationError(
            f"trial {trial.slug!r} is stratified by site but has no sites; add its sites first"
        )
    return codes


def _readers_per_stratum(trial: Trial) -> Counter[str]:
    readers = Membership.objects.filter(trial=trial, role=Role.READER)
    if not trial.stratify_by_site:
        return Counter({"": readers.count()})
    return Counter(readers.exclude(site=None).values_list("site__code", flat=True))


def _lock_trial_without_list(trial: Trial) -> Trial:
    check_writable(trial, "The randomisation list")
    locked = Trial.objects.select_for_update().get(pk=trial.pk)
    existing = RandomizationList.objects.filter(trial=locked).first()
    if existing is not None:
        raise ListAlreadyExists(
            f"trial {trial.slug!r} already has a randomisation list "
            f"({existing.get_method_display().lower()} on {existing.created_at:%Y-%m-%d}); "
            "a trial has exactly one list and it is never replaced; to add slots for a "
            "stratum, extend it (admin: trial page, Extend the list for a stratum; command: "
            f"randomize_readers --trial {trial.slug} --extend STRATUM --blocks N)"
        )
    return locked


def _store(trial: Trial, by: Any, slots: list[PlannedSlot], **fields: Any) -> RandomizationList:
    _check_by(by)
    if not slots:
        raise InvalidList("empty list: got no slots, expected at least one")
    if len(slots) > MAX_SLOTS:
        raise InvalidList(f"too long: got {len(slots)} slots, expected at most {MAX_SLOTS}")
    fields["commitment"] = commitment(fields.get("seed"), [(s[0], s[1], s[4]) for s in slots])
    try:
        with transaction.atomic():
            rlist = RandomizationList.objects.create(trial=trial, created_by=by, **fields)
    except IntegrityError as exc:  # a list made concurrently by another process
        raise ListAlreadyExists(f"trial {trial.slug!r} already has a randomisation list") from exc
    AllocationSlot.objects.bulk_create(
        AllocationSlot(randomization=rlist, **s._asdict()) for s in slots
    )
    per_stratum = Counter(s.stratum for s in slots)
    audit.record(
        action=f"randomization.{rlist.method}", obj=rlist, actor=by, trial=trial,
        after={"method": rlist.method, "slots": len(slots), "strata": dict(per_stratum),
               "block_sizes": rlist.block_sizes, "stratified": rlist.stratified,
               "commitment": rlist.commitment, "source_name": rlist.source_name,
               "source_sha256": rlist.source_sha256},
    )  # never the seed: it stays concealed until the trial is locked
    return rlist


def draw_seed() -> int:
    """A seed from the operating system's cryptographic generator: nobody chooses it, so
    nobody can recompute the list before the trial is locked."""
    return secrets.randbits(63)


def generate_list(
    trial: Trial, *, by, slots_per_stratum: int | None = None,
    seed_source: Callable[[], int] = draw_seed,
) -> RandomizationList:
    """Generate and store the trial's permuted-block list from a seed the platform draws.

    Never from a seed given by the person generating it (``seed_source`` is for tests that
    need a known list, and for the synthetic demo).

    Default length per stratum: the stratum's readers, but at least 12 (MIN_SLOTS_PER_STRATUM),
    rounded up to whole blocks. The margin leaves room for readers who join later (a
    replacement); a stratum that runs out anyway (or a site added later) is extended with
    ``extend_list``, never by replacing the list.
    """
    if slots_per_stratum is not None and (
        not isinstance(slots_per_stratum, int) or not 1 <= slots_per_stratum <= MAX_SLOTS
    ):
        raise RandomizationError(
            f"slots_per_stratum: got {slots_per_stratum!r}, expected 1..{MAX_SLOTS}"
        )
    seed = seed_source()
    if not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise RandomizationError(f"seed: got {seed!r}, expected an integer in 0..2**63-1")
    with transaction.atomic():
        trial = _lock_trial_without_list(trial)  # the design as stored, not an unsaved edit
        ratio = (trial.ratio_ai_assisted, trial.ratio_scp)
        sizes = check_block_sizes(trial.block_sizes, ratio)
        readers = _readers_per_stratum(trial)
        strata = {
            s: slots_per_stratum or max(MIN_SLOTS_PER_STRATUM, readers[s]) for s in _strata(trial)
        }
        slots = plan_sequence(seed, strata=strata, ratio=ratio, block_sizes=sizes)
        return _store(
            trial, by, slots, method=RandomizationList.Method.GENERATED, seed=seed,
            block_sizes=sizes, stratified=trial.stratify_by_site,
        )


# --- importing a statistician's list ----------------------------------------------------------


def _text_lines(rows: IO[str] | Iterable[str | bytes] | str) -> Iterator[str]:
    if isinstance(rows, str | bytes):
        rows = [rows]
    first = True
    for chunk in rows:
        try:
            text = chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
        except UnicodeDecodeError as exc:
            raise InvalidList(f"not UTF-8 text ({exc.reason}); expected a UTF-8 CSV") from exc
        if first:
            text, first = text.removeprefix("\ufeff"), False
        yield from text.splitlines(keepends=True)


def _positive_int(value: str) -> int | None:
    """A whole number in 1..MAX_SLOTS, else None."""
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if 1 <= number <= MAX_SLOTS else None


def _stratum_name(stratum: str) -> str:
    return f"stratum {stratum!r}" if stratum else "the list"


def _parse_rows(trial: Trial, rows: Any, *, stratum_column: bool = True,
                ) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs and the problems found in the header and each row.

    ``stratum_column``: a stratified trial's file must have one (an extension's file need not:
    it is for one stratum, named apart)."""
    reader = csv.reader(_text_lines(rows))
    try:
        return _read_rows(trial, reader, stratum_column)
    except csv.Error as exc:
        raise InvalidList(f"line {reader.line_num}: not readable as CSV ({exc})") from exc


def _read_rows(trial: Trial, reader: Any, stratum_column: bool = True,
               ) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    header = next((r for r in reader if any(c.strip() for c in r)), None)
    if header is None:
        raise InvalidList(f"empty list: got nothing, expected a header {CSV_HEADER} and rows")
    header_line = reader.line_num
    names = [h.strip().lower() for h in header]
    need_stratum = trial.stratify_by_site and stratum_column
    wanted = ["position", "arm"] + (["stratum"] if need_stratum else [])
    problems = [f"line {header_line}: unknown column {n!r}" for n in names
                if n not in {"position", "arm", "stratum", "block"}]
    problems += [f"line {header_line}: column {n!r} appears twice" for n, k in
                 Counter(names).items() if k > 1]
    problems += [f"line {header_line}: missing column {n!r}" for n in wanted if n not in names]
    if problems:
        why = " (the trial is stratified by site)" if need_stratum else ""
        problems.append(f"expected header {CSV_HEADER}{why}, got {','.join(names)!r}")
        raise InvalidList("randomisation list refused: " + "; ".join(problems), problems)
    parsed = [
        (reader.line_num, row) for row in reader if any(c.strip() for c in row)
    ]
    if not parsed:
        raise InvalidList(f"empty list: header on line {header_line} but no slot rows")
    if len(parsed) > MAX_SLOTS:
        raise InvalidList(f"too long: got {len(parsed)} rows, expected at most {MAX_SLOTS}")
    out, problems = [], []
    for line, row in parsed:
        if len(row) != len(names):
            problems.append(f"line {line}: got {len(row)} values, expected {len(names)} "
                            f"({','.join(names)})")
            continue
        out.append((line, {n: v.strip() for n, v in zip(names, row, strict=True)}))
    return out, problems


def _validate(trial: Trial, rows: list[tuple[int, dict[str, str]]],
              expected_count: int | None, *, only_stratum: str | None = None,
              ) -> tuple[list[PlannedSlot], list[str]]:
    """The slots of the rows, and every problem. ``only_stratum``: an extension's file, for
    that stratum only (rows without a stratum column are in it)."""
    sites = sorted(trial.sites.values_list("code", flat=True))
    problems: list[str] = []
    seen: dict[tuple[str, int], int] = {}
    unparsed: set[str] = set()  # strata with an unreadable position: no gap report there
    good: list[tuple[str, int, int, str]] = []
    for line, row in rows:
        position = _positive_int(row["position"])
        stratum = row.get("stratum", "" if only_stratum is None else only_stratum)
        arm, block = row["arm"], row.get("block", "1")
        bad = len(problems)
        if trial.stratify_by_site and stratum not in sites:
            problems.append(f"line {line}: unknown stratum {stratum!r}; expected one of the "
                            f"trial's site codes {', '.join(sites) or '(none)'}")
        elif not trial.stratify_by_site and stratum:
            problems.append(f"line {line}: stratum {stratum!r} given but trial {trial.slug!r} "
                            "is not stratified by site; expected it blank")
        elif only_stratum is not None and stratum != only_stratum:
            problems.append(f"line {line}: stratum {stratum!r}, but this extension is for "
                            f"stratum {only_stratum!r} only; expected {only_stratum!r}")
        if position is None:
            problems.append(f"line {line}: position {row['position']!r} is not a whole number "
                            f"in 1..{MAX_SLOTS}")
            unparsed.add(stratum)
        elif (stratum, position) in seen:
            problems.append(f"line {line}: duplicate position {position} in "
                            f"{_stratum_name(stratum)} (first on line {seen[stratum, position]})")
        else:
            seen[stratum, position] = line
        if arm not in Arm.values:
            problems.append(f"line {line}: unknown arm {arm!r}; expected ai_assisted or scp")
        if _positive_int(block) is None:
            problems.append(f"line {line}: block {block!r} is not a whole number in "
                            f"1..{MAX_SLOTS}")
        if len(problems) == bad:
            good.append((stratum, position, _positive_int(block), arm))
    for stratum in sorted({s for s, _ in seen} - unparsed):
        positions = {p for s, p in seen if s == stratum}
        missing = sorted(set(range(1, max(positions) + 1)) - positions)
        if missing:
            problems.append(f"{_stratum_name(stratum)}: positions must run 1..{max(positions)} "
                            f"without gaps; missing {', '.join(map(str, missing[:10]))}")
    slots: list[PlannedSlot] = []
    for stratum in sorted({g[0] for g in good}):
        items = sorted((g for g in good if g[0] == stratum), key=lambda g: g[1])
        blocks: dict[int, list[int]] = defaultdict(list)
        for _, position, block, _ in items:
            blocks[block].append(position)
        for number, held in sorted(blocks.items()):
            if held[-1] - held[0] + 1 != len(held):
                problems.append(f"{_stratum_name(stratum)}: block {number} holds positions "
                                f"{', '.join(map(str, held))}; expected consecutive positions")
        slots += [PlannedSlot(stratum, p, b, len(blocks[b]), a) for _, p, b, a in items]
    if expected_count is not None and len(rows) != expected_count:
        problems.append(f"wrong count: expected {expected_count} slots, got {len(rows)}")
    return slots, problems


def import_list(trial: Trial, rows: IO[str] | Iterable[str], *, by, source_name: str = "",
                expected_count: int | None = None) -> RandomizationList:
    """Store a statistician's CSV list (header ``position,arm[,stratum][,block]``).

    Everything is checked before anything is stored; a refused list stores nothing and the
    InvalidList message names every problem with its line number. Without a ``block`` column,
    each stratum is stored as one block.
    """
    lines = list(_text_lines(rows))
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    with transaction.atomic():
        trial = _lock_trial_without_list(trial)
        parsed, problems = _parse_rows(trial, lines)
        slots, more = _validate(trial, parsed, expected_count)
        problems += more
        if problems:
            shown = problems[:_MAX_PROBLEMS_SHOWN]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more")
            head = f"randomisation list refused ({len(problems)} problem(s)):"
            raise InvalidList("\n- ".join([head, *shown]), problems)
        sizes = sorted({s.block_size for s in slots}) if parsed and "block" in parsed[0][1] else []
        return _store(
            trial, by, slots, method=RandomizationList.Method.IMPORTED, seed=None,
            block_sizes=sizes, stratified=trial.stratify_by_site, source_name=source_name[:255],
            source_sha256=digest,
        )


# --- extending the list -----------------------------------------------------------------------


def extend_remedy(trial: Trial, stratum: str) -> str:
    """What to do when ``stratum`` has no free slot: how to extend the list, everywhere."""
    body = {"stratum": stratum, "blocks": 1} if stratum else {"blocks": 1}
    option = f"--extend {stratum}" if stratum else "--extend"
    what = f" for stratum {stratum!r}" if stratum else ""
    return (f"Extend the randomisation list{what} (admin: trial page, Extend the list for a "
            f"stratum; API: POST /api/trials/{trial.slug}/randomization/extend/ "
            f"{json.dumps(body)}; command: manage.py randomize_readers --trial {trial.slug} "
            f"{option} --blocks 1).")


def stratum_counts(trial: Trial) -> dict[str, dict[str, int]]:
    """Per stratum of the list (and per site without slots yet): slots in all, and free.

    Counts only, never an arm: what a coordinator needs to decide on an extension."""
    rlist = RandomizationList.objects.filter(trial=trial).first()
    if rlist is None:
        return {}
    counts = {stratum: {"total": 0, "free": 0} for stratum in (
        trial.sites.values_list("code", flat=True) if rlist.stratified else [""])}
    rows = (rlist.slots.order_by().values("stratum")
            .annotate(total=Count("pk"), free=Count("pk", filter=Q(membership=None))))
    for row in rows:
        counts[row["stratum"]] = {"total": row["total"], "free": row["free"]}
    return dict(sorted(counts.items()))


def _check_by(by: Any, what: str = "a list") -> None:
    if not getattr(by, "is_authenticated", False):
        raise RandomizationError(f"{what} needs the user who made it: got by={by!r}")


def _check_blocks(blocks: Any) -> int:
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not (
        1 <= blocks <= MAX_EXTENSION_BLOCKS
    ):
        raise RandomizationError(
            f"blocks: got {blocks!r}, expected a whole number in 1..{MAX_EXTENSION_BLOCKS}")
    return blocks


def _lock_trial_with_list(trial: Trial) -> tuple[Trial, RandomizationList]:
    """The trial, row-locked (as ``allocate`` locks it), and its list: refused when locked or
    when there is no list to extend."""
    check_writable(trial, "The randomisation list")
    locked = Trial.objects.select_for_update().get(pk=trial.pk)
    if locked.status == Trial.Status.LOCKED:
        raise TrialLocked(f"trial {trial.slug!r} is locked; its randomisation list is final")
    rlist = RandomizationList.objects.filter(trial=locked).first()
    if rlist is None:
        raise NoList(f"trial {trial.slug!r} has no randomisation list to extend; generate or "
                     "import one first")
    return locked, rlist


def _check_stratum(trial: Trial, rlist: RandomizationList, stratum: Any) -> str:
    if stratum is None:
        stratum = ""
    if not isinstance(stratum, str):
        raise RandomizationError(f"stratum: got {stratum!r}, expected a site code")
    stratum = stratum.strip()
    if rlist.stratified:
        codes = sorted(trial.sites.values_list("code", flat=True))
        if stratum not in codes:
            raise RandomizationError(
                f"stratum: got {stratum!r}, expected one of the trial's site codes "
                f"{', '.join(codes) or '(none)'} (the list is stratified by site); add the "
                "site first")
    elif stratum:
        raise RandomizationError(f"stratum: got {stratum!r}, but the list of {trial.slug!r} is "
                                 "not stratified by site; expected none")
    return stratum


def _stratum_end(rlist: RandomizationList, stratum: str) -> tuple[int, int]:
    """The last position and block number of ``stratum`` in the list (0, 0 if it has none)."""
    ends = rlist.slots.filter(stratum=stratum).aggregate(position=Max("position"),
                                                         block=Max("block"))
    return ends["position"] or 0, ends["block"] or 0


def _store_extension(trial: Trial, rlist: RandomizationList, by: Any, stratum: str,
                     slots: list[PlannedSlot], **fields: Any) -> RandomizationExtension:
    if not slots:
        raise InvalidList("empty extension: got no slots, expected at least one")
    if len(slots) > MAX_SLOTS:
        raise InvalidList(f"too long: got {len(slots)} slots, expected at most {MAX_SLOTS}")
    number = (rlist.extensions.aggregate(n=Max("number"))["n"] or 0) + 1
    fields["commitment"] = commitment(fields.get("seed"), [(s[0], s[1], s[4]) for s in slots])
    extension = RandomizationExtension.objects.create(
        randomization=rlist, number=number, stratum=stratum, created_by=by,
        blocks=len({s.block for s in slots}), slot_count=len(slots), **fields,
    )
    AllocationSlot.objects.bulk_create(
        AllocationSlot(randomization=rlist, extension=extension, **s._asdict()) for s in slots
    )
    audit.record(
        action="randomization.extended", obj=extension, actor=by, trial=trial,
        after={"extension": number, "stratum": stratum, "method": extension.method,
               "blocks": extension.blocks, "slots": extension.slot_count,
               "positions": [slots[0].position, slots[-1].position],
               "commitment": extension.commitment, "list_commitment": rlist.commitment,
               "source_name": extension.source_name,
               "source_sha256": extension.source_sha256},
    )  # never the seed: it stays concealed until the trial is locked
    return extension


def extend_list(
    trial: Trial, *, stratum: str = "", blocks: int = 1, by,
    seed_source: Callable[[], int] = draw_seed,
) -> RandomizationExtension:
    """Append ``blocks`` permuted blocks to ``stratum`` of the trial's list (a site added after
    the list was made, or more readers than slots), from a fresh seed the platform draws.

    Same ratio and block sizes as the trial's design, positions and block numbers continuing
    the stratum's; the existing slots and the list's commitment are untouched. The extension
    has its own commitment (``commitment(seed, its slots)``), is audited without its seed, and
    its seed is revealed with the list's once the trial is locked. ``seed_source`` is for tests.
    """
    _check_by(by, "an extension")
    blocks = _check_blocks(blocks)
    seed = seed_source()
    if not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise RandomizationError(f"seed: got {seed!r}, expected an integer in 0..2**63-1")
    with transaction.atomic():
        trial, rlist = _lock_trial_with_list(trial)
        stratum = _check_stratum(trial, rlist, stratum)
        ratio = (trial.ratio_ai_assisted, trial.ratio_scp)
        sizes = check_block_sizes(trial.block_sizes, ratio)
        if blocks * max(sizes) > MAX_SLOTS:
            raise RandomizationError(
                f"blocks: {blocks} block(s) of up to {max(sizes)} slots could exceed "
                f"{MAX_SLOTS} slots; expected fewer blocks")
        after_position, after_block = _stratum_end(rlist, stratum)
        slots = plan_blocks(seed, stratum=stratum, blocks=blocks, ratio=ratio, block_sizes=sizes,
                            after_position=after_position, after_block=after_block)
        return _store_extension(
            trial, rlist, by, stratum, slots, method=RandomizationList.Method.GENERATED,
            seed=seed, block_sizes=sizes,
        )


def import_extension(
    trial: Trial, rows: IO[str] | Iterable[str], *, stratum: str = "", by,
    source_name: str = "", expected_count: int | None = None,
) -> RandomizationExtension:
    """Append a statistician's CSV extension to ``stratum`` of the trial's list.

    The file is read like a list (header ``position,arm[,stratum][,block]``; the stratum
    column may be left out, and if given must be ``stratum`` on every row), with its own
    positions 1..n and blocks; they are stored after the stratum's last position and block.
    Everything is checked first and a refused file stores nothing; the file's SHA-256 is
    recorded.
    """
    _check_by(by, "an extension")
    lines = list(_text_lines(rows))
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    with transaction.atomic():
        trial, rlist = _lock_trial_with_list(trial)
        stratum = _check_stratum(trial, rlist, stratum)
        parsed, problems = _parse_rows(trial, lines, stratum_column=False)
        slots, more = _validate(trial, parsed, expected_count, only_stratum=stratum)
        problems += more
        if problems:
            shown = problems[:_MAX_PROBLEMS_SHOWN]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more")
            head = f"randomisation list extension refused ({len(problems)} problem(s)):"
            raise InvalidList("\n- ".join([head, *shown]), problems)
        after_position, after_block = _stratum_end(rlist, stratum)
        slots = [s._replace(position=s.position + after_position, block=s.block + after_block)
                 for s in slots]
        sizes = sorted({s.block_size for s in slots}) if "block" in parsed[0][1] else []
        return _store_extension(
            trial, rlist, by, stratum, slots, method=RandomizationList.Method.IMPORTED,
            seed=None, block_sizes=sizes, source_name=source_name[:255], source_sha256=digest,
        )


# --- allocation -------------------------------------------------------------------------------


def allocate(membership: Membership, *, by) -> AllocationSlot:
    """Give ``membership`` (a reader) the next free slot of its stratum; final, never redone.

    Allocations of one trial are serialised by a row lock on the trial, and the membership is
    locked and re-read, so a double click or two coordinators at once cannot allocate a reader
    twice or take one slot twice (the one-to-one slot -> membership is the database backstop).
    """
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=membership.trial_id)
        reader = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("site", "user")
            .get(pk=membership.pk)
        )
        name = reader.user.get_username()
        if reader.role != Role.READER:
            raise NotAReader(f"{name} is a {reader.get_role_display().lower()} in "
                             f"{trial.slug!r}; expected a reader (only readers are randomised)")
        taken = AllocationSlot.objects.filter(membership=reader).first()
        if taken is not None:
            raise AlreadyAllocated(f"reader {name} is already allocated ({taken}); "
                                   "an allocation is final and never redone")
        if trial.status == Trial.Status.LOCKED:
            raise TrialLocked(f"trial {trial.slug!r} is locked; nothing can be allocated")
        rlist = RandomizationList.objects.filter(trial=trial).first()
        if rlist is None:
            raise NoList(f"trial {trial.slug!r} has no randomisation list; generate or import "
                         "one first")
        stratum = ""
        if rlist.stratified:
            if reader.site is None:
                raise RandomizationError(f"reader {name} has no site, but the list of "
                                         f"{trial.slug!r} is stratified by site; set the site")
            stratum = reader.site.code
        slot = (
            rlist.slots.select_for_update()
            .filter(stratum=stratum, membership__isnull=True)
            .order_by("position")
            .first()
        )
        if slot is None:
            size = rlist.slots.filter(stratum=stratum).count()
            why = (f"{size} slot(s), all allocated; expected at least one free" if size else
                   "no slot (its site was added after the list was made)")
            raise ListExhausted(f"no free slot for reader {name}: {_stratum_name(stratum)} has "
                                f"{why}", extend_remedy(trial, stratum))
        slot.membership, slot.allocated_by = reader, by if getattr(by, "pk", None) else None
        slot.allocated_at = timezone.now()
        slot.save(update_fields=["membership", "allocated_by", "allocated_at"])
        audit.record(
            action="reader.allocated", obj=reader, actor=by, trial=trial, before={"arm": None},
            after={"arm": slot.arm, "slot": slot.position, "stratum": stratum},
        )
    membership.allocation_slot = slot
    return slot


def allocate_all(trial: Trial, *, by) -> list[AllocationSlot]:
    """Allocate every unallocated reader of ``trial``, in membership order, each atomically.

    A reader that cannot be allocated (stratum exhausted, no site) does not stop the others;
    afterwards the first such error is raised with every problem in its message and the slots
    that were allocated in ``error.allocated``.
    """
    check_writable(trial, "Allocation")
    readers = list(
        Membership.objects.filter(trial=trial, role=Role.READER, allocation_slot__isnull=True)
        .order_by("pk")
    )
    if not readers:
        total = Membership.objects.filter(trial=trial, role=Role.READER).count()
        what = f"every reader is allocated ({total})" if total else "the trial has no readers"
        raise RandomizationError(f"nothing to do: {what}")
    done: list[AllocationSlot] = []
    failures: list[RandomizationError] = []
    for reader in readers:
        try:
            done.append(allocate(reader, by=by))
        except AlreadyAllocated:
            continue  # allocated meanwhile by someone else: fine
        except NoList:
            raise
        except RandomizationError as exc:  # exhausted stratum, reader without a site
            failures.append(exc)
    if failures:  # each stratum's remedy once, after the problems
        text = (f"allocated {len(done)} reader(s), {len(failures)} not: "
                + "; ".join(getattr(f, "problem", str(f)) for f in failures))
        remedy = " ".join(dict.fromkeys(f.remedy for f in failures if getattr(f, "remedy", "")))
        kind = type(failures[0])
        if kind is ListExhausted:
            error = ListExhausted(text, remedy)
        else:
            error = kind(f"{text}. {remedy}" if remedy else text)
        error.allocated = done
        raise error
    return done


# --- what may be shown --------------------------------------------------------------------------


def allocation_table(trial: Trial) -> list[dict[str, Any]]:
    """Allocated slots only (never a free slot's arm): for the command, the admin and the API."""
    slots = (
        AllocationSlot.objects.filter(randomization__trial=trial, membership__isnull=False)
        .select_related("membership__user", "membership__site", "allocated_by")
        .order_by("allocated_at", "stratum", "position")
    )
    return [
        {
            "reader": s.membership.user.get_username(),
            "site": s.membership.site.code if s.membership.site else "",
            "stratum": s.stratum,
            "position": s.position,
            "arm": s.arm,
            "arm_label": trial.arm_label(s.arm),
            "allocated_by": s.allocated_by.get_username() if s.allocated_by else "",
            "allocated_at": s.allocated_at,
        }
        for s in slots
    ]


def reveal_seed(trial: Trial) -> int:
    """The seed of a generated list, only once the trial is locked (analysis time)."""
    if trial.status != Trial.Status.LOCKED:
        raise RandomizationError(f"the seed stays concealed until the trial is locked; trial "
                                 f"{trial.slug!r} is {trial.get_status_display().lower()}")
    rlist = RandomizationList.objects.filter(trial=trial).first()
    if rlist is None:
        raise NoList(f"trial {trial.slug!r} has no randomisation list")
    if rlist.seed is None:
        raise RandomizationError(f"the list of {trial.slug!r} was imported; it has no seed")
    return rlist.seed


def reveal_extension_seed(extension: RandomizationExtension) -> int:
    """The seed of a generated extension, only once the trial is locked, like the list's."""
    trial = extension.randomization.trial
    if trial.status != Trial.Status.LOCKED:
        raise RandomizationError(f"the seed stays concealed until the trial is locked; trial "
                                 f"{trial.slug!r} is {trial.get_status_display().lower()}")
    if extension.seed is None:
        raise RandomizationError(f"extension {extension.number} of {trial.slug!r} was imported; "
                                 "it has no seed")
    return extension.seed
