"""``manage.py dicom_listener [--port N] [--ae-title T] [--host H]``: receive studies from PACS.

Runs in the foreground until SIGTERM or SIGINT (a container's stop, Ctrl-C), then stops
listening and lets an import in progress finish. Each association, accepted or refused, is
logged at INFO (refusals at WARNING) by ``pacs.listener``.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pacs import intake
from pacs.listener import SETTLE_EVERY, Listener
from pacs.models import AE_TITLE, CallingAE


class Command(BaseCommand):
    help = (
        "Run the DICOM listener (C-STORE and C-ECHO SCP): studies sent by the sites' calling "
        "AE titles are imported into their trial once they have been quiet for "
        "DICOM_STUDY_QUIET_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=None,
                            help="TCP port (default: DICOM_LISTENER_PORT)")
        parser.add_argument("--ae-title", default=None,
                            help="Our AE title (default: DICOM_LISTENER_AE_TITLE)")
        parser.add_argument("--host", default="0.0.0.0", help="Address to bind (default: all)")
        parser.add_argument("--settle-every", type=float, default=SETTLE_EVERY,
                            help="Seconds between two looks for quiet studies")

    def handle(self, *args, **options) -> None:
        ae_title = options["ae_title"] or settings.DICOM_LISTENER_AE_TITLE
        try:
            AE_TITLE(ae_title)
        except ValidationError as exc:
            raise CommandError(f"AE title {ae_title!r}: {' '.join(exc.messages)}") from None
        port = options["port"] if options["port"] is not None else settings.DICOM_LISTENER_PORT
        if not 0 <= port <= 65535:
            raise CommandError(f"Port {port} is not a TCP port.")
        # pynetdicom narrates every PDU at INFO; ours are the lines an operator wants.
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        listener = Listener(ae_title=ae_title, port=port, host=options["host"],
                            settle_every=options["settle_every"])
        try:
            listener.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{port}: {exc}") from None
        callers = CallingAE.objects.count()
        self.stdout.write(
            f"DICOM listener {listener.ae_title} on {listener.host}:{listener.port}; "
            f"{callers} calling AE title(s) allowed; spool {intake.spool_root()}; a study is "
            f"imported after {intake.quiet_seconds():g} s quiet. SIGTERM or Ctrl-C stops it.")
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            listener.stop()
        self.stdout.write("DICOM listener stopped.")
