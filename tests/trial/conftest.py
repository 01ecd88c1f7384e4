"""The shared two-trial world of the admin and API tests (see ``tests.trial.world``)."""

import pytest

from tests.trial.world import World, build_world


@pytest.fixture
def world(db) -> World:
    return build_world()
