"""An agent opens a damaged-gift ticket (a donor's mail with a photo) and requests a re-shipment
with the photo; a supervisor approves; the outbox sends it to a local fake core, which accepts it
and later calls back with a tracking number; the donor page shows the replacement shipment with
its tracking link."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from donations_sync.models import OutboxMessage
from reshipments.models import Reshipment
from tests.donations_sync.fake_core import FakeCore, change
from tests.e2e.conftest import LiveServer, _test_database_url
from tests.factories import CarrierFactory, tracking_with_check_digit
from tests.reshipments.conftest import (  # noqa: F401 (fixtures)
    damaged_ticket,
    donor_a,
    mailbox_a,
    shipment_a,
    supervisor_a,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SECRET = "e2e-core-callback-secret-0123456789abcdef"


@pytest.fixture
def core():
    fake = FakeCore().start()
    yield fake
    fake.stop()


@pytest.fixture
def server(core):
    """A server of this test's own that talks to the fake core and runs its tasks at once."""
    server = LiveServer(_test_database_url())
    server.env.update(
        {
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "CORE_API_URL": core.url,
            "CORE_API_TOKEN": core.token,
            "CORE_API_READ_TIMEOUT": "5",
            "CORE_FEED_PUSH": "true",
            "CORE_FEED_SECRET": SECRET,
        }
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _context(browser, server):
    context = browser.new_context(base_url=server.url, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(15_000)
    return context


def _core_calls_back(server: LiveServer, changes: list[dict]) -> dict:
    body = json.dumps({"changes": changes}).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{server.url}/core/outbox/answers/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Core-Timestamp": stamp,
            "X-Core-Signature": f"sha256={mac}",
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def test_damaged_gift_to_replacement_with_tracking_link(
    browser,
    browser_login,
    server,
    core,
    city_a,
    agent_a,
    supervisor_a,  # noqa: F811
    shipment_a,  # noqa: F811
    damaged_ticket,  # noqa: F811
):
    CarrierFactory()  # ヤマト運輸, whose code the core names
    agent_context = _context(browser, server)
    page = agent_context.new_page()
    browser_login(page, agent_a)

    # The agent opens the ticket and requests the re-shipment with the donor's photo.
    page.goto(f"/tickets/{damaged_ticket.pk}/")
    expect(page.locator("#reshipments-panel")).to_be_visible()
    page.click("#reshipment-request")
    page.check("input[name=reason][value=damaged]")
    page.check("input[name=fault][value=carrier]")
    page.get_by_label("broken.png").check()
    page.fill("input[name=gift_cost]", "5000")
    page.fill("input[name=shipping_cost]", "1200")
    page.select_option("select[name=desired_time_slot]", "am")
    with page.expect_navigation():
        page.click("#reshipment-submit")
    expect(page.locator("#reshipment-status")).to_have_text("SV承認待ち")
    expect(page.locator('main img[alt="broken.png"]')).to_be_visible()
    expect(page.locator("#approve")).to_have_count(0)  # an agent cannot approve
    reshipment = Reshipment.objects.get()
    agent_context.close()

    # The supervisor approves from the list of what waits for them.
    sv_context = _context(browser, server)
    page = sv_context.new_page()
    browser_login(page, supervisor_a)
    page.goto("/reshipments/")
    page.click(f"text=再送 #{reshipment.pk}")
    page.fill("#approve-comment", "配送業者へ事故報告済み")
    with page.expect_navigation():
        page.click("#approve")
    # Sent to the core at once (after the commit) and accepted there.
    expect(page.locator("#reshipment-status")).to_have_text("基幹受付済")
    assert core.decision_requests == 1
    assert core.decisions[reshipment.idempotency_key]["payload"]["reason"] == "damaged"
    message = OutboxMessage.objects.get()
    assert message.status == "accepted"

    # The core calls back with the replacement's tracking number.
    number = tracking_with_check_digit("40009876543")
    answer = change(
        "cb-1",
        "decision",
        "2026-12-01T09:00:00+09:00",
        {
            "idempotency_key": reshipment.idempotency_key,
            "answer": "tracking",
            "carrier": "yamato",
            "tracking_number": number,
        },
    )
    assert _core_calls_back(server, [answer]) == {"results": [{"id": "cb-1", "outcome": "applied"}]}

    reshipment.refresh_from_db()
    assert reshipment.status == Reshipment.Status.SHIPPED
    replacement = reshipment.replacement
    assert replacement.tracking_number == number

    # The donor page shows the replacement, marked 再送, with its tracking link.
    page.goto(f"/donors/{shipment_a.donation.donor_id}/")
    row = page.locator(f"#shipment-{replacement.pk}")
    expect(row.locator(f'[data-replaces="{shipment_a.pk}"]')).to_have_text("再送")
    link = row.locator(f'a[href="{replacement.tracking_url}"]')
    expect(link).to_be_visible()
    expect(link).to_contain_text("ヤマト")
    # And the ticket's timeline tells the story.
    page.goto(f"/tickets/{damaged_ticket.pk}/")
    timeline = page.locator("#timeline-section")
    expect(timeline).to_contain_text("再送を依頼")
    expect(timeline).to_contain_text("再送をSVが承認")
    expect(timeline).to_contain_text("再送を発送しました（ヤマト")
    sv_context.close()
