"""The audit log is append-only: refused by the ORM and, for raw SQL, by the database trigger."""

import pytest
from django.db import DatabaseError, connection, transaction

from tests.support.factories import TrialFactory
from trial import audit
from trial.models import AuditEvent
from trial.models.audit import AuditLogImmutable


@pytest.fixture
def event(db) -> AuditEvent:
    trial = TrialFactory()
    return audit.record(action="trial.changed", obj=trial, before={"a": 1}, after={"a": 2})


def test_record_stores_who_what_and_before_after(event) -> None:
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.object_type, stored.actor) == ("trial.changed", "trial.Trial",
                                                                  None)
    assert stored.before == {"a": 1} and stored.after == {"a": 2}


def test_saving_an_event_again_is_refused(event) -> None:
    event.action = "forged"
    with pytest.raises(AuditLogImmutable, match="cannot be changed"):
        event.save()


def test_deleting_an_event_is_refused(event) -> None:
    with pytest.raises(AuditLogImmutable, match="cannot be deleted"):
        event.delete()


def test_queryset_update_and_delete_are_refused(event) -> None:
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "trial.changed"


def test_raw_sql_update_is_refused_by_the_trigger(event) -> None:
    with pytest.raises(DatabaseError, match="append-only \\(UPDATE refused\\)"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE trial_auditevent SET action = 'forged' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "trial.changed"


def test_raw_sql_delete_is_refused_by_the_trigger(event) -> None:
    with pytest.raises(DatabaseError, match="append-only \\(DELETE refused\\)"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM trial_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()
