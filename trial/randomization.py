"""Reader randomisation: permuted blocks from a seed or an imported list; atomic allocation.

Concealment: nothing here returns the arm of a free slot. ``allocation_table`` lists allocated
slots only (without block numbers, which would help predict the next arm), and the seed is
revealed only once the trial is locked. The commitment hash, shown from the start, lets anyone
check afterwards that the list was not changed.
"""

from __future__ import annotations

import csv
import hashlib
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import audit
from .errors import Invalid
from .lifecycle import TrialLocked, check_writable
from .models import AllocationSlot, Arm, Membership, RandomizationList, Role, Trial

MIN_SLOTS_PER_STRATUM = 12
MAX_SLOTS = 10_000
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
    status = 409


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
    unit = sum(ratio)
    planned: list[PlannedSlot] = []
    for stratum in sorted(strata):
        position = block = 0
        while position < strata[stratum]:
            size = rng.choice(block_sizes)
            arms = [Arm.AI_ASSISTED.value] * (ratio[0] * size // unit)
            arms += [Arm.SCP.value] * (ratio[1] * size // unit)
            rng.shuffle(arms)
            block += 1
            for arm in arms:
                position += 1
                planned.append(PlannedSlot(stratum, position, block, size, arm))
    return planned


def commitment(seed: int | None, sequence: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 (hex) of the seed and the ordered (stratum, position, arm) sequence."""
    lines = [f"seed={'' if seed is None else seed}"]
    lines += [f"{stratum},{position},{arm}" for stratum, position, arm in sorted(sequence)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def check_commitment(randomization: RandomizationList) -> bool:
    """Does the stored list still match the commitment published when it was made?"""
    rows = randomization.slots.values_list("stratum", "position", "arm")
    return commitment(randomization.seed, rows) == randomization.commitment


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
            "a trial has exactly one list and it is never replaced"
        )
    return locked


def _store(trial: Trial, by: Any, slots: list[PlannedSlot], **fields: Any) -> RandomizationList:
    if not getattr(by, "is_authenticated", False):
        raise RandomizationError(f"a list needs the user who made it: got by={by!r}")
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
    replacement, a late site): the list can never be extended, and an exhausted stratum stops
    allocation there.
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


def _parse_rows(trial: Trial, rows: Any) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs and the problems found in the header and each row."""
    reader = csv.reader(_text_lines(rows))
    try:
        return _read_rows(trial, reader)
    except csv.Error as exc:
        raise InvalidList(f"line {reader.line_num}: not readable as CSV ({exc})") from exc


def _read_rows(trial: Trial, reader: Any) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    header = next((r for r in reader if any(c.strip() for c in r)), None)
    if header is None:
        raise InvalidList(f"empty list: got nothing, expected a header {CSV_HEADER} and rows")
    header_line = reader.line_num
    names = [h.strip().lower() for h in header]
    wanted = ["position", "arm"] + (["stratum"] if trial.stratify_by_site else [])
    problems = [f"line {header_line}: unknown column {n!r}" for n in names
                if n not in {"position", "arm", "stratum", "block"}]
    problems += [f"line {header_line}: column {n!r} appears twice" for n, k in
                 Counter(names).items() if k > 1]
    problems += [f"line {header_line}: missing column {n!r}" for n in wanted if n not in names]
    if problems:
        why = " (the trial is stratified by site)" if trial.stratify_by_site else ""
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
              expected_count: int | None) -> tuple[list[PlannedSlot], list[str]]:
    sites = sorted(trial.sites.values_list("code", flat=True))
    problems: list[str] = []
    seen: dict[tuple[str, int], int] = {}
    unparsed: set[str] = set()  # strata with an unreadable position: no gap report there
    good: list[tuple[str, int, int, str]] = []
    for line, row in rows:
        position = _positive_int(row["position"])
        arm, stratum, block = row["arm"], row.get("stratum", ""), row.get("block", "1")
        bad = len(problems)
        if trial.stratify_by_site and stratum not in sites:
            problems.append(f"line {line}: unknown stratum {stratum!r}; expected one of the "
                            f"trial's site codes {', '.join(sites) or '(none)'}")
        elif not trial.stratify_by_site and stratum:
            problems.append(f"line {line}: stratum {stratum!r} given but trial {trial.slug!r} "
                            "is not stratified by site; expected it blank")
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
            raise ListExhausted(f"no free slot for reader {name}: {_stratum_name(stratum)} has "
                                f"{size} slot(s), all allocated; expected at least one free")
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
    if failures:
        error = type(failures[0])(
            f"allocated {len(done)} reader(s), {len(failures)} not: "
            + "; ".join(str(f) for f in failures)
        )
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
