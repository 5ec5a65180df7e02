"""The core's pushes (POST /core/feed/, HMAC-signed, replay window, idempotent) and the
supervisors' list of 保留 changes, scoped by municipality."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from crm.models import AuditLog, User
from donations_sync.models import CoreChange, Donation
from donations_sync.signals import core_change_applied
from tests.donations_sync.fake_core import change
from tests.factories import DonationFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "push-secret-of-the-test-suite-0123456789"
T1 = "2026-11-30T10:00:00+09:00"
T2 = "2026-11-30T11:00:00+09:00"


@pytest.fixture(autouse=True)
def push_on(settings):
    settings.CORE_FEED_PUSH = True
    settings.CORE_FEED_SECRET = SECRET
    settings.CORE_FEED_REPLAY_WINDOW_SECONDS = 300


@pytest.fixture
def donation(city_a):
    return DonationFactory(donor__municipality=city_a, external_id="EXT-P1", status="applied")


@pytest.fixture
def announced():
    seen: list[str] = []

    def receiver(sender, change_id, **kwargs):
        seen.append(change_id)

    core_change_applied.connect(receiver, dispatch_uid="test-push-announced")
    yield seen
    core_change_applied.disconnect(dispatch_uid="test-push-announced")


def sign(body: bytes, *, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    """As the core signs: HMAC-SHA256 over "<timestamp>.<body>" with the shared secret."""
    timestamp = str(int(time.time() if at is None else at))
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_CORE_TIMESTAMP": timestamp, "HTTP_X_CORE_SIGNATURE": f"sha256={mac}"}


def push(body: bytes, **headers: str):
    # No session, and CSRF checked as for any browser request: the endpoint must not need either.
    client = Client(enforce_csrf_checks=True)
    return client.post("/core/feed/", body, content_type="application/json", **headers)


def paid(change_id: str = "p1", at: str = T1) -> bytes:
    data = {"external_id": "EXT-P1", "status": "paid", "paid_on": "2026-11-29"}
    return json.dumps({"changes": [change(change_id, "donation", at, data)]}).encode()


def test_a_signed_push_is_applied_once(donation, announced, django_capture_on_commit_callbacks):
    body = paid()
    with django_capture_on_commit_callbacks(execute=True):
        response = push(body, **sign(body))
    assert response.status_code == 200
    assert response.json() == {"results": [{"id": "p1", "outcome": "applied"}]}
    donation.refresh_from_db()
    assert donation.status == "paid" and str(donation.paid_on) == "2026-11-29"
    record = CoreChange.objects.get(change_id="p1")
    assert record.source == "push" and record.donation == donation

    # The same request again (a retry, or a replay inside the window): 200, nothing applied.
    with django_capture_on_commit_callbacks(execute=True):
        again = push(body, **sign(body))
    assert again.status_code == 200
    assert again.json() == {"results": [{"id": "p1", "outcome": "duplicate"}]}
    assert announced == ["p1"]
    assert CoreChange.objects.count() == 1


def test_a_single_change_body_and_out_of_order_pushes(donation):
    newer = json.dumps(
        change("p2", "donation", T2, {"external_id": "EXT-P1", "status": "refunded"})
    ).encode()
    assert push(newer, **sign(newer)).json()["results"][0]["outcome"] == "applied"
    older = paid("p3", T1)
    assert push(older, **sign(older)).json()["results"][0]["outcome"] == "stale"
    donation.refresh_from_db()
    assert donation.status == "refunded" and donation.paid_on is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_CORE_TIMESTAMP": str(int(time.time()))},
        {"HTTP_X_CORE_SIGNATURE": "sha256=00"},
        "wrong-secret",
        "tampered",
        "too-old",
        "too-far-ahead",
        "not-a-number",
    ],
)
def test_unsigned_badly_signed_or_replayed_pushes_are_refused(donation, headers):
    body = paid()
    if headers == "wrong-secret":
        headers = sign(body, secret="another-secret-of-someone-else-0123456")
    elif headers == "tampered":
        headers = sign(body)
        body = body.replace(b"paid", b"refunded", 1)
    elif headers == "too-old":
        headers = sign(body, at=time.time() - 310)
    elif headers == "too-far-ahead":
        headers = sign(body, at=time.time() + 310)
    elif headers == "not-a-number":
        headers = {**sign(body), "HTTP_X_CORE_TIMESTAMP": "yesterday"}
    response = push(body, **headers)
    assert response.status_code == 401
    assert not CoreChange.objects.exists()
    donation.refresh_from_db()
    assert donation.status == "applied"


def test_inside_the_window_is_accepted(donation):
    body = paid()
    assert push(body, **sign(body, at=time.time() - 290)).status_code == 200


def test_pushes_are_refused_while_pushing_is_off(settings, donation):
    settings.CORE_FEED_PUSH = False
    body = paid()
    assert push(body, **sign(body)).status_code == 401
    settings.CORE_FEED_PUSH = True
    settings.CORE_FEED_SECRET = ""
    assert push(body, **sign(body, secret="")).status_code == 401


def test_malformed_json_is_kept_and_answered_400(donation):
    body = b'{"changes": [{"id": "p9", "type": "donation", '  # cut short
    response = push(body, **sign(body))
    assert response.status_code == 400
    kept = CoreChange.objects.get()
    assert kept.outcome == "quarantined" and kept.source == "push"
    assert kept.reason.startswith("JSON として読めません")
    assert kept.raw == body.decode() and kept.municipality is None
    # The core sends it again: still one row, counted.
    assert push(body, **sign(body)).status_code == 400
    kept.refresh_from_db()
    assert CoreChange.objects.count() == 1 and kept.attempts == 2

    not_a_list = b'{"changes": "p9"}'
    assert push(not_a_list, **sign(not_a_list)).status_code == 400
    assert CoreChange.objects.count() == 2


def test_a_change_that_cannot_be_applied_is_kept(donation, city_a):
    body = json.dumps(
        {
            "changes": [
                change("p5", "donation", T1, {"external_id": "EXT-NONE", "status": "paid"}),
                {"type": "donation"},
            ]
        }
    ).encode()
    response = push(body, **sign(body))
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": "p5", "outcome": "quarantined"},
        {"id": None, "outcome": "quarantined"},
    ]
    assert CoreChange.objects.get(change_id="p5").municipality == city_a


def test_get_is_not_allowed():
    assert Client().get("/core/feed/").status_code == 405


# --- The 保留 list ----------------------------------------------------------------------------


@pytest.fixture
def kept(city_a, city_b):
    """One 保留 change of each city and one naming no known municipality."""
    for code, external_id in (("012033", "A-ONLY-1"), ("342076", "B-ONLY-1"), ("999999", "X-1")):
        body = json.dumps(
            change(
                f"k-{external_id}",
                "donation",
                T1,
                {"external_id": external_id},
                municipality_code=code,
            )
        ).encode()
        assert push(body, **sign(body)).status_code == 200
    return {c.change_id: c for c in CoreChange.objects.all()}


def _page(client: Client) -> str:
    response = client.get("/core/feed/quarantine/")
    assert response.status_code == 200
    return response.content.decode()


def test_each_supervisor_sees_their_cities_and_admins_also_the_unknown(login, kept, city_a, city_b):
    supervisor_b = UserFactory(role=User.Role.SUPERVISOR, municipalities=[city_b])
    page = _page(login(supervisor_b))
    assert "B-ONLY-1" in page
    assert "A-ONLY-1" not in page and "X-1" not in page

    supervisor_a = UserFactory(role=User.Role.SUPERVISOR, municipalities=[city_a])
    page = _page(login(supervisor_a))
    assert "A-ONLY-1" in page and "小樽市に該当する寄附が見つかりません" in page
    assert "B-ONLY-1" not in page and "X-1" not in page

    page = _page(login(UserFactory(role=User.Role.OPERATOR_ADMIN)))
    assert all(word in page for word in ("A-ONLY-1", "B-ONLY-1", "X-1"))
    assert "団体コード「999999」の自治体が登録されていません" in page


@pytest.mark.parametrize("role", ["agent", "city_official"])
def test_agents_and_city_officials_do_not_see_the_list(login, kept, city_a, role):
    user = UserFactory(role=role, municipalities=[city_a])
    assert login(user).get("/core/feed/quarantine/").status_code == 403


def test_retry_from_the_list(login, kept, city_a, city_b):
    change_a = kept["k-A-ONLY-1"]
    supervisor_b = UserFactory(role=User.Role.SUPERVISOR, municipalities=[city_b])
    url = f"/core/feed/quarantine/{change_a.pk}/retry/"
    assert login(supervisor_b).post(url).status_code == 404
    change_a.refresh_from_db()
    assert change_a.attempts == 1

    supervisor_a = login(UserFactory(role=User.Role.SUPERVISOR, municipalities=[city_a]))
    response = supervisor_a.post(url, follow=True)
    assert "保留のままです" in response.content.decode()
    DonationFactory(donor__municipality=city_a, external_id="A-ONLY-1")
    response = supervisor_a.post(url, follow=True)
    assert "再処理しました（反映済）" in response.content.decode()
    change_a.refresh_from_db()
    assert change_a.outcome == "applied" and change_a.attempts == 3
    assert change_a.retried_by.role == User.Role.SUPERVISOR and change_a.retried_at
    assert "A-ONLY-1" not in _page(supervisor_a)
    assert Donation.objects.get(external_id="A-ONLY-1").core_updated_at is not None


def test_each_retry_from_the_list_is_in_the_audit_log_with_its_outcome(login, kept, city_a):
    change_a = kept["k-A-ONLY-1"]
    url = f"/core/feed/quarantine/{change_a.pk}/retry/"
    supervisor = UserFactory(
        username="sv_retry", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    client = login(supervisor)
    client.post(url, REMOTE_ADDR="192.0.2.10")
    DonationFactory(donor__municipality=city_a, external_id="A-ONLY-1")
    client.post(url, REMOTE_ADDR="192.0.2.10")
    client.post(url)  # applied already: nothing retried, nothing logged

    rows = list(AuditLog.objects.filter(action=AuditLog.Action.CORE_CHANGE_RETRY).order_by("at"))
    assert [(r.user, r.username, r.ip_address) for r in rows] == [
        (supervisor, "sv_retry", "192.0.2.10"),
        (supervisor, "sv_retry", "192.0.2.10"),
    ]
    still_kept, applied = (r.detail for r in rows)
    assert still_kept["core_change"] == applied["core_change"] == change_a.pk
    assert still_kept["change_id"] == "k-A-ONLY-1" and still_kept["source"] == "push"
    assert still_kept["outcome"] == "quarantined" and still_kept["attempts"] == 2
    assert "小樽市に該当する寄附が見つかりません" in still_kept["reason"]
    assert applied["outcome"] == "applied" and applied["reason"] == ""
    assert rows[0].get_action_display() == "基幹システム変更（保留）の再処理"
