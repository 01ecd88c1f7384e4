"""Admin pages of the models that moved app keep working from old bookmarks: the draft and
model-endpoint pages moved from /admin/trial/ to /admin/drafting/, the campaign pages and the
unblinded key from /admin/reader/ to /admin/rating/."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("old", "new"), [
    ("/admin/trial/draft/", "/admin/drafting/draft/"),
    ("/admin/trial/draft/7/change/", "/admin/drafting/draft/7/change/"),
    ("/admin/trial/modelendpoint/add/", "/admin/drafting/modelendpoint/add/"),
    ("/admin/reader/campaign/3/build/", "/admin/rating/campaign/3/build/"),
    ("/admin/reader/rateritem/", "/admin/rating/rateritem/"),
])
def test_old_admin_addresses_redirect_to_the_new_ones(client, old: str, new: str) -> None:
    response = client.get(old + "?status__exact=failed")
    assert response.status_code == 307  # a POST (an admin tool) is repeated as a POST
    assert response["Location"] == new + "?status__exact=failed"
    assert client.post(old)["Location"] == new


def test_pages_that_did_not_move_are_not_redirected(client) -> None:
    """The reader's own admin pages (readings, reviews) stay under /admin/reader/."""
    response = client.get("/admin/reader/reading/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
