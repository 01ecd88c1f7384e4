"""Hooks higher apps connect to from their ``AppConfig.ready()`` (the trial app never imports
them): see ``trial.enrolment.case_enrolled`` for the other one."""

from __future__ import annotations

import django.dispatch

# Sent by the DICOM import (``trial.dicom.importer``) inside its transaction, for each new
# image, after its case is found or made and before the dataset is de-identified:
# ``case``, ``ds`` (the original dataset: read it, never change it) and ``site``. A receiver
# that raises fails that file's import (nothing of it is stored).
before_deidentify = django.dispatch.Signal()
