"""The shared two-trial world of the admin and API tests (see ``tests.support.trial_world``)."""

import pytest

from tests.support.trial_world import World, build_world


@pytest.fixture
def world(db) -> World:
    return build_world()
