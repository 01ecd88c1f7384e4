"""What migrations need when a model moves to another app with its table (used by
``trial`` 0006 and ``reader`` 0004; keep it while those migrations exist)."""

from __future__ import annotations

from collections.abc import Callable


def move_content_types(old_label: str, new_label: str,
                       models: tuple[str, ...]) -> tuple[Callable, Callable]:
    """Content types (and so permissions and admin log entries) follow their models."""

    def rename(apps, old: str, new: str) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in models:
            if not ContentType.objects.filter(app_label=old, model=model).exists():
                continue  # a new database: post_migrate makes the new ones
            # One made meanwhile under the new label (``migrate`` of the new app alone) holds
            # only its default permissions: the old one, with every grant and log entry, wins.
            ContentType.objects.filter(app_label=new, model=model).delete()
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)

    def forward(apps, schema_editor) -> None:
        rename(apps, old_label, new_label)

    def backward(apps, schema_editor) -> None:
        rename(apps, new_label, old_label)

    return forward, backward
