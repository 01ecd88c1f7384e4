"""The forms of the accounts pages: the code pages' one field, "Forgot your password?", and
the admin's *Invite a person*."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm

from trial import people
from trial.errors import ServiceError
from trial.models import Role, Site, Trial
from trial.permissions import trials_where


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", max_length=40, strip=True,
        widget=forms.TextInput(attrs={
            "autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false",
            "autocapitalize": "off", "size": 12,
        }),
    )


class SetupCodeForm(CodeForm):
    """Set-up takes only the authenticator's 6-digit code (no recovery codes exist yet)."""

    code = forms.RegexField(
        label="6-digit code from the app", regex=r"^\s*\d{3}\s?\d{3}\s*$", max_length=12,
        error_messages={"invalid": "Type the 6 digits the app shows now."},
        widget=forms.TextInput(attrs={
            "autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True,
            "size": 8,
        }),
    )


def _same(a: str, b: str) -> bool:
    """Equal ignoring case, as Unicode compares them (what Django's own form does)."""
    return (unicodedata.normalize("NFKC", a).casefold()
            == unicodedata.normalize("NFKC", b or "").casefold())


class ResetForm(PasswordResetForm):
    """Django's form, which says nothing about whether the address is known. Every active
    account with that e-mail gets the link, including one that has no password yet (an
    invitation not taken up: the link is sent again this way); a deactivated one gets none."""

    def get_users(self, email: str) -> Iterator[Any]:
        model = get_user_model()
        field = model.get_email_field_name()
        for user in model._default_manager.filter(**{f"{field}__iexact": email,
                                                      "is_active": True}):
            if _same(email, getattr(user, field)):
                yield user


class InviteForm(forms.Form):
    """The admin's *Invite a person*: the trials and sites are those ``user`` coordinates."""

    trial = forms.ModelChoiceField(queryset=Trial.objects.none())
    email = forms.EmailField(label="E-mail", max_length=254)
    first_name = forms.CharField(max_length=150, required=False,
                                 help_text="Used for a new account only.")
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=[("", "---------"), *Role.choices])  # chosen, never assumed
    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False,
        help_text="A site of the chosen trial; readers need one, seniors without one review "
                  "every site's cases.")
    years_experience = forms.IntegerField(min_value=0, max_value=70, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        trials = trials_where(user, Role.COORDINATOR).exclude(status=Trial.Status.LOCKED)
        self.fields["trial"].queryset = trials.order_by("name")
        self.fields["site"].queryset = Site.objects.filter(
            trial__in=trials).select_related("trial").order_by("trial__name", "code")
        self.fields["site"].label_from_instance = lambda s: f"{s.trial.name}: {s}"

    def clean(self) -> dict:
        data = super().clean()
        trial, role, site = data.get("trial"), data.get("role"), data.get("site")
        if trial is not None and role:
            try:
                people.check_site(trial, role, site)
            except ServiceError as exc:
                self.add_error("site", exc.message)
        return data
