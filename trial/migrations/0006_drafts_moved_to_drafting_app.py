# ModelEndpoint and Draft move to the drafting app (tables kept).

from django.db import migrations

from trial.moved_models import move_content_types


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('drafting', '0001_initial'),
        ('reader', '0004_rating_moved_to_rating_app'),
        ('trial', '0005_slug_help'),
    ]

    operations = [
        # The tables stay where they are (same names): only Django's idea of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(
                model_name='modelendpoint',
                name='trial',
            ),
            migrations.DeleteModel(
                name='Draft',
            ),
            migrations.DeleteModel(
                name='ModelEndpoint',
            ),
        ]),
        migrations.RunPython(*move_content_types("trial", "drafting", ("modelendpoint", "draft"))),
    ]
