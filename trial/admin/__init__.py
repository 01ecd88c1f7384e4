"""The coordinator's admin, split by concept; importing the modules registers the pages."""

from . import cases, design, records  # noqa: F401 - registration side effects
