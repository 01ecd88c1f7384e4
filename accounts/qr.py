"""The set-up QR code as inline SVG: drawn here, never by an outside service, and no script."""

from __future__ import annotations

import segno
from django.utils.safestring import SafeString, mark_safe


def svg(uri: str) -> SafeString:
    """``uri`` as a QR code, an ``<svg>`` element to put in the page as it is.

    Safe to mark so: segno writes only the element, its size and a path of the modules, never
    the text it encodes.
    """
    code = segno.make(uri, error="m", micro=False)
    return mark_safe(code.svg_inline(scale=5, border=4, dark="#000", light="#fff", omitsize=True,
                                     title="QR code to scan with an authenticator app"))  # noqa: S308
