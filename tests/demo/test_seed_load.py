"""``manage.py seed_load``: the load test's trial (benchmarks/load.py) and its check that no
autosave was lost."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from demo.management.commands.seed_load import totp_key
from rating.models import Campaign, RaterItem
from reader import reading
from reader.models import Reading, Review
from reader.review import reviewable_cases
from trial.dicom.viewer_pixels import viewer_pixels
from trial.models import Assignment, Image, Membership, Role, Trial

PASSWORD = "a-load-test-password"


@pytest.fixture
def load(db, tmp_path) -> dict:
    out = tmp_path / "accounts.json"
    call_command("seed_load", slug="load-t", readers=4, seniors=2, raters=4, coordinators=1,
                 cases_per_reader=3, reviews_per_senior=2, items_per_rater=5, images=2,
                 image_size=(96, 96), password=PASSWORD, out=str(out), throwaway=True,
                 stderr=io.StringIO())
    return json.loads(out.read_text())


def test_the_trial_has_the_people_and_the_work_asked_for(load: dict) -> None:
    trial = Trial.objects.get(slug="load-t")
    assert load["trial"] == "load-t" and trial.status == Trial.Status.READING
    assert len(load["readers"]) == 4 and len(load["seniors"]) == 2
    assert len(load["raters"]) == 4 and len(load["coordinators"]) == 1
    # Every load reader has exactly their unread cases, AI drafts done; nothing read yet.
    for name in load["readers"]:
        member = Membership.objects.get(trial=trial, user__username=name, role=Role.READER)
        assignments = Assignment.objects.filter(reader=member)
        assert assignments.count() == 3
        assert not Reading.objects.filter(assignment__in=assignments).exists()
        for a in assignments.filter(arm="ai_assisted"):
            assert reading.draft_status(a)[0] is not None
    # Each senior has their site's ready cases; the signed ones have a campaign to rate.
    for name in load["seniors"]:
        senior = Membership.objects.get(trial=trial, user__username=name)
        assert reviewable_cases(senior).filter(review__isnull=True).count() == 2
    # 4 raters x 5 items, 2 raters per item, 5 items per case: 2 signed cases.
    assert Review.objects.filter(case__trial=trial, status=Review.Status.SIGNED).count() == \
        load["counts"]["signed"] == 2
    campaign = Campaign.objects.get(pk=load["campaign"])
    assert campaign.status == Campaign.Status.OPEN
    assert RaterItem.objects.filter(campaign=campaign).count() == load["counts"]["rater_items"]
    assert load["counts"]["rater_items"] > 0


def test_every_image_has_its_viewer_files_shared_between_cases(load: dict) -> None:
    images = list(Image.objects.filter(case__trial__slug="load-t"))
    assert len({i.sha256 for i in images}) == 2 < len(images)
    assert all(viewer_pixels(image).exists() for image in images)


def test_accounts_sign_in_with_the_password_and_coordinators_with_their_key(
        load: dict, settings) -> None:
    settings.TWO_FACTOR_ENFORCED = True
    client = Client()
    response = client.post("/accounts/login/", {"username": load["readers"][0],
                                                "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/read/load-t/")
    assert page.status_code == 200
    link = re.search(r'id="next-case" href="([^"]+)"', page.content.decode()).group(1)
    case = client.get(link)
    assert case.status_code == 200 and b'id="reading-urls"' in case.content

    coordinator = load["coordinators"][0]
    assert coordinator["totp_key"] == totp_key("load-t", coordinator["username"])
    device = TOTPDevice.objects.get(user__username=coordinator["username"])
    assert device.confirmed and device.key == coordinator["totp_key"]
    client = Client()
    client.post("/accounts/login/", {"username": coordinator["username"], "password": PASSWORD})
    code = TOTP(bytes.fromhex(coordinator["totp_key"])).token()
    done = client.post("/accounts/two-factor/verify/", {"code": f"{code:06d}", "next": "/"})
    assert done.status_code == 302 and done["Location"] == "/"
    assert client.get("/monitor/load-t/").status_code == 200


def test_a_second_build_needs_another_slug(load: dict) -> None:
    with pytest.raises(CommandError, match="exists already"):
        call_command("seed_load", slug="load-t", throwaway=True, stderr=io.StringIO())


def test_the_check_compares_the_stored_text_with_the_last_save(load: dict, tmp_path) -> None:
    member = Membership.objects.get(user__username=load["readers"][0], role=Role.READER)
    assignment = Assignment.objects.filter(reader=member).order_by("position").first()
    opened = reading.open_reading(assignment, user=member.user)
    reading.autosave(opened, findings="Clear lungs.", impression="Normal.",
                     version=opened.version)
    where = {"kind": "reading", "user": member.user.username, "position": assignment.position}
    stored = {"findings": "Clear lungs.", "impression": "Normal."}
    older = {"findings": "Clear", "impression": ""}

    def check(*entries: dict) -> dict:
        path = tmp_path / "expected.json"
        path.write_text(json.dumps(list(entries)))
        out = io.StringIO()
        try:
            call_command("seed_load", check=str(path), stdout=out)
        finally:
            result = json.loads(out.getvalue())
        return result

    result = check({**where, "acked": stored, "pending": None})
    assert result["equal_to_last_acknowledged"] == 1 and not result["lost"]
    # The save in flight when the test stopped was stored: not lost.
    result = check({**where, "acked": older, "pending": stored})
    assert result["equal_to_save_in_flight_at_stop"] == 1 and not result["lost"]
    # The stored text is older than the last acknowledged save: lost, and the command fails.
    with pytest.raises(CommandError, match="autosaves were lost"):
        check({**where, "acked": {"findings": "Clear lungs. More.", "impression": "Normal."},
               "pending": None})
