# ModelEndpoint and Draft, moved from the trial app with their tables (trial_modelendpoint,
# trial_draft): on an existing database this only records them here (see trial 0006).

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('trial', '0005_slug_help'),
    ]

    operations = [
        # The tables stay where they are (same names): only Django's idea of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='ModelEndpoint',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=100)),
                    ('active', models.BooleanField(default=True, help_text="The endpoint that makes the trial's drafts (one per trial).")),
                    ('backend', models.CharField(choices=[('openai', 'OpenAI-compatible chat completions'), ('demo', 'Demo (offline, not a model)')], default='openai', max_length=10)),
                    ('base_url', models.URLField(blank=True, help_text='Up to /v1, e.g. http://gpu-host:8000/v1 (the server adds /chat/completions).', max_length=300)),
                    ('model_name', models.CharField(blank=True, max_length=200)),
                    ('api_key_env', models.CharField(blank=True, help_text='Name of the environment variable holding the API key (the key itself is never stored). Empty: no key is sent.', max_length=100, validators=[django.core.validators.RegexValidator('^[A-Za-z_][A-Za-z0-9_]*$', 'An environment variable name.')])),
                    ('timeout_s', models.FloatField(default=60.0, help_text='Seconds to wait for one model reply.', validators=[django.core.validators.MinValueValidator(0.1), django.core.validators.MaxValueValidator(3600)])),
                    ('max_tokens', models.PositiveIntegerField(default=512, validators=[django.core.validators.MinValueValidator(1)])),
                    ('temperature', models.FloatField(default=0.0, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(2.0)])),
                    ('prompt_template', models.TextField(default='As a radiology expert, please provide a detailed report of this chest X-ray image, including FINDINGS and IMPRESSION.\n\nClinical information:\nChief complaint: {chief_complaint}\nHistory: {history}\nLaboratory results: {lab_results}', help_text='Placeholders: {chief_complaint}, {history}, {lab_results}, {prior_imaging}, {age}, {sex}.')),
                    ('image_size', models.PositiveIntegerField(default=384, help_text='Long side scaled to this many pixels, short side padded to a square.', validators=[django.core.validators.MinValueValidator(32), django.core.validators.MaxValueValidator(4096)])),
                    ('pad_value', models.PositiveSmallIntegerField(default=127, help_text='Grey level of the padding.', validators=[django.core.validators.MaxValueValidator(255)])),
                    ('max_attempts', models.PositiveSmallIntegerField(default=5, help_text='Calls per draft before it fails (timeouts, connection errors, 429, 5xx).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(50)])),
                    ('retry_backoff_s', models.FloatField(default=2.0, help_text='First retry delay; doubled each attempt (with jitter), at most 300 s.', validators=[django.core.validators.MinValueValidator(0.0)])),
                    ('concurrency', models.PositiveSmallIntegerField(default=4, help_text='Most calls in flight to this server at once, over all workers.', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(1000)])),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('trial', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='model_endpoints', to='trial.trial')),
                ],
                options={
                    'db_table': 'trial_modelendpoint',
                    'ordering': ['trial', 'name'],
                },
            ),
            migrations.CreateModel(
                name='Draft',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('fingerprint', models.CharField(max_length=16)),
                    ('config', models.JSONField(help_text='The endpoint configuration that made this draft.')),
                    ('backend', models.CharField(choices=[('openai', 'OpenAI-compatible chat completions'), ('demo', 'Demo (offline, not a model)')], max_length=10)),
                    ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=8)),
                    ('attempts', models.PositiveSmallIntegerField(default=0)),
                    ('findings', models.TextField(blank=True)),
                    ('impression', models.TextField(blank=True)),
                    ('raw_response', models.TextField(blank=True, help_text="The model's reply, unparsed.")),
                    ('error', models.TextField(blank=True)),
                    ('model_reported', models.CharField(blank=True, help_text='The model name the server reported.', max_length=200)),
                    ('prompt_tokens', models.PositiveIntegerField(blank=True, null=True)),
                    ('completion_tokens', models.PositiveIntegerField(blank=True, null=True)),
                    ('model_latency_ms', models.PositiveIntegerField(blank=True, help_text='Duration of the successful model call.', null=True)),
                    ('total_latency_ms', models.PositiveIntegerField(blank=True, help_text='From queued to stored, retries included.', null=True)),
                    ('queued_at', models.DateTimeField()),
                    ('sent_at', models.DateTimeField(blank=True, help_text='When its task was last handed to the queue (or is due).', null=True)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('claim', models.CharField(blank=True, help_text='The run that holds it.', max_length=32)),
                    ('lease_until', models.DateTimeField(blank=True, null=True)),
                    ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='drafts', to='trial.case')),
                    ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='drafts', to='drafting.modelendpoint')),
                ],
                options={
                    'db_table': 'trial_draft',
                    'ordering': ['case', '-queued_at'],
                },
            ),
            migrations.AddConstraint(
                model_name='modelendpoint',
                constraint=models.UniqueConstraint(condition=models.Q(('active', True)), fields=('trial',), name='one_active_endpoint'),
            ),
            migrations.AddIndex(
                model_name='draft',
                index=models.Index(fields=['status', 'queued_at'], name='trial_draft_status_c9dc68_idx'),
            ),
            migrations.AddConstraint(
                model_name='draft',
                constraint=models.UniqueConstraint(fields=('case', 'fingerprint'), name='one_draft_per_config'),
            ),
        ]),
    ]
