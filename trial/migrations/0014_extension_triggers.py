"""Database-level guards of the list's extensions on PostgreSQL (next to 0002's).

An extension record is append-only, and a slot keeps its place in the list (list, stratum,
position, block, part) whatever its state, so appending blocks never moves an existing slot.
The rules of 0002 stay as they were: an allocated slot is final, and no slot's arm changes.
"""

from django.db import migrations

FORWARD_SQL = """
CREATE OR REPLACE FUNCTION trial_extension_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'trial_randomizationextension is append-only (%% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS trial_extension_append_only ON trial_randomizationextension;
CREATE TRIGGER trial_extension_append_only BEFORE UPDATE OR DELETE
  ON trial_randomizationextension
  FOR EACH ROW EXECUTE FUNCTION trial_extension_append_only();

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
  IF TG_OP = 'UPDATE' AND (
       NEW.randomization_id IS DISTINCT FROM OLD.randomization_id
       OR NEW.stratum IS DISTINCT FROM OLD.stratum
       OR NEW.position IS DISTINCT FROM OLD.position
       OR NEW.block IS DISTINCT FROM OLD.block
       OR NEW.block_size IS DISTINCT FROM OLD.block_size
       OR NEW.extension_id IS DISTINCT FROM OLD.extension_id) THEN
    RAISE EXCEPTION 'slot %% keeps its place in the list (stratum, position, block, part)',
      OLD.id;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# The function as 0002 installed it (its trigger stays in place throughout).
REVERSE_SQL = """
DROP TRIGGER IF EXISTS trial_extension_append_only ON trial_randomizationextension;
DROP FUNCTION IF EXISTS trial_extension_append_only();

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
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL)


class Migration(migrations.Migration):
    dependencies = [("trial", "0013_randomization_extensions")]
    operations = [migrations.RunPython(forwards, backwards)]
