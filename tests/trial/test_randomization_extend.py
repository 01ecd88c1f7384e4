"""Extending the randomisation list for a stratum: a site added after the list was made, or
more readers than slots.

The list is never replaced: blocks are appended to one stratum, drawn the same concealed way
(the trial's block sizes and ratio, a fresh seed from the operating system's CSPRNG) or
imported from a statistician's CSV extension, each with its own commitment and audit event.
Tests inject the generator (``seed_source``), never a seed through the API.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections import Counter

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial import randomization as rz
from trial.lifecycle import TrialLocked
from trial.models import (
    AllocationSlot,
    AuditEvent,
    Membership,
    RandomizationExtension,
    RandomizationList,
    Role,
    Site,
    Trial,
)

LIST_SEED = 5_550_123_987_001  # distinctive: must never appear in a page or a response
EXT_SEED = 7_770_456_321_002
API = "/api/trials/cxr"
HOW_TO = "randomize_readers --trial cxr --extend H4 --blocks 1"


class Setup:
    """Trial ``cxr`` stratified by site (H1..H3), its list generated from a known seed with 4
    slots a stratum, two H1 readers allocated; then site H4 joins with one reader."""

    def __init__(self) -> None:
        self.trial = TrialFactory(slug="cxr", stratify_by_site=True, block_sizes=[2, 4],
                                  ai_assisted_label="With AI draft", scp_label="Unaided")
        sites = {code: SiteFactory(trial=self.trial, code=code) for code in ("H1", "H2", "H3")}
        self.coordinator = UserFactory(username="coord", is_staff=True)
        MembershipFactory(trial=self.trial, user=self.coordinator, role=Role.COORDINATOR,
                          site=sites["H1"])
        self.statistician = UserFactory(username="stat", is_staff=True)
        MembershipFactory(trial=self.trial, user=self.statistician, role=Role.STATISTICIAN,
                          site=sites["H1"])
        self.readers = [MembershipFactory(trial=self.trial, role=Role.READER, site=sites["H1"],
                                          user__username=f"h1-reader{i}") for i in range(2)]
        self.rlist = rz.generate_list(self.trial, by=self.coordinator,
                                      seed_source=lambda: LIST_SEED, slots_per_stratum=4)
        for reader in self.readers:
            rz.allocate(reader, by=self.coordinator)
        self.h4 = SiteFactory(trial=self.trial, code="H4", name="Late hospital")
        self.late = MembershipFactory(trial=self.trial, role=Role.READER, site=self.h4,
                                      user__username="late")
        other = TrialFactory(slug="other")
        self.stranger = UserFactory(username="other-coord", is_staff=True)
        MembershipFactory(trial=other, user=self.stranger, role=Role.COORDINATOR,
                          site=SiteFactory(trial=other, code="O1"))

    def snapshot(self) -> list[tuple]:
        """Every slot of the list as stored, in order: what an extension must not change."""
        return list(AllocationSlot.objects.filter(randomization=self.rlist).order_by("pk")
                    .values_list("pk", "stratum", "position", "block", "block_size", "arm",
                                 "membership_id", "allocated_at", "extension_id"))

    def api(self, user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    def admin(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


@pytest.fixture
def s(db) -> Setup:
    return Setup()


def extend(s: Setup, stratum: str = "H4", blocks: int = 1, seed: int = EXT_SEED):
    return rz.extend_list(s.trial, stratum=stratum, blocks=blocks, by=s.coordinator,
                          seed_source=lambda: seed)


def lock(trial: Trial) -> None:
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    trial.refresh_from_db()


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def arm_values(data: object) -> list[str]:
    if isinstance(data, dict):
        return [a for v in data.values() for a in arm_values(v)]
    if isinstance(data, list):
        return [a for v in data for a in arm_values(v)]
    return [data] if data in ("ai_assisted", "scp") else []


def independent_commitment(seed: int | None, rows) -> str:
    """The commitment formula, written out here rather than called: SHA-256 of ``seed=...``
    and the (stratum, position, arm) lines in order, joined by newlines."""
    lines = [f"seed={'' if seed is None else seed}"]
    lines += [f"{st},{pos},{arm}" for st, pos, arm in sorted(rows)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def independent_blocks(seed: int, blocks: int, ratio: tuple[int, int], sizes: list[int]):
    """Permuted blocks from ``random.Random(seed)``, drawn as the design says: a size, then
    the ratio's arms shuffled."""
    rng = random.Random(seed)
    out = []
    for _ in range(blocks):
        size = rng.choice(sizes)
        unit = sum(ratio)
        arms = ["ai_assisted"] * (ratio[0] * size // unit) + ["scp"] * (ratio[1] * size // unit)
        rng.shuffle(arms)
        out.append(arms)
    return out


# --- the refusal says what to do ----------------------------------------------------------------


def test_a_reader_of_a_site_added_after_the_list_is_refused_with_the_how_to(s: Setup) -> None:
    with pytest.raises(rz.ListExhausted) as caught:
        rz.allocate(s.late, by=s.coordinator)
    message = str(caught.value)
    assert "no free slot for reader late: stratum 'H4' has no slot" in message
    assert "Extend the randomisation list for stratum 'H4'" in message
    assert "admin: trial page, Extend the list for a stratum" in message
    assert HOW_TO in message
    assert 'POST /api/trials/cxr/randomization/extend/ {"stratum": "H4", "blocks": 1}' in message
    assert caught.value.status == 409
    assert not AllocationSlot.objects.filter(membership=s.late).exists()


def test_more_readers_than_slots_in_a_stratum_get_the_how_to_once(s: Setup) -> None:
    more = [MembershipFactory(trial=s.trial, role=Role.READER, site=s.readers[0].site)
            for _ in range(4)]
    with pytest.raises(rz.ListExhausted) as caught:
        rz.allocate_all(s.trial, by=s.coordinator)
    message = str(caught.value)
    h1_total = s.rlist.slots.filter(stratum="H1").count()
    assert f"stratum 'H1' has {h1_total} slot(s), all allocated" in message
    assert message.count("randomize_readers --trial cxr --extend H1 --blocks 1") == 1
    assert message.count(HOW_TO) == 1
    assert len(caught.value.allocated) == h1_total - 2
    assert sum(AllocationSlot.objects.filter(membership=m).exists() for m in more) == h1_total - 2


def test_an_unstratified_list_says_to_extend_the_list(db) -> None:
    trial = TrialFactory(slug="flat", block_sizes=[2])
    by = UserFactory()
    readers = MembershipFactory.create_batch(3, trial=trial, role=Role.READER)
    rz.generate_list(trial, by=by, seed_source=lambda: 3, slots_per_stratum=2)
    rz.allocate(readers[0], by=by)
    rz.allocate(readers[1], by=by)
    with pytest.raises(rz.ListExhausted) as caught:
        rz.allocate(readers[2], by=by)
    assert "Extend the randomisation list (admin:" in str(caught.value)
    assert "randomize_readers --trial flat --extend --blocks 1" in str(caught.value)
    with pytest.raises(rz.RandomizationError, match="not stratified by site; expected none"):
        rz.extend_list(trial, stratum="H1", blocks=1, by=by, seed_source=lambda: 4)
    extension = rz.extend_list(trial, blocks=1, by=by, seed_source=lambda: 4)
    assert extension.stratum == "" and extension.slot_count == 2
    assert rz.allocate(readers[2], by=by).position == 3


# --- the service -----------------------------------------------------------------------------


def test_the_service_appends_blocks_and_the_new_reader_is_allocated_from_them(s: Setup) -> None:
    before, commitment = s.snapshot(), s.rlist.commitment
    extension = extend(s, blocks=2)
    assert (extension.number, extension.stratum, extension.method) == (1, "H4", "generated")
    assert extension.seed == EXT_SEED and extension.blocks == 2
    assert extension.created_by == s.coordinator and extension.block_sizes == [2, 4]
    slots = list(extension.slots.order_by("position"))
    assert extension.slot_count == len(slots) >= 4
    assert [x.position for x in slots] == list(range(1, len(slots) + 1))
    assert {x.block for x in slots} == {1, 2} and {x.stratum for x in slots} == {"H4"}
    for block in (1, 2):
        arms = Counter(x.arm for x in slots if x.block == block)
        assert arms["ai_assisted"] == arms["scp"] and sum(arms.values()) in (2, 4)
    # The existing slots and the list's commitment are untouched.
    assert s.snapshot()[:len(before)] == before
    s.rlist.refresh_from_db()
    assert s.rlist.commitment == commitment and rz.check_commitment(s.rlist)
    assert rz.check_extension_commitment(extension)
    slot = rz.allocate(s.late, by=s.coordinator)
    assert (slot.extension_id, slot.stratum, slot.position) == (extension.pk, "H4", 1)
    assert slot.arm == slots[0].arm


def test_extending_an_existing_stratum_continues_its_positions_and_blocks(s: Setup) -> None:
    h1 = list(s.rlist.slots.filter(stratum="H1").order_by("position"))
    extension = extend(s, stratum="H1", blocks=1)
    added = list(extension.slots.order_by("position"))
    assert added[0].position == h1[-1].position + 1
    assert {x.block for x in added} == {h1[-1].block + 1}
    # The original slots come first: readers take them before the extension's.
    free = [x.position for x in h1 if x.membership_id is None]
    newcomers = [MembershipFactory(trial=s.trial, role=Role.READER, site=s.readers[0].site)
                 for _ in range(len(free) + 1)]
    taken = [rz.allocate(m, by=s.coordinator) for m in newcomers]
    assert [x.position for x in taken] == [*free, added[0].position]
    assert taken[-1].extension == extension


def test_an_extension_uses_the_trials_ratio_and_block_sizes(db) -> None:
    trial = TrialFactory(stratify_by_site=True, ratio_ai_assisted=2, ratio_scp=1,
                         block_sizes=[3, 6])
    SiteFactory(trial=trial, code="H1")
    by = UserFactory()
    rz.generate_list(trial, by=by, seed_source=lambda: 1)
    SiteFactory(trial=trial, code="H9")
    extension = rz.extend_list(trial, stratum="H9", blocks=5, by=by, seed_source=lambda: 2)
    assert extension.block_sizes == [3, 6]
    for block in range(1, 6):
        arms = Counter(extension.slots.filter(block=block).values_list("arm", flat=True))
        assert arms["ai_assisted"] == 2 * arms["scp"] and sum(arms.values()) in (3, 6)


def test_the_seed_comes_from_the_os_csprng_and_each_extension_has_its_own(
        s: Setup, monkeypatch) -> None:
    drawn = iter([1111, 2222])
    monkeypatch.setattr(rz.secrets, "randbits", lambda bits: next(drawn))
    first = rz.extend_list(s.trial, stratum="H4", blocks=1, by=s.coordinator)
    second = rz.extend_list(s.trial, stratum="H4", blocks=1, by=s.coordinator)
    assert (first.seed, second.seed) == (1111, 2222)
    assert (first.number, second.number) == (1, 2)
    assert first.commitment != second.commitment != s.rlist.commitment
    assert min(second.slots.values_list("position", flat=True)) == first.slot_count + 1


def test_an_extension_is_an_audit_event_without_its_seed(s: Setup) -> None:
    extension = extend(s, blocks=2)
    event = AuditEvent.objects.get(action="randomization.extended", trial=s.trial)
    assert event.actor == s.coordinator and event.at is not None
    assert event.object_id == str(extension.pk)
    assert event.after["stratum"] == "H4" and event.after["extension"] == 1
    assert event.after["blocks"] == 2 and event.after["slots"] == extension.slot_count
    assert event.after["commitment"] == extension.commitment
    assert event.after["list_commitment"] == s.rlist.commitment
    assert event.after["method"] == "generated"
    assert str(EXT_SEED) not in str(event.after) and str(EXT_SEED) not in event.object_repr


def test_the_extensions_commitment_is_verifiable_after_the_lock(s: Setup) -> None:
    extension = rz.extend_list(s.trial, stratum="H4", blocks=3, by=s.coordinator)  # drawn seed
    with pytest.raises(rz.RandomizationError, match="concealed until the trial is locked"):
        rz.reveal_extension_seed(extension)
    lock(s.trial)
    seed = rz.reveal_extension_seed(RandomizationExtension.objects.get(pk=extension.pk))
    assert seed == extension.seed and 0 <= seed < 2**63
    # From the revealed seed alone, the design and the stratum's place: the same sequence ...
    blocks = independent_blocks(seed, 3, (1, 1), [2, 4])
    expected = [("H4", i, arm) for i, arm in enumerate((a for b in blocks for a in b), 1)]
    stored = list(extension.slots.order_by("position").values_list("stratum", "position", "arm"))
    assert stored == expected
    # ... and the same commitment, computed the way the list's is.
    assert independent_commitment(seed, expected) == extension.commitment
    # The list's own commitment still holds over its own slots (not the extension's).
    original = s.rlist.slots.filter(extension=None).values_list("stratum", "position", "arm")
    assert independent_commitment(rz.reveal_seed(s.trial), original) == s.rlist.commitment


def test_an_imported_extension_records_its_file_hash(s: Setup) -> None:
    text = "position,arm,block\n1,scp,1\n2,ai_assisted,1\n3,ai_assisted,2\n4,scp,2\n"
    before = s.snapshot()
    extension = rz.import_extension(s.trial, io.StringIO(text), stratum="H4", by=s.coordinator,
                                    source_name="h4.csv", expected_count=4)
    assert extension.method == "imported" and extension.seed is None
    assert extension.source_name == "h4.csv"
    assert extension.source_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert (extension.blocks, extension.slot_count, extension.block_sizes) == (2, 4, [2])
    assert list(extension.slots.order_by("position").values_list("position", "arm")) == [
        (1, "scp"), (2, "ai_assisted"), (3, "ai_assisted"), (4, "scp")]
    assert independent_commitment(None, extension.slots.values_list(
        "stratum", "position", "arm")) == extension.commitment
    assert s.snapshot()[:len(before)] == before
    event = AuditEvent.objects.get(action="randomization.extended")
    assert event.after["source_sha256"] == extension.source_sha256


def test_an_imported_extension_of_an_existing_stratum_is_numbered_after_it(s: Setup) -> None:
    last = s.rlist.slots.filter(stratum="H2").order_by("-position").first()
    extension = rz.import_extension(s.trial, ["position,arm\n", "1,scp\n", "2,ai_assisted\n"],
                                    stratum="H2", by=s.coordinator)
    assert list(extension.slots.values_list("position", "block")) == [
        (last.position + 1, last.block + 1), (last.position + 2, last.block + 1)]


def test_a_bad_csv_extension_is_refused_whole(s: Setup) -> None:
    before = s.snapshot()
    text = "position,arm,stratum\n1,scp,H4\n2,placebo,H4\n3,scp,H1\n"
    with pytest.raises(rz.InvalidList) as caught:
        rz.import_extension(s.trial, io.StringIO(text), stratum="H4", by=s.coordinator)
    problems = "\n".join(caught.value.problems)
    assert "line 3: unknown arm 'placebo'" in problems
    assert "line 4: stratum 'H1', but this extension is for stratum 'H4' only" in problems
    assert s.snapshot() == before and not RandomizationExtension.objects.exists()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"stratum": "H9"}, "stratum: got 'H9', expected one of the trial's site codes H1, H2, H3, "
                        "H4"),
    ({"stratum": ""}, "stratum: got '', expected one of"),
    ({"blocks": 0}, r"blocks: got 0, expected a whole number in 1\.\.100"),
    ({"blocks": 101}, "blocks: got 101"),
])
def test_a_wrong_stratum_or_number_of_blocks_is_refused(s: Setup, kwargs, match) -> None:
    with pytest.raises(rz.RandomizationError, match=match):
        rz.extend_list(s.trial, **{"stratum": "H4", "blocks": 1, **kwargs}, by=s.coordinator,
                       seed_source=lambda: 1)
    assert not RandomizationExtension.objects.exists()


