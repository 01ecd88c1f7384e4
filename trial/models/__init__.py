"""Trial models, split by concept: design, allocation, cases, audit."""

from .allocation import AllocationSlot, RandomizationExtension, RandomizationList
from .audit import AuditEvent
from .cases import Assignment, Case, Image, ImportJob
from .design import (
    Arm,
    EligibilityCriterion,
    Membership,
    Role,
    Site,
    Trial,
)
from .signatures import Signature

__all__ = [
    "AllocationSlot",
    "Arm",
    "Assignment",
    "AuditEvent",
    "Case",
    "EligibilityCriterion",
    "Image",
    "ImportJob",
    "Membership",
    "RandomizationExtension",
    "RandomizationList",
    "Role",
    "Signature",
    "Site",
    "Trial",
]
