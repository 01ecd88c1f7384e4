"""An e-mail backend for the tests: the locmem outbox, except that one address is refused as an
SMTP server would refuse it."""

from __future__ import annotations

import smtplib

from django.core.mail.backends.locmem import EmailBackend

REFUSED: set[str] = set()


class RefusingBackend(EmailBackend):
    def send_messages(self, messages):
        for message in messages:
            refused = [a for a in message.recipients() if a in REFUSED]
            if refused:
                raise smtplib.SMTPRecipientsRefused(
                    {a: (550, b"5.1.1 mailbox unavailable") for a in refused})
        return super().send_messages(messages)