def test_a_second_list_is_refused_with_the_way_to_extend_instead(s: Setup) -> None:
    with pytest.raises(rz.ListAlreadyExists) as caught:
        rz.generate_list(s.trial, by=s.coordinator, seed_source=lambda: 1)
    assert "it is never replaced; to add slots for a stratum, extend it" in str(caught.value)
    assert "randomize_readers --trial cxr --extend STRATUM --blocks N" in str(caught.value)


def test_a_trial_without_a_list_has_nothing_to_extend(db) -> None:
    trial = TrialFactory()
    with pytest.raises(rz.NoList, match="no randomisation list to extend; generate or import"):
        rz.extend_list(trial, blocks=1, by=UserFactory(), seed_source=lambda: 1)


def test_a_locked_trials_list_is_never_extended(s: Setup) -> None:
    lock(s.trial)
    before = s.snapshot()
    with pytest.raises(TrialLocked) as caught:
        extend(s)
    assert caught.value.status == 409
    with pytest.raises(TrialLocked):
        rz.import_extension(s.trial, ["position,arm\n", "1,scp\n"], stratum="H4",
                            by=s.coordinator)
    assert s.snapshot() == before and not RandomizationExtension.objects.exists()
    assert not AuditEvent.objects.filter(action="randomization.extended").exists()


