"""Rating campaigns and their unblinded key in the coordinator's admin."""

from . import campaigns, key  # noqa: F401 - registration side effects
