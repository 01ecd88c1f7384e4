# The rating models move to the rating app (tables kept); readings point at drafting's Draft.

import django.db.models.deletion
from django.db import migrations, models

from trial.moved_models import move_content_types


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('drafting', '0001_initial'),
        ('reader', '0003_reading_draft_distance'),
    ]

    operations = [
        # The tables stay where they are (same names): only Django's idea of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(
                model_name='item',
                name='campaign',
            ),
            migrations.RemoveField(
                model_name='ratedreport',
                name='campaign',
            ),
            migrations.RemoveField(
                model_name='rateritem',
                name='campaign',
            ),
            migrations.RemoveField(
                model_name='item',
                name='case',
            ),
            migrations.RemoveField(
                model_name='item',
                name='other',
            ),
            migrations.RemoveField(
                model_name='item',
                name='report',
            ),
            migrations.RemoveField(
                model_name='rateritem',
                name='item',
            ),
            migrations.RemoveField(
                model_name='ratedreport',
                name='case',
            ),
            migrations.RemoveField(
                model_name='ratedreport',
                name='draft',
            ),
            migrations.RemoveField(
                model_name='ratedreport',
                name='reading',
            ),
            migrations.RemoveField(
                model_name='rateritem',
                name='rater',
            ),
            migrations.RemoveField(
                model_name='rating',
                name='rater_item',
            ),
            migrations.AlterField(
                model_name='reading',
                name='draft',
                field=models.ForeignKey(blank=True, help_text='The AI draft the editor opened with (AI-assisted arm only).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='readings', to='drafting.draft'),
            ),
            migrations.DeleteModel(
                name='Campaign',
            ),
            migrations.DeleteModel(
                name='Item',
            ),
            migrations.DeleteModel(
                name='RatedReport',
            ),
            migrations.DeleteModel(
                name='RaterItem',
            ),
            migrations.DeleteModel(
                name='Rating',
            ),
        ]),
        migrations.RunPython(*move_content_types(
            "reader", "rating", ("campaign", "ratedreport", "item", "rateritem", "rating"))),
    ]
