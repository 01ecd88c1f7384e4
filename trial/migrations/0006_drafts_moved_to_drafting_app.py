# ModelEndpoint and Draft move to the drafting app (tables kept).

from django.db import migrations


def move_content_types(old_label: str, new_label: str, models: tuple[str, ...]):
    """Content types (and so permissions and admin log entries) follow their models."""

    def forward(apps, schema_editor) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in models:
            if not ContentType.objects.filter(app_label=new_label, model=model).exists():
                ContentType.objects.filter(app_label=old_label, model=model).update(
                    app_label=new_label)

    def backward(apps, schema_editor) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in models:
            if not ContentType.objects.filter(app_label=old_label, model=model).exists():
                ContentType.objects.filter(app_label=new_label, model=model).update(
                    app_label=old_label)

    return forward, backward


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
