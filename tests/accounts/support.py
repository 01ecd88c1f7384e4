"""What the accounts tests share: the public origin they set, and reading links from e-mails."""

from __future__ import annotations

import re

SITE_URL = "https://trials.example.org"
LINK = re.compile(r"https?://\S+/accounts/(?:welcome|password/reset)/[\w-]+/[\w-]+/")


def link_in(message) -> str:
    """The one set-password link of an e-mail."""
    found = LINK.findall(message.body)
    assert len(found) == 1, message.body
    return found[0]


def path_of(link: str) -> str:
    assert link.startswith(SITE_URL + "/"), link
    return link[len(SITE_URL):]
