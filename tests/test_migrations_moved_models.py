"""A database made before the draft and rating models changed apps migrates without losing a row.

``ModelEndpoint`` and ``Draft`` moved from ``trial`` to ``drafting``, and the campaign models
from ``reader`` to ``rating``, keeping their tables. Their migrations only move Django's state
and rename the content types, so a trial database in use before the move must come out of
``migrate`` with every row, every link and every permission as it was. This test builds such a
database with the historical models, migrates it forward and reads it back with today's models.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The last migrations before the move; drafting and rating did not exist yet.
BEFORE_MOVE = [
    ("trial", "0005_slug_help"),
    ("reader", "0003_reading_draft_distance"),
    ("drafting", None),
    ("rating", None),
]
MOVED_APPS = {"trial", "reader", "drafting", "rating"}

# New app label -> (old app label, models that moved).
MOVES = {
    "drafting": ("trial", ("modelendpoint", "draft")),
    "rating": ("reader", ("campaign", "ratedreport", "item", "rateritem", "rating")),
}

MOVED_TABLES = (
    "trial_modelendpoint",
    "trial_draft",
    "reader_campaign",
    "reader_campaign_raters",
    "reader_ratedreport",
    "reader_item",
    "reader_rateritem",
    "reader_rating",
)
# Tables the moved ones point at or are pointed at by, and Django's own bookkeeping.
RELATED_TABLES = (
    "auth_user",
    "auth_permission",
    "auth_user_user_permissions",
    "django_admin_log",
    "trial_trial",
    "trial_site",
    "trial_membership",
    "trial_case",
    "trial_assignment",
    "reader_reading",
)
CONTENT_TYPES = "django_content_type"
ALL_TABLES = (*MOVED_TABLES, *RELATED_TABLES, CONTENT_TYPES)

AT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
        return cursor.fetchone()[0]


def _rows(table: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY id")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _migrate(targets) -> MigrationExecutor:
    """Migrate with a fresh executor (its loader reads what is applied now)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def _migrate_to_latest() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    return _migrate(executor.loader.graph.leaf_nodes())


def _pre_move_apps(executor: MigrationExecutor):
    """Historical models as they were before the move (other apps at their latest)."""
    graph = executor.loader.graph
    before = {(app, name) for app, name in BEFORE_MOVE if name is not None}
    pre_move = {node for target in before for node in graph.forwards_plan(target)}
    # Apps made after the move (analysis, notify ...) need the moved apps' later migrations:
    # they did not exist then, so they are left out of the pre-move state.
    nodes = [node for node in graph.leaf_nodes() if node[0] not in MOVED_APPS
             and not any(n[0] in MOVED_APPS and n not in pre_move
                         for n in graph.forwards_plan(node))]
    nodes += sorted(before)
    return executor.loader.project_state(nodes).apps


