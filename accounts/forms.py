"""The one field of the code pages."""

from __future__ import annotations

from django import forms


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
