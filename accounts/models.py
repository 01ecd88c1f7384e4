"""``Person``: the admin's *People* page, a view of the user accounts (no table of its own)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

User = get_user_model()


class Person(User):
    """A user account as a trial's coordinator sees it (``accounts.admin.PersonAdmin``)."""

    class Meta:
        proxy = True
        verbose_name = "person"
        verbose_name_plural = "people"
