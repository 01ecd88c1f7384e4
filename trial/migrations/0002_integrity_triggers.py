"""Database-level guards on PostgreSQL: the audit log is append-only and an allocation is final.

The ORM refuses these changes too; the triggers also stop raw SQL and other clients.
"""

from django.db import migrations

AUDIT_SQL = """
CREATE OR REPLACE FUNCTION trial_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'trial_auditevent is append-only (%% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS trial_audit_append_only ON trial_auditevent;
CREATE TRIGGER trial_audit_append_only BEFORE UPDATE OR DELETE ON trial_auditevent
  FOR EACH ROW EXECUTE FUNCTION trial_audit_append_only();

CREATE OR REPLACE FUNCTION trial_allocation_final() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.membership_id IS NOT NULL THEN
    RAISE EXCEPTION 'allocation slot %% is allocated and cannot be deleted', OLD.id;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.membership_id IS NOT NULL AND (
       NEW.membership_id IS DISTINCT FROM OLD.membership_id
       OR NEW.arm IS DISTINCT FROM OLD.arm
       OR NEW.allocated_at IS DISTINCT FROM OLD.allocated_at
       OR NEW.allocated_by_id IS DISTINCT FROM OLD.allocated_by_id) THEN
    RAISE EXCEPTION 'allocation slot %% is allocated and cannot be changed', OLD.id;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.arm IS DISTINCT FROM NEW.arm THEN
    RAISE EXCEPTION 'the arm of slot %% cannot be changed', OLD.id;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS trial_allocation_final ON trial_allocationslot;
CREATE TRIGGER trial_allocation_final BEFORE UPDATE OR DELETE ON trial_allocationslot
  FOR EACH ROW EXECUTE FUNCTION trial_allocation_final();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS trial_audit_append_only ON trial_auditevent;
DROP FUNCTION IF EXISTS trial_audit_append_only();
DROP TRIGGER IF EXISTS trial_allocation_final ON trial_allocationslot;
DROP FUNCTION IF EXISTS trial_allocation_final();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AUDIT_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL)


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
