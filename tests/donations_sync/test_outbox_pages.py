"""The supervisors' outbox page: scoped to their municipalities, filters, dead letters with their
reason, retry and cancel (audited)."""

from __future__ import annotations

import pytest

from crm.models import AuditLog, User
from donations_sync.models import OutboxMessage
from tests.factories import ShipmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def message(municipality, key: str, **fields) -> OutboxMessage:
    shipment = ShipmentFactory(
        donation__donor__municipality=municipality, gift_item__municipality=municipality
    )
    return OutboxMessage.objects.create(
        municipality=municipality,
        kind=fields.pop("kind", OutboxMessage.Kind.RESHIPMENT),
        payload=fields.pop("payload", {"reason": "破損"}),
        idempotency_key=key,
        shipment=shipment,
        donation=shipment.donation,
        **fields,
    )


@pytest.fixture
def messages_ab(city_a, city_b):
    dead_a = message(
        city_a,
        "a-dead",
        status="dead",
        attempts=15,
        last_error="15回送信できませんでした: 基幹システムが 503 を返しました",
    )
    accepted_a = message(
        city_a,
        "a-ok",
        kind=OutboxMessage.Kind.ADDRESS_CHANGE,
        status="accepted",
        core_reference="R-A1",
    )
    dead_b = message(city_b, "b-dead", status="dead", attempts=15, last_error="福山の理由")
    return dead_a, accepted_a, dead_b


@pytest.fixture
def supervisor_a(city_a):
    return UserFactory(username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a])


def test_a_supervisor_sees_their_municipalities_dead_letters_with_the_reason(
    login, supervisor_a, messages_ab
):
    dead_a, accepted_a, dead_b = messages_ab
    page = login(supervisor_a).get("/outbox/?status=dead").content.decode()
    assert "15回送信できませんでした" in page
    assert f'data-outbox-id="{dead_a.pk}"' in page
    assert f'data-outbox-id="{accepted_a.pk}"' not in page  # filtered out by state
    assert f'data-outbox-id="{dead_b.pk}"' not in page  # another municipality's
    assert "福山の理由" not in page
    assert "再送" in page and "配信停止" in page

    by_kind = login(supervisor_a).get("/outbox/?kind=address_change").content.decode()
    assert f'data-outbox-id="{accepted_a.pk}"' in by_kind
    assert f'data-outbox-id="{dead_a.pk}"' not in by_kind
    assert "R-A1" in by_kind


def test_an_operator_admin_sees_every_municipality(login, operator_admin, messages_ab):
    page = login(operator_admin).get("/outbox/").content.decode()
    for m in messages_ab:
        assert f'data-outbox-id="{m.pk}"' in page


@pytest.mark.parametrize("role", ["agent", "city_official"])
def test_agents_and_city_officials_are_refused(login, city_a, messages_ab, role):
    user = UserFactory(username=f"u_{role}", role=role, municipalities=[city_a])
    client = login(user)
    assert client.get("/outbox/").status_code == 403
    dead_a = messages_ab[0]
    assert client.post(f"/outbox/{dead_a.pk}/retry/").status_code == 403
    dead_a.refresh_from_db()
    assert dead_a.status == "dead"


def test_retry_and_cancel_are_audited_and_scoped(
    login, supervisor_a, messages_ab, django_capture_on_commit_callbacks, settings
):
    settings.CORE_API_URL = ""  # not configured: the retried message waits for the sweep
    dead_a, accepted_a, dead_b = messages_ab
    client = login(supervisor_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/outbox/{dead_a.pk}/retry/", {"next": "/outbox/?status=dead"})
    assert response.status_code == 302 and response["Location"] == "/outbox/?status=dead"
    dead_a.refresh_from_db()
    assert dead_a.status == "pending" and dead_a.attempts == 0
    assert dead_a.next_attempt_at is not None
    row = AuditLog.objects.get(action="outbox_retry")
    assert row.user == supervisor_a and row.detail["outbox_message"] == dead_a.pk
    assert row.detail["previous_status"] == "dead"

    response = client.post(f"/outbox/{dead_a.pk}/cancel/", {"reason": "寄附者が辞退"})
    assert response.status_code == 302
    dead_a.refresh_from_db()
    assert dead_a.status == "cancelled" and dead_a.last_error == "取消: 寄附者が辞退"
    assert AuditLog.objects.get(action="outbox_cancel").detail["reason"] == "寄附者が辞退"

    # Another municipality's message does not exist for this supervisor.
    assert client.post(f"/outbox/{dead_b.pk}/retry/").status_code == 404
    assert client.post(f"/outbox/{dead_b.pk}/cancel/").status_code == 404
    dead_b.refresh_from_db()
    assert dead_b.status == "dead"

    # An accepted message is neither retried nor cancelled; the page says why.
    response = client.post(f"/outbox/{accepted_a.pk}/cancel/", follow=True)
    assert "取り消せません" in response.content.decode()
    accepted_a.refresh_from_db()
    assert accepted_a.status == "accepted"
    assert AuditLog.objects.filter(action__startswith="outbox_").count() == 2


def test_an_open_redirect_is_not_followed(login, supervisor_a, messages_ab, settings):
    settings.CORE_API_URL = ""
    response = login(supervisor_a).post(
        f"/outbox/{messages_ab[0].pk}/retry/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == "/outbox/"