def test_the_database_keeps_extensions_and_slots_in_place(s: Setup) -> None:
    extension = extend(s)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        RandomizationExtension.objects.filter(pk=extension.pk).update(commitment="0" * 64)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("DELETE FROM trial_randomizationextension WHERE id = %s", [extension.pk])
    free = extension.slots.first()
    with pytest.raises(DatabaseError, match="keeps its place in the list"), transaction.atomic():
        AllocationSlot.objects.filter(pk=free.pk).update(position=999)
    with pytest.raises(DatabaseError, match="keeps its place in the list"), transaction.atomic():
        AllocationSlot.objects.filter(pk=free.pk).update(extension=None)
    # Allocation still works, and an allocated slot is still final.
    slot = rz.allocate(s.late, by=s.coordinator)
    with pytest.raises(DatabaseError, match="allocated and cannot be changed"), \
            transaction.atomic():
        AllocationSlot.objects.filter(pk=slot.pk).update(membership=None)


# --- the admin --------------------------------------------------------------------------------


def test_the_trial_page_links_the_extend_tool(s: Setup) -> None:
    url = reverse("admin:trial_trial_extend_list", args=[s.trial.pk])
    page = s.admin(s.coordinator).get(reverse("admin:trial_trial_change", args=[s.trial.pk]))
    assert url in page.content.decode() and "Extend the list for a stratum" in page.content.decode()
    form = s.admin(s.coordinator).get(url)
    html = form.content.decode()
    assert form.status_code == 200 and "H4 (no slots yet)" in html
    h1 = s.rlist.slots.filter(stratum="H1").count()
    assert f"H1 ({h1 - 2} of {h1} slots free)" in html
    assert str(LIST_SEED) not in html


