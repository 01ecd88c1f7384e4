"""pynetdicom, imported by the modules that speak DIMSE (never at start-up: it takes about a
second), with its identifier logging off: it logs every C-FIND, C-MOVE and C-STORE identifier
at INFO, and accession numbers and original UIDs must never reach the logs."""

from __future__ import annotations

import pynetdicom._config as _config
from pynetdicom import AE, evt

_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

__all__ = ["AE", "evt"]
