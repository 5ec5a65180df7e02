"""The agent's ticket page in a real browser at 1280×720: links, title and assignee; a 定型文
that acts on the ticket; a draft that survives a reload and a status change; merge; an @mention
reaching a colleague's console live; and a call logged by keyboard alone, keys counted."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.models import User
from tests.factories import DonorFactory, ShipmentFactory, UserFactory, tracking_with_check_digit
from tickets import services
from tickets.models import Channel, Draft, Inquiry, InquiryEvent, Mention, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
LIVE_MS = 15_000
VIEWPORT = {"width": 1280, "height": 720}
SCREENSHOT = Path(tempfile.gettempdir()) / "ticket-page-1280x720.png"


@pytest.fixture
def colleague(city_a):
    return UserFactory(
        username="sato", display_name="佐藤", role=User.Role.AGENT, municipalities=[city_a]
    )


def _open(agent, city, **fields) -> Inquiry:
    values = {"channel": Channel.PHONE, "title": "電話 090-1234-5678", "description": ""}
    values.update(fields)
    return services.inquiry_open(actor=agent, municipality=city, **values)


def _in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]


def test_edit_title_links_and_assignee(page, browser_login, agent_a, colleague, city_a):
    donor = DonorFactory(municipality=city_a, name="山田 花子", name_kana="ヤマダ ハナコ")
    shipment = ShipmentFactory(donation__donor=donor)
    inquiry = _open(agent_a, city_a)
    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")

    page.locator("#retitle summary").click()
    page.locator("#retitle-input").fill("返礼品が届かない")
    with page.expect_navigation():
        page.locator("#retitle button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("返礼品が届かない")

    page.locator("body").press("l")
    page.wait_for_url(re.compile(rf"/tickets/{inquiry.pk}/links/"))
    page.locator("#links-q").fill("ヤマダ")
    page.locator("#links-q").press("Enter")
    with page.expect_navigation():
        page.locator(f"[data-link-donor='{donor.pk}']").click()
    page.locator(f"input[name=shipments][value='{shipment.pk}']").check()
    page.locator(f"input[name=donations][value='{shipment.donation_id}']").check()
    with page.expect_navigation():
        page.locator("#links-form button[value=link]").click()
    page.goto(f"/tickets/{inquiry.pk}/")
    expect(page.locator(f"#linked-shipment-{shipment.pk}")).to_be_visible()
    expect(page.locator("#customer-panel")).to_contain_text("山田 花子")

    # Any agent of the municipality, chosen from the keyboard: A focuses the assignee.
    page.locator("body").press("a")
    expect(page.locator("#composer-assignee")).to_be_focused()
    page.select_option("#composer-assignee", str(colleague.pk))
    with page.expect_navigation():
        page.locator("#status-submit").click()
    expect(page.locator(".record-header")).to_contain_text("佐藤")
    inquiry.refresh_from_db()
    assert inquiry.ticket.title == "返礼品が届かない"
    assert inquiry.donor == donor and list(inquiry.shipments.all()) == [shipment]
    assert inquiry.ticket.assigned_to == colleague
    kinds = set(InquiryEvent.objects.filter(inquiry=inquiry).values_list("kind", flat=True))
    assert {"title", "link", "assign"} <= kinds


def test_macro_fills_the_composer_and_one_send_applies_it(page, browser_login, agent_a, city_a):
    donor = DonorFactory(municipality=city_a, name="鈴木 一郎")
    shipment = ShipmentFactory(donation__donor=donor)
    inquiry = _open(agent_a, city_a, donor=donor, donations=[shipment.donation])
    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    page.locator("#canned-q").fill("再発行を受付")
    expect(page.locator("#canned-actions")).to_contain_text("状態→対応中")
    page.locator("#canned-insert").click()
    expect(page.locator("#status-select")).to_have_value(str(Status.IN_PROGRESS))
    expect(page.locator("#composer-category")).to_have_value("receipt")
    expect(page.locator("#macro-summary")).to_contain_text("再発行を自治体へ依頼")
    expect(page.locator("#reply-body")).to_have_value(re.compile("鈴木 一郎 様"))
    with page.expect_navigation():
        page.locator("#send").click()
    expect(page.locator("#ticket-status")).to_have_text("対応中")
    expect(page.locator("#timeline")).to_contain_text("定型文「受領証明書の再発行を受付」")
    inquiry.refresh_from_db()
    assert inquiry.status == Status.IN_PROGRESS and inquiry.category.code == "receipt"
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").count() == 1


def test_draft_survives_a_reload_and_a_status_change(page, browser_login, agent_a, city_a):
    inquiry = _open(agent_a, city_a)
    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    body = page.locator("#reply-body")
    body.click()
    page.keyboard.type("ご住所を確認のうえ折り返します")
    expect(page.locator("#draft-state")).to_contain_text("下書きを保存しました")
    page.reload()
    expect(body).to_have_value(re.compile("ご住所を確認のうえ折り返します"))
    expect(page.locator("#draft-state")).to_contain_text("下書きを復元しました")

    # Leaving with text not saved yet asks first (and keeps the text either way).
    body.click()
    page.keyboard.type("。")
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.locator("#merge-link").click()
    expect(body).to_be_visible()
    page.wait_for_timeout(300)
    assert dialogs == ["beforeunload"]
    expect(page.locator("#draft-state")).to_contain_text("下書きを保存しました")

    # A status change (変更のみ保存) keeps the draft.
    page.select_option("#status-select", str(Status.IN_PROGRESS))
    with page.expect_navigation():
        page.locator("#status-submit").click()
    expect(page.locator("#ticket-status")).to_have_text("対応中")
    expect(body).to_have_value(re.compile("折り返します。"))
    assert Draft.objects.get(inquiry=inquiry, user=agent_a).body.strip().endswith("。")


def test_merge_with_preview(page, browser_login, agent_a, city_a):
    donor = DonorFactory(municipality=city_a, name="高橋 三郎")
    phone = _open(agent_a, city_a, title="届かない（電話）", donor=donor)
    mail = _open(agent_a, city_a, title="届かない（メール）", donor=donor, channel=Channel.EMAIL)
    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    page.goto(f"/tickets/{phone.pk}/")
    page.locator("body").press("m")
    page.wait_for_url(re.compile(rf"/tickets/{phone.pk}/merge/"))
    page.locator("#merge-q").fill(f"#{mail.pk}")
    page.locator("#merge-q").press("Enter")
    page.locator("#merge-candidates a", has_text="届かない（メール）").click()
    expect(page.locator(".merge-preview")).to_contain_text("届かない（電話）")
    expect(page.locator(".merge-preview")).to_contain_text("届かない（メール）")
    with page.expect_navigation():
        page.locator("#merge-confirm").click()
    assert page.url.endswith(f"/tickets/{mail.pk}/")
    expect(page.locator("#timeline")).to_contain_text(f"問合せ #{phone.pk} を統合")
    phone.refresh_from_db()
    assert phone.status == Status.DUPLICATE


def test_mention_reaches_the_colleagues_console_live(
    page, browser, browser_login, live_server_url, agent_a, colleague, city_a
):
    inquiry = _open(agent_a, city_a, title="住所変更の確認")
    context = browser.new_context(base_url=live_server_url, viewport=VIEWPORT)
    console = context.new_page()
    browser_login(console, colleague)
    console.goto("/console/")
    expect(console.locator("#mentions")).to_contain_text("メンションはありません")
    expect(console.locator("#console-connection")).to_have_attribute("data-live", "open")

    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    page.locator("body").press("r")
    page.keyboard.type("@sa")
    expect(page.locator("#mention-list")).to_contain_text("佐藤")
    page.keyboard.press("Enter")
    expect(page.locator("#reply-body")).to_have_value(re.compile(r"@sato $"))
    page.keyboard.type("新住所の確認をお願いします")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    expect(page.locator(".messages")).to_contain_text("@sato")

    # Without a reload: the console hears it over its socket and shows the mention.
    expect(console.locator("#mentions")).to_contain_text(
        f"#{inquiry.pk} 住所変更の確認", timeout=LIVE_MS
    )
    expect(console.locator("#mentions")).to_contain_text("未読")
    assert Mention.objects.get().mentioned == colleague
    context.close()


def test_keyboard_only_call_about_a_shipment(page, browser_login, agent_a, city_a):
    """Console search → donor page 「この配送で問合せ」 → 定型文 (macro) → 送信して解決, by keyboard
    alone at 1280×720; every key that is not typed text is counted."""
    donor = DonorFactory(municipality=city_a, name="山田 太郎", name_kana="ヤマダ タロウ")
    tracking = tracking_with_check_digit("40000000001")
    ShipmentFactory(donation__donor=donor, tracking_number=tracking_with_check_digit("40000000002"))
    shipment = ShipmentFactory(donation__donor=donor, tracking_number=tracking)
    page.set_viewport_size(VIEWPORT)
    browser_login(page, agent_a)
    keys: list[str] = []

    def press(key: str) -> None:
        keys.append(key)
        page.keyboard.press(key)

    page.goto("/console/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type(tracking)
    expect(page.locator(".hits a").first).to_contain_text("配送")
    press("Enter")
    page.wait_for_url(re.compile(rf"/donors/{donor.pk}/#shipment-{shipment.pk}"))

    # From the shipment jumped to, Tab to its 「この配送で問合せ」.
    target = page.locator(f"#shipment-{shipment.pk} >> text=この配送で問合せ")
    for _ in range(15):
        press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            break
    expect(target).to_be_focused()
    press("Enter")
    page.wait_for_url(re.compile(r"/tickets/new/"))
    expect(page.locator("input[name=title]")).to_be_focused()
    page.keyboard.type("受領証明書が届かない")
    with page.expect_navigation():
        press("Control+Enter")
    page.wait_for_url(re.compile(r"/tickets/\d+/$"))
    # Status and the composer are on screen without scrolling.
    page.screenshot(path=str(SCREENSHOT))
    for selector in ("#status-select", "#reply-body", "#send-resolve"):
        assert _in_view(page, selector), (selector, page.locator(selector).bounding_box())

    press("t")
    expect(page.locator("#canned-q")).to_be_focused()
    page.keyboard.type("再発行を受付")
    expect(page.locator("#canned-title")).to_contain_text("受領証明書の再発行を受付")
    press("Enter")
    expect(page.locator("#reply-body")).to_be_focused()
    expect(page.locator("#status-select")).to_have_value(str(Status.IN_PROGRESS))
    with page.expect_navigation():
        press("Control+Shift+Enter")
    expect(page.locator("#ticket-status")).to_have_text("解決済")

    inquiry = Inquiry.objects.get(donor=donor)
    assert list(inquiry.shipments.all()) == [shipment]
    assert inquiry.status == Status.RESOLVED and inquiry.category.code == "receipt"
    assert inquiry.ticket.assigned_to == agent_a
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").count() == 1
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="note").count() == 1
    print(f"\nkeyboard-only call: {len(keys)} non-text keys: {' '.join(keys)}")
    assert len(keys) < 20, keys