def _make_pre_move_data(apps) -> dict:
    """A small trial with one of everything the move touches, as the old code stored it."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    User = apps.get_model("auth", "User")
    Trial = apps.get_model("trial", "Trial")
    Site = apps.get_model("trial", "Site")
    Membership = apps.get_model("trial", "Membership")
    Case = apps.get_model("trial", "Case")
    Assignment = apps.get_model("trial", "Assignment")
    ModelEndpoint = apps.get_model("trial", "ModelEndpoint")
    Draft = apps.get_model("trial", "Draft")
    Reading = apps.get_model("reader", "Reading")
    Campaign = apps.get_model("reader", "Campaign")
    RatedReport = apps.get_model("reader", "RatedReport")
    Item = apps.get_model("reader", "Item")
    RaterItem = apps.get_model("reader", "RaterItem")
    Rating = apps.get_model("reader", "Rating")

    # Content types as post_migrate made them for the old apps (they may exist already: the
    # backward migration renamed the test database's ones back).
    for new_label, (old_label, models) in MOVES.items():
        # (Models made in the new app after the move, e.g. drafting's EndpointCheck, keep theirs.)
        assert not ContentType.objects.filter(app_label=new_label, model__in=models).exists()
        for model in models:
            ContentType.objects.get_or_create(app_label=old_label, model=model)
    ct_ids = {
        (old_label, model): ContentType.objects.get(app_label=old_label, model=model).pk
        for old_label, models in MOVES.values()
        for model in models
    }

    user = User.objects.create(username="moved-models", password="!", email="m@example.org")
    coordinator = User.objects.create(username="moved-coordinator", password="!")
    export = Permission.objects.create(
        content_type_id=ct_ids["trial", "draft"], codename="export_moved_draft",
        name="Can export drafts (migration test)")
    user.user_permissions.add(export)

    trial = Trial.objects.create(name="Moved models", slug="moved-models")
    site = Site.objects.create(trial=trial, code="S1", name="Site one")
    reader = Membership.objects.create(trial=trial, user=user, role="reader", site=site)
    senior = Membership.objects.create(trial=trial, user=user, role="senior", site=site)
    rater = Membership.objects.create(trial=trial, user=coordinator, role="rater")
    case = Case.objects.create(trial=trial, site=site, case_id="C-001", age=61, sex="F",
                               status="enrolled", enrolled_at=AT)
    assignment = Assignment.objects.create(case=case, reader=reader, arm="ai_assisted",
                                           position=1, assigned_by=coordinator)
    endpoint = ModelEndpoint.objects.create(trial=trial, name="Local model", backend="demo",
                                            max_tokens=300)
    draft = Draft.objects.create(
        case=case, endpoint=endpoint, fingerprint="0123456789abcdef", backend="demo",
        config={"backend": "demo", "image_size": 384}, status="done", attempts=1,
        findings="Lungs are clear.", impression="No acute disease.", queued_at=AT,
        finished_at=AT + dt.timedelta(seconds=4), model_latency_ms=3500)
    reading = Reading.objects.create(
        assignment=assignment, draft=draft, status="submitted", started_from="draft",
        findings="Lungs are clear. No effusion.", impression="No acute disease.",
        opened_at=AT, last_event_at=AT, submitted_at=AT + dt.timedelta(minutes=3),
        edit_distance_from_draft=13)
    campaign = Campaign.objects.create(
        trial=trial, name="Blinded rating", instruments=["likert", "radpeer"],
        status="open", created_by=coordinator, seed=1234)
    campaign.raters.add(rater)
    report = RatedReport.objects.create(
        campaign=campaign, case=case, source="ai_assisted", reading=reading, draft=draft,
        findings=reading.findings, impression=reading.impression,
        shown_findings=reading.findings, shown_impression=reading.impression,
        stripped=["Signed: Dr Reader"])
    other = RatedReport.objects.create(
        campaign=campaign, case=case, source="ai_alone", draft=draft,
        findings=draft.findings, impression=draft.impression)
    item = Item.objects.create(campaign=campaign, case=case, kind="pair", report=report,
                               other=other, instruments=["likert"])
    rater_item = RaterItem.objects.create(campaign=campaign, item=item, rater=rater,
                                          position=1, swapped=True, opened_at=AT, seconds=41.5)
    rating = Rating.objects.create(rater_item=rater_item, values={"likert": {"A": 4, "B": 3}},
                                   seconds=40.0, submitted_at=AT + dt.timedelta(minutes=10))
    log = LogEntry.objects.create(
        user=coordinator, content_type_id=ct_ids["reader", "campaign"],
        object_id=str(campaign.pk), object_repr="Blinded rating", action_flag=2,
        change_message="[]")

    return {
        "ct_ids": ct_ids, "export_perm": export.pk, "user": user.pk, "trial": trial.pk,
        "senior": senior.pk, "rater": rater.pk, "case": case.pk, "endpoint": endpoint.pk,
        "draft": draft.pk, "reading": reading.pk, "campaign": campaign.pk,
        "report": report.pk, "other": other.pk, "item": item.pk, "rater_item": rater_item.pk,
        "rating": rating.pk, "log": log.pk, "rater_item_code": rater_item.code,
    }


def _check_with_current_models(ids: dict) -> None:
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from drafting.models import Draft, ModelEndpoint
    from rating.models import Campaign, Item, RatedReport, RaterItem, Rating
    from reader.models import Reading
    from trial.models import Membership

    endpoint = ModelEndpoint.objects.get(pk=ids["endpoint"])
    assert (endpoint.name, endpoint.backend, endpoint.max_tokens) == ("Local model", "demo", 300)
    assert endpoint.trial_id == ids["trial"]

    draft = Draft.objects.get(pk=ids["draft"])
    assert draft.endpoint == endpoint
    assert draft.case_id == ids["case"]
    assert (draft.status, draft.findings, draft.impression) == (
        "done", "Lungs are clear.", "No acute disease.")
    assert draft.config == {"backend": "demo", "image_size": 384}
    assert (draft.queued_at, draft.model_latency_ms) == (AT, 3500)

    reading = Reading.objects.select_related("draft__endpoint").get(pk=ids["reading"])
    assert reading.draft == draft
    assert reading.draft.endpoint.name == "Local model"
    assert list(draft.readings.all()) == [reading]
    assert reading.edit_distance_from_draft == 13

    campaign = Campaign.objects.get(pk=ids["campaign"])
    assert (campaign.name, campaign.status, campaign.seed) == ("Blinded rating", "open", 1234)
    assert campaign.instruments == ["likert", "radpeer"]
    assert [m.pk for m in campaign.raters.all()] == [ids["rater"]]
    assert list(Membership.objects.get(pk=ids["rater"]).campaigns.all()) == [campaign]

    rating = Rating.objects.select_related(
        "rater_item__item__report__draft", "rater_item__item__other").get(pk=ids["rating"])
    assert rating.values == {"likert": {"A": 4, "B": 3}}
    assert (rating.seconds, rating.submitted_at) == (40.0, AT + dt.timedelta(minutes=10))
    rater_item = rating.rater_item
    assert rater_item == RaterItem.objects.get(code=ids["rater_item_code"])
    assert (rater_item.pk, rater_item.swapped, rater_item.seconds) == (
        ids["rater_item"], True, 41.5)
    assert rater_item.rater_id == ids["rater"]
    assert rater_item.campaign == campaign
    item = rater_item.item
    assert item == Item.objects.get(pk=ids["item"])
    assert (item.kind, item.campaign, item.instruments) == ("pair", campaign, ["likert"])
    assert item.report == RatedReport.objects.get(pk=ids["report"])
    assert item.report.draft == draft
    assert item.report.reading == reading
    assert item.report.stripped == ["Signed: Dr Reader"]
    assert (item.other.pk, item.other.source, item.other.draft) == (ids["other"], "ai_alone", draft)
    assert set(campaign.reports.values_list("pk", flat=True)) == {ids["report"], ids["other"]}
    assert list(campaign.items.all()) == [item]
    assert list(campaign.rater_items.all()) == [rater_item]

    # The content types moved with their models: same rows, new labels, nothing left behind.
    ContentType.objects.clear_cache()
    current = {"drafting": (ModelEndpoint, Draft),
               "rating": (Campaign, RatedReport, Item, RaterItem, Rating)}
    for new_label, (old_label, models) in MOVES.items():
        assert not ContentType.objects.filter(app_label=old_label, model__in=models).exists()
        for model, model_class in zip(models, current[new_label], strict=True):
            ct = ContentType.objects.get_for_model(model_class)
            assert (ct.app_label, ct.model) == (new_label, model)
            assert ct.pk == ids["ct_ids"][old_label, model]
            assert ct.model_class() is model_class

    permission = Permission.objects.get(pk=ids["export_perm"])
    assert permission.content_type == ContentType.objects.get_for_model(Draft)
    user = get_user_model().objects.get(pk=ids["user"])
    assert user.has_perm("drafting.export_moved_draft")
    assert not user.has_perm("trial.export_moved_draft")

    log = LogEntry.objects.get(pk=ids["log"])
    assert log.content_type.app_label == "rating"
    assert log.get_edited_object() == campaign


@pytest.mark.django_db(transaction=True)
def test_database_from_before_the_move_migrates_without_losing_a_row() -> None:
    try:
        executor = _migrate(BEFORE_MOVE)
        applied = executor.loader.applied_migrations
        assert ("trial", "0005_slug_help") in applied
        assert ("trial", "0006_drafts_moved_to_drafting_app") not in applied
        assert ("reader", "0004_rating_moved_to_rating_app") not in applied
        assert not any(app in ("drafting", "rating") for app, _ in applied)

        ids = _make_pre_move_data(_pre_move_apps(executor))
        counts = {table: _count(table) for table in ALL_TABLES}
        assert all(counts[table] >= 1 for table in ALL_TABLES), counts
        rows = {table: _rows(table) for table in (*MOVED_TABLES, *RELATED_TABLES)}
        content_types = {ct_id: app_model for app_model, ct_id in ids["ct_ids"].items()}

        executor = _migrate_to_latest()
        leaves = executor.loader.graph.leaf_nodes()
        assert executor.migration_plan(leaves) == []
        for node in (("drafting", "0001_initial"), ("rating", "0001_initial"),
                     ("trial", "0006_drafts_moved_to_drafting_app"),
                     ("reader", "0004_rating_moved_to_rating_app")):
            assert node in executor.loader.applied_migrations

        # Raw SQL first: every table has the same rows with the same values.
        assert {table: _count(table) for table in ALL_TABLES} == counts
        for table, before in rows.items():
            # Later migrations may add columns: every column that existed keeps its values.
            kept = [{name: row[name] for name in before[0]} for row in _rows(table)]
            assert kept == before, table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, app_label, model FROM django_content_type WHERE id = ANY(%s)",
                [list(content_types)])
            moved = {ct_id: (label, model) for ct_id, label, model in cursor.fetchall()}
        new_label = {old: new for new, (old, _) in MOVES.items()}
        assert moved == {ct_id: (new_label[old], model)
                         for ct_id, (old, model) in content_types.items()}

        _check_with_current_models(ids)
    finally:
        _migrate_to_latest()
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
