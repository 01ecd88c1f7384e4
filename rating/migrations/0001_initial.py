# The rating campaign models, moved from the reader app with their tables (reader_campaign ...):
# on an existing database this only records them here (see reader 0004).

import django.db.models.deletion
import rating.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('drafting', '0001_initial'),
        ('reader', '0004_rating_moved_to_rating_app'),
        ('trial', '0006_drafts_moved_to_drafting_app'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (same names): only Django's idea of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Campaign',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=120)),
                    ('kind', models.CharField(choices=[('prospective', "Prospective (the trial's readings)"), ('retrospective', 'Retrospective (imported reports)')], default='prospective', max_length=14)),
                    ('instruments', models.JSONField(default=list, help_text='Any of: likert, radpeer, acceptability, errors, preference, source_id.')),
                    ('radpeer_variant', models.CharField(choices=[('reference', '1-5 as in the reference trial (5 best)'), ('acr2016', 'ACR RADPEER 2016 (1 / 2a / 2b / 3a / 3b)')], default='reference', max_length=10)),
                    ('raters_per_item', models.PositiveSmallIntegerField(blank=True, help_text='Empty: every rater of the campaign rates every item.', null=True)),
                    ('allow_revision', models.BooleanField(default=False, help_text='Raters may change a submitted rating (every change audited).')),
                    ('include_ai_alone', models.BooleanField(default=False, help_text="Prospective: also rate the AI draft alone, as a third report. Retrospective: also rate the draft worker's outputs of the cases (one source per model endpoint).")),
                    ('seed', models.BigIntegerField(default=rating.models._seed, help_text='Seed of the orders and sides.')),
                    ('status', models.CharField(choices=[('draft', 'Draft'), ('open', 'Open for rating'), ('closed', 'Closed')], default='draft', max_length=8)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('raters', models.ManyToManyField(blank=True, limit_choices_to={'role': 'rater'}, related_name='campaigns', to='trial.membership')),
                    ('trial', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='campaigns', to='trial.trial')),
                ],
                options={
                    'db_table': 'reader_campaign',
                    'ordering': ['trial', 'name'],
                },
            ),
            migrations.CreateModel(
                name='RatedReport',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('source', models.CharField(help_text="ai_assisted, scp, ai_alone, published, or an imported source's name.", max_length=60)),
                    ('findings', models.TextField(blank=True)),
                    ('impression', models.TextField(blank=True)),
                    ('shown_findings', models.TextField(blank=True, help_text='As raters see it (stripped).')),
                    ('shown_impression', models.TextField(blank=True)),
                    ('stripped', models.JSONField(blank=True, default=list, help_text='Lines removed for raters.')),
                    ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reports', to='rating.campaign')),
                    ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trial.case')),
                    ('draft', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='drafting.draft')),
                    ('reading', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reader.reading')),
                ],
                options={
                    'db_table': 'reader_ratedreport',
                    'ordering': ['campaign', 'case', 'source'],
                },
            ),
            migrations.CreateModel(
                name='Item',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(choices=[('single', 'One report'), ('pair', 'Two reports')], max_length=6)),
                    ('instruments', models.JSONField(default=list)),
                    ('reference_findings', models.TextField(blank=True)),
                    ('reference_impression', models.TextField(blank=True)),
                    ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='rating.campaign')),
                    ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trial.case')),
                    ('other', models.ForeignKey(blank=True, help_text='Pairs: the second report.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rating.ratedreport')),
                    ('report', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rating.ratedreport')),
                ],
                options={
                    'db_table': 'reader_item',
                    'ordering': ['campaign', 'case', 'pk'],
                },
            ),
            migrations.CreateModel(
                name='RaterItem',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('code', models.CharField(default=rating.models.new_code, max_length=16, unique=True)),
                    ('position', models.PositiveIntegerField()),
                    ('swapped', models.BooleanField(default=False, help_text='Pairs: Report A is `other`.')),
                    ('opened_at', models.DateTimeField(blank=True, null=True)),
                    ('seconds', models.FloatField(default=0, help_text='Time on the item page, server clock.')),
                    ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rater_items', to='rating.campaign')),
                    ('item', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rater_items', to='rating.item')),
                    ('rater', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='rater_items', to='trial.membership')),
                ],
                options={
                    'db_table': 'reader_rateritem',
                    'ordering': ['rater', 'position'],
                },
            ),
            migrations.CreateModel(
                name='Rating',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('values', models.JSONField(help_text='By instrument, as the rater answered (A/B for pairs).')),
                    ('seconds', models.FloatField(help_text='Time on the item until (last) submission.')),
                    ('submitted_at', models.DateTimeField()),
                    ('revisions', models.PositiveIntegerField(default=0)),
                    ('rater_item', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='rating', to='rating.rateritem')),
                ],
                options={
                    'db_table': 'reader_rating',
                    'ordering': ['rater_item'],
                },
            ),
            migrations.AddConstraint(
                model_name='campaign',
                constraint=models.UniqueConstraint(fields=('trial', 'name'), name='campaign_name_unique_per_trial'),
            ),
            migrations.AddConstraint(
                model_name='ratedreport',
                constraint=models.UniqueConstraint(fields=('campaign', 'case', 'source'), name='one_report_per_source_and_case'),
            ),
            migrations.AddConstraint(
                model_name='rateritem',
                constraint=models.UniqueConstraint(fields=('item', 'rater'), name='one_rater_item_per_rater'),
            ),
            migrations.AddConstraint(
                model_name='rateritem',
                constraint=models.UniqueConstraint(fields=('campaign', 'rater', 'position'), name='unique_rating_position'),
            ),
        ]),
    ]
