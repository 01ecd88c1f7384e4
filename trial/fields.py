"""Model fields the apps share."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from .validators import server_url


class ServerURLFormField(forms.CharField):
    """A server's address as typed: without a scheme it is http (model servers and PACS on a
    hospital's network usually speak plain http)."""

    widget = forms.URLInput

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        if value and "://" not in value:
            value = f"http://{value}"
        return value


class ServerURLField(models.CharField):
    """The address of a server the platform calls (``validators.ServerURL``): a CharField, so
    neither Django's forms nor DRF put their URLValidator (which refuses ``http://model:8000``)
    in front of it; shown as a URL input."""

    default_validators = [server_url]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 300)
        super().__init__(*args, **kwargs)

    def formfield(self, **kwargs: Any) -> forms.Field:
        kwargs.pop("assume_scheme", None)  # what the admin asked of a URLField: always http
        kwargs.setdefault("form_class", ServerURLFormField)
        return super().formfield(**kwargs)
