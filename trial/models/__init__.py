"""Trial models, split by concept: design, allocation, cases, drafts, audit."""

from .allocation import AllocationSlot, RandomizationList
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
from .drafts import Draft, ModelEndpoint

__all__ = [
    "AllocationSlot",
    "Arm",
    "Assignment",
    "AuditEvent",
    "Case",
    "Draft",
    "EligibilityCriterion",
    "Image",
    "ImportJob",
    "Membership",
    "ModelEndpoint",
    "RandomizationList",
    "Role",
    "Site",
    "Trial",
]