def test_the_admin_tool_extends_after_a_confirmation(s: Setup) -> None:
    client = s.admin(s.coordinator)
    url = reverse("admin:trial_trial_extend_list", args=[s.trial.pk])
    unconfirmed = client.post(url, {"stratum": "H4", "blocks": 2})
    assert unconfirmed.status_code == 200 and "This field is required" in (
        unconfirmed.content.decode())
    assert not RandomizationExtension.objects.exists()
    before = s.snapshot()
    response = client.post(url, {"stratum": "H4", "blocks": 2, "confirm": "on"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:trial_trial_change", args=[s.trial.pk])
    extension = RandomizationExtension.objects.get()
    assert (extension.stratum, extension.blocks, extension.created_by) == ("H4", 2, s.coordinator)
    (level, text), = messages_of(response)
    assert level == "success" and "extended for stratum 'H4'" in text
    assert extension.commitment[:12] in text and str(extension.seed) not in text
    assert s.snapshot()[:len(before)] == before
    page = client.get(reverse("admin:trial_trial_change", args=[s.trial.pk])).content.decode()
    assert extension.commitment in page and str(extension.seed) not in page
    assert AuditEvent.objects.get(action="randomization.extended").actor == s.coordinator
    assert rz.allocate(s.late, by=s.coordinator).extension == extension


def test_the_admin_tool_imports_a_csv_extension(s: Setup) -> None:
    data = b"position,arm\n1,ai_assisted\n2,scp\n"
    response = s.admin(s.coordinator).post(
        reverse("admin:trial_trial_extend_list", args=[s.trial.pk]),
        {"stratum": "H4", "csv_file": SimpleUploadedFile("h4.csv", data), "confirm": "on"})
    assert response.status_code == 302
    extension = RandomizationExtension.objects.get()
    assert extension.method == "imported" and extension.source_name == "h4.csv"
    assert extension.source_sha256 == hashlib.sha256(data).hexdigest()


def test_the_admin_tool_explains_a_refusal(s: Setup) -> None:
    refused = s.admin(s.coordinator).post(
        reverse("admin:trial_trial_extend_list", args=[s.trial.pk]),
        {"stratum": "H4", "csv_file": SimpleUploadedFile("h4.csv", b"position,arm\n1,x\n"),
         "confirm": "on"})
    assert refused.status_code == 200
    (level, text), = messages_of(refused)
    assert level == "error" and "unknown arm 'x'" in text
    assert not RandomizationExtension.objects.exists()


def test_only_the_trials_coordinators_may_use_the_admin_tool(s: Setup) -> None:
    url = reverse("admin:trial_trial_extend_list", args=[s.trial.pk])
    body = {"stratum": "H4", "blocks": 1, "confirm": "on"}
    assert s.admin(s.stranger).post(url, body).status_code == 403
    assert s.admin(s.statistician).post(url, body).status_code == 403
    reader = s.admin(s.late.user).post(url, body)
    assert reader.status_code == 302 and "/login/" in reader["Location"]
    assert Client().post(url, body).status_code == 302
    assert not RandomizationExtension.objects.exists()


def test_the_admin_tool_is_refused_once_the_trial_is_locked(s: Setup) -> None:
    lock(s.trial)
    client = s.admin(s.coordinator)
    page = client.get(reverse("admin:trial_trial_change", args=[s.trial.pk])).content.decode()
    url = reverse("admin:trial_trial_extend_list", args=[s.trial.pk])
    assert url not in page
    assert client.post(url, {"stratum": "H4", "blocks": 1, "confirm": "on"}).status_code == 403
    assert not RandomizationExtension.objects.exists()


def test_the_list_page_shows_the_extension_commitment_and_its_seed_only_after_lock(
        s: Setup) -> None:
    extension = extend(s)
    url = reverse("admin:trial_randomizationlist_change", args=[s.rlist.pk])
    before = s.admin(s.coordinator).get(url).content.decode()
    assert extension.commitment in before and "concealed until the lock" in before
    assert str(EXT_SEED) not in before and str(LIST_SEED) not in before
    lock(s.trial)
    after = s.admin(s.coordinator).get(url).content.decode()
    assert str(EXT_SEED) in after and str(LIST_SEED) in after
    assert "the list: matches; extension 1: matches" in after
    reveal = AuditEvent.objects.get(action="randomization.revealed")
    assert reveal.after["extensions"] == [1]


# --- the API ----------------------------------------------------------------------------------


def test_the_api_extends_for_a_coordinator(s: Setup) -> None:
    before = s.snapshot()
    response = s.api(s.coordinator).post(f"{API}/randomization/extend/",
                                          {"stratum": "H4", "blocks": 1}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    extension = RandomizationExtension.objects.get()
    assert body["number"] == 1 and body["stratum"] == "H4" and body["blocks"] == 1
    assert body["slots"] == extension.slot_count and body["commitment"] == extension.commitment
    assert body["created_by"] == "coord" and body["method"] == "generated"
    assert "seed" not in body and arm_values(body) == []
    assert str(extension.seed) not in response.content.decode()
    assert s.snapshot()[:len(before)] == before
    summary = s.api(s.statistician).get(f"{API}/randomization/").json()
    assert summary["commitment"] == s.rlist.commitment
    assert [e["commitment"] for e in summary["extensions"]] == [extension.commitment]
    assert summary["slots"]["total"] == len(before) + extension.slot_count
    assert arm_values(summary) == [] and str(extension.seed) not in str(summary)
    allocated = s.api(s.coordinator).post(f"{API}/allocations/", {"membership": s.late.pk},
                                          format="json")
    assert allocated.status_code == 201 and allocated.json()["stratum"] == "H4"


def test_the_api_refuses_a_seed(s: Setup) -> None:
    response = s.api(s.coordinator).post(f"{API}/randomization/extend/",
                                          {"stratum": "H4", "blocks": 1, "seed": 42},
                                          format="json")
    assert response.status_code == 400
    assert "draws the seed" in response.json()["seed"][0]
    assert not RandomizationExtension.objects.exists()
    imported = s.api(s.coordinator).post(
        f"{API}/randomization/extend/import/",
        {"stratum": "H4", "seed": "42", "file": SimpleUploadedFile("x.csv", b"position,arm\n"
                                                                             b"1,scp\n")},
        format="multipart")
    assert imported.status_code == 400 and "seed" in imported.json()
    assert not RandomizationExtension.objects.exists()


@pytest.mark.parametrize(("who", "status"), [
    ("statistician", 403), ("reader", 403), ("stranger", 404), ("anonymous", 403)])
def test_the_api_refuses_everyone_but_coordinators(s: Setup, who: str, status: int) -> None:
    client = APIClient()
    user = {"statistician": s.statistician, "reader": s.late.user,
            "stranger": s.stranger}.get(who)
    if user is not None:
        client.force_authenticate(user)
    response = client.post(f"{API}/randomization/extend/", {"stratum": "H4", "blocks": 1},
                           format="json")
    assert response.status_code == status
    imported = client.post(f"{API}/randomization/extend/import/",
                           {"stratum": "H4", "file": SimpleUploadedFile("x.csv", b"position,arm\n"
                                                                                 b"1,scp\n")},
                           format="multipart")
    assert imported.status_code == status
    assert not RandomizationExtension.objects.exists()


def test_the_api_answers_a_refusal_with_its_status(s: Setup) -> None:
    client = s.api(s.coordinator)
    unknown = client.post(f"{API}/randomization/extend/", {"stratum": "H9", "blocks": 1},
                          format="json")
    assert unknown.status_code == 400 and "expected one of the trial's site codes" in (
        unknown.json()["detail"])
    too_many = client.post(f"{API}/randomization/extend/", {"stratum": "H4", "blocks": 1000},
                           format="json")
    assert too_many.status_code == 400 and "blocks" in too_many.json()
    not_a_file = client.post(f"{API}/randomization/extend/import/", {"stratum": "H4"},
                             format="json")
    assert not_a_file.status_code == 400 and "multipart/form-data" in not_a_file.json()["file"][0]
    lock(s.trial)
    locked = client.post(f"{API}/randomization/extend/", {"stratum": "H4", "blocks": 1},
                         format="json")
    assert locked.status_code == 409 and "locked" in locked.json()["detail"]
    assert not RandomizationExtension.objects.exists()


def test_the_api_imports_a_csv_extension(s: Setup) -> None:
    data = b"position,arm,stratum\n1,scp,H4\n2,ai_assisted,H4\n"
    response = s.api(s.coordinator).post(
        f"{API}/randomization/extend/import/",
        {"stratum": "H4", "file": SimpleUploadedFile("h4.csv", data), "expected_count": 2},
        format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["method"] == "imported" and body["source_name"] == "h4.csv"
    assert body["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert arm_values(body) == []


def test_the_api_records_the_hash_of_the_uploaded_file_for_a_list_too(db) -> None:
    trial = TrialFactory(slug="fresh")
    coordinator = UserFactory()
    MembershipFactory(trial=trial, user=coordinator, role=Role.COORDINATOR)
    data = b"position,arm\r\n1,scp\r\n2,ai_assisted\r\n"
    client = APIClient()
    client.force_authenticate(coordinator)
    response = client.post("/api/trials/fresh/randomization/import/",
                           {"file": SimpleUploadedFile("list.csv", data)}, format="multipart")
    assert response.status_code == 201, response.content
    stored = RandomizationList.objects.get(trial=trial).source_sha256
    assert stored == hashlib.sha256(data).hexdigest()


def test_the_openapi_schema_documents_the_extend_endpoints(s: Setup) -> None:
    client = Client()
    client.force_login(s.coordinator)
    schema = client.get("/api/schema/?format=json").json()
    extend_op = schema["paths"]["/api/trials/{trial_slug}/randomization/extend/"]["post"]
    assert set(extend_op["responses"]) >= {"201", "400", "403", "404", "409"}
    request = extend_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][request.rsplit("/", 1)[-1]]["properties"]
    assert set(fields) == {"stratum", "blocks"}
    imported = schema["paths"]["/api/trials/{trial_slug}/randomization/extend/import/"]["post"]
    assert "multipart/form-data" in imported["requestBody"]["content"]
    assert "extensions" in schema["components"]["schemas"]["Randomization"]["properties"]


# --- the command ------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("randomize_readers", *args, stdout=out)
    return out.getvalue()


def test_the_command_refuses_with_the_how_to_then_extends_when_asked(s: Setup) -> None:
    with pytest.raises(CommandError) as caught:
        run("--trial", "cxr")
    assert "list exhausted" in str(caught.value) and HOW_TO in str(caught.value)
    assert not RandomizationExtension.objects.exists()  # never silently
    before = s.snapshot()
    out = run("--trial", "cxr", "--extend", "H4", "--blocks", "1", "--by", "coord")
    extension = RandomizationExtension.objects.get()
    assert ("Randomisation list extended for stratum 'H4' (extension 1, generated from a seed)"
            in out)
    assert extension.commitment in out and str(extension.seed) not in out
    assert "late" in out and "Allocated 1 reader(s) now" in out
    assert Membership.objects.get(pk=s.late.pk).allocation_slot.extension == extension
    assert s.snapshot()[:len(before)] == before
    assert AuditEvent.objects.get(action="randomization.extended").actor == s.coordinator


def test_the_command_extends_even_when_nobody_waits(s: Setup) -> None:
    run("--trial", "cxr", "--extend", "H4", "--blocks", "1", "--by", "coord")
    out = run("--trial", "cxr", "--extend", "H3", "--blocks", "2", "--by", "coord")
    assert "extended for stratum 'H3' (extension 2" in out and "No reader to allocate." in out


def test_the_command_imports_a_csv_extension(s: Setup, tmp_path) -> None:
    path = tmp_path / "h4.csv"
    path.write_text("position,arm\n1,ai_assisted\n2,scp\n")
    out = run("--trial", "cxr", "--extend", "H4", "--list", str(path), "--by", "coord")
    extension = RandomizationExtension.objects.get()
    assert "(extension 1, imported csv list)" in out
    assert extension.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("args", "match"), [
    (("--blocks", "1"), "--blocks goes with --extend"),
    (("--extend", "H4"), "--extend needs either --blocks N"),
    (("--extend", "H9", "--blocks", "1"), "stratum: got 'H9'"),
    (("--extend", "H4", "--blocks", "1", "--seed", "4"), "unrecognized arguments: --seed"),
])
def test_the_command_refuses_a_wrong_extension(s: Setup, args, match) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("randomize_readers", "--trial", "cxr", "--by", "coord", *args)
    assert not RandomizationExtension.objects.exists()


def test_the_command_refuses_to_extend_a_locked_trial(s: Setup) -> None:
    lock(s.trial)
    with pytest.raises(CommandError, match="locked"):
        run("--trial", "cxr", "--extend", "H4", "--blocks", "1", "--by", "coord")
    assert not RandomizationExtension.objects.exists()
    assert RandomizationList.objects.filter(trial=s.trial).count() == 1
    assert Site.objects.filter(trial=s.trial).count() == 4
