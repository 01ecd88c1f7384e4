"""Bounds every text field gets from its meaning, in the model, so the admin, the API and the
commands share them (hole 17 of the security audit: control characters, newlines and
bidirectional marks in case ids and names; megabytes of history copied into the audit log).
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Free texts of a case (history, complaint ...): a few pages at most.
CLINICAL_TEXT_MAX = 10_000
SHORT_TEXT_MAX = 2_000
# DICOM modality codes (PS3.3 C.7.3.1.1.1): upper-case letters, 2 to 16 of them.
MODALITY = re.compile(r"^[A-Z]{2,16}$")
_ALLOWED_IN_TEXT = {"\n", "\r", "\t"}


def _hidden(text: str, *, multiline: bool) -> list[str]:
    """Control and format characters (bidirectional marks, zero-width ...), by code point."""
    found = []
    for char in text:
        if multiline and char in _ALLOWED_IN_TEXT:
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs"):
            found.append(f"U+{ord(char):04X}")
    return sorted(set(found))


@deconstructible
class PlainText:
    """No control or invisible formatting characters (one line unless ``multiline``)."""

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: str) -> None:
        hidden = _hidden(str(value), multiline=self.multiline)
        if hidden:
            what = "control or invisible characters" if self.multiline else (
                "line breaks, control or invisible characters")
            raise ValidationError(f"Remove the {what} ({', '.join(hidden)}).", code="hidden")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainText) and other.multiline == self.multiline


single_line = PlainText()
multiline = PlainText(multiline=True)


def modality_list(value: object) -> None:
    """A non-empty list of DICOM modality codes, e.g. ``["CR", "DX"]`` (never a string)."""
    if not isinstance(value, list) or not value:
        raise ValidationError('Give a list of DICOM modality codes, e.g. ["CR", "DX"].')
    bad = [v for v in value if not isinstance(v, str) or not MODALITY.match(v)]
    if bad:
        raise ValidationError(f"Not DICOM modality codes: {bad!r}; e.g. CR, DX.")
    if len(value) > 20 or len(set(value)) != len(value):
        raise ValidationError("Name each modality once (at most 20).")


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?$")


@deconstructible
class ServerURL:
    """An http(s) address of a server the platform calls (a model server, a PACS's DICOMweb):
    any host name, one label too (``model``, ``gpu-host``: Docker's and a hospital network's
    names, which Django's URLValidator refuses), an IPv4 or ``[IPv6]`` address, a port and a
    path; no user or password in it (keys live in environment variables), no query."""

    def __call__(self, value: str) -> None:
        import ipaddress
        from urllib.parse import urlsplit

        problem = _hidden(value, multiline=False)
        if problem or any(c.isspace() for c in value):
            raise ValidationError("An address has no spaces or control characters.")
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValidationError("Not an address: check the host and port.") from None
        if parts.scheme not in ("http", "https"):
            raise ValidationError("Start with http:// or https:// (e.g. http://gpu-host:8000/v1).")
        if parts.username or parts.password:
            raise ValidationError("No user or password in the address: the key goes in an "
                                  "environment variable.")
        if parts.query or parts.fragment:
            raise ValidationError("No ? or # part: the address of the server only.")
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST_NAME.match(host) or host.replace(".", "").isdigit():
                raise ValidationError(f"{host or 'The host'!r} is not a host name or an IP "
                                      "address.") from None
        if port == 0:
            raise ValidationError("Port 0 is not a port.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServerURL)


server_url = ServerURL()
