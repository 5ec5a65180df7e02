"""The agent's ticket page: the one composer, title, links, assignee, drafts, merge, @mentions,
定型文 that act on the ticket, and the customer panel — each within the ticket's municipality."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse
from helpdesk.models import FollowUp

from crm.models import User
from knowledge.models import CannedReply
from tests.factories import DonationFactory, DonorFactory, ShipmentFactory, UserFactory
from tickets import services, workspace
from tickets.live import console_user_group
from tickets.models import Draft, Inquiry, InquiryEvent, Mention, Status
from tickets.services import InquiryError

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(city_a):
    return UserFactory(
        username="sato", display_name="佐藤", role=User.Role.AGENT, municipalities=[city_a]
    )


@pytest.fixture
def outsider_agent(city_b):
    return UserFactory(username="agent_b", role=User.Role.AGENT, municipalities=[city_b])


def _kinds(inquiry: Inquiry) -> list[str]:
    return list(
        InquiryEvent.objects.filter(inquiry=inquiry)
        .order_by("at", "followup_id")
        .values_list("kind", flat=True)
    )


def _compose(client, inquiry, **fields):
    data = {
        "kind": "note",
        "body": "",
        "status": inquiry.status,
        "category": inquiry.category.code if inquiry.category_id else "",
        "severity": inquiry.severity,
        "assignee": inquiry.ticket.assigned_to_id or "",
        "action": "send",
    }
    data.update(fields)
    return client.post(reverse("ticket_compose", args=[inquiry.pk]), data)


def test_send_and_resolve_sets_everything_in_one_submit(login, agent_a, colleague, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    response = _compose(
        client,
        inquiry,
        kind="reply",
        body="受領証明書を再発行いたします。",
        category="receipt",
        severity="high",
        assignee=colleague.pk,
        then="resolve",
    )
    assert response.status_code == 302
    inquiry.refresh_from_db()
    assert inquiry.status == Status.RESOLVED
    assert inquiry.category.code == "receipt" and inquiry.severity == "high"
    assert inquiry.ticket.assigned_to == colleague and inquiry.assigned_to == colleague
    # One timeline row per change, the reply first and the resolution last.
    assert _kinds(inquiry) == ["opened", "reply", "category", "severity", "assign", "status"]


def test_unchanged_selects_change_nothing(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    _compose(client, inquiry, body="折り返します")
    assert _kinds(inquiry) == ["opened", "note"]
    response = _compose(client, inquiry)
    assert "本文を入力するか、変更する項目を選んでください。" in response.content.decode()
    assert _kinds(inquiry) == ["opened", "note"]


def test_a_refused_status_keeps_the_text(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    response = _compose(client, inquiry, body="消えては困る本文", status=Status.DUPLICATE)
    page = response.content.decode()
    assert response.status_code == 200
    assert "消えては困る本文" in page
    assert _kinds(inquiry) == ["opened"]


def test_assignee_is_any_agent_of_the_municipality_never_another(
    login, agent_a, colleague, outsider_agent, open_inquiry
):
    inquiry = open_inquiry()
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "佐藤" in page and "agent_b" not in page
    _compose(client, inquiry, assignee=outsider_agent.pk)
    inquiry.refresh_from_db()
    assert inquiry.ticket.assigned_to is None
    assert _kinds(inquiry) == ["opened"]
    with pytest.raises(InquiryError):
        workspace.inquiry_compose(
            actor=agent_a,
            inquiry=inquiry,
            composed=workspace.Composed(assignee=outsider_agent),
        )


def test_title_is_edited_with_a_timeline_row(login, agent_a, open_inquiry):
    inquiry = open_inquiry(title="電話 090-1234-5678")
    client = login(agent_a)
    client.post(reverse("ticket_retitle", args=[inquiry.pk]), {"title": "受領証明書の再発行"})
    inquiry.refresh_from_db()
    assert inquiry.ticket.title == "受領証明書の再発行"
    event = InquiryEvent.objects.get(inquiry=inquiry, kind="title")
    assert event.followup.ticketchange_set.get().old_value == "電話 090-1234-5678"
    # The new title is found by the search.
    assert "受領証明書" in inquiry.search_text


def test_links_are_searched_and_linked_within_the_municipality(
    login, agent_a, city_a, city_b, open_inquiry
):
    inquiry = open_inquiry()
    donor = DonorFactory(municipality=city_a, name="山田 花子", name_kana="ヤマダ ハナコ")
    shipment = ShipmentFactory(donation__donor=donor, tracking_number="400000000013")
    stranger = DonorFactory(municipality=city_b, name="山田 次郎")
    client = login(agent_a)
    page = client.get(reverse("ticket_links", args=[inquiry.pk]), {"q": "山田"}).content.decode()
    assert "山田 花子" in page and "山田 次郎" not in page
    client.post(reverse("ticket_links", args=[inquiry.pk]), {"donor": donor.pk})
    page = client.get(reverse("ticket_links", args=[inquiry.pk])).content.decode()
    assert f'value="{shipment.pk}"' in page
    client.post(
        reverse("ticket_links", args=[inquiry.pk]),
        {"shipments": [shipment.pk], "donations": [shipment.donation_id], "action": "link"},
    )
    inquiry.refresh_from_db()
    assert inquiry.donor == donor
    assert list(inquiry.shipments.all()) == [shipment]
    assert list(inquiry.donations.all()) == [shipment.donation]
    # Another municipality's donor does not exist here.
    response = client.post(reverse("ticket_links", args=[inquiry.pk]), {"donor": stranger.pk})
    assert response.status_code == 404
    client.post(
        reverse("ticket_links", args=[inquiry.pk]),
        {"shipments": [shipment.pk], "action": "unlink"},
    )
    assert not inquiry.shipments.exists()
    assert _kinds(inquiry).count("link") == 2 and _kinds(inquiry).count("unlink") == 1


def test_draft_is_kept_per_ticket_and_user_and_survives_a_status_change(
    login, agent_a, colleague, open_inquiry
):
    inquiry = open_inquiry()
    client = login(agent_a)
    client.post(
        reverse("ticket_draft", args=[inquiry.pk]), {"body": "書きかけの返信", "kind": "reply"}
    )
    assert Draft.objects.get(inquiry=inquiry, user=agent_a).body == "書きかけの返信"
    # 変更のみ保存: the status changes, the text stays a draft.
    _compose(client, inquiry, body="書きかけの返信", status=Status.IN_PROGRESS, action="changes")
    inquiry.refresh_from_db()
    assert inquiry.status == Status.IN_PROGRESS
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "書きかけの返信" in page and "下書きを復元しました" in page
    # A colleague does not see it.
    other = login(colleague)
    assert (
        "書きかけの返信"
        not in other.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    )
    # Sent: the draft is gone.
    _compose(client, inquiry, body="書きかけの返信", kind="reply")
    assert not Draft.objects.filter(inquiry=inquiry).exists()


def test_merge_preview_and_confirm_same_municipality_only(
    login, agent_a, supervisor, city_a, city_b, open_inquiry
):
    donor_shipment = ShipmentFactory(donation__donor__municipality=city_a)
    first = open_inquiry(title="届かない（電話）", donor=donor_shipment.donation.donor)
    second = open_inquiry(
        title="届かない（メール）",
        donor=donor_shipment.donation.donor,
        shipments=[donor_shipment],
    )
    elsewhere = services.inquiry_open(
        actor=supervisor, municipality=city_b, channel="phone", title="福山の件", description=""
    )
    client = login(agent_a)
    page = client.get(reverse("ticket_merge", args=[first.pk])).content.decode()
    assert f"#{second.pk}" in page  # the donor's other ticket is offered
    assert (
        client.get(reverse("ticket_merge", args=[first.pk]), {"q": f"#{elsewhere.pk}"})
        .content.decode()
        .count("福山の件")
        == 0
    )
    preview = client.get(reverse("ticket_merge", args=[first.pk]), {"into": second.pk})
    assert "届かない（電話）" in preview.content.decode()
    assert "届かない（メール）" in preview.content.decode()
    # Even a supervisor who sees both cities cannot merge across them.
    sup = login(supervisor)
    refused = sup.post(reverse("ticket_merge", args=[first.pk]), {"into": elsewhere.pk})
    assert refused.status_code == 404
    response = client.post(reverse("ticket_merge", args=[first.pk]), {"into": second.pk})
    assert response.url == reverse("ticket_detail", args=[second.pk])
    first.refresh_from_db()
    assert first.status == Status.DUPLICATE and first.ticket.merged_to_id == second.pk
    assert "merge" in _kinds(first) and "merge" in _kinds(second)


def test_mention_notifies_the_colleague_of_the_municipality_only(
    login, agent_a, colleague, outsider_agent, open_inquiry, django_capture_on_commit_callbacks
):
    inquiry = open_inquiry()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(console_user_group(colleague.pk), channel)
    client = login(agent_a)
    found = client.get(reverse("ticket_mentionable", args=[inquiry.pk]), {"q": "sa"}).json()
    assert [u["username"] for u in found["users"]] == ["sato"]
    assert (
        client.get(reverse("ticket_mentionable", args=[inquiry.pk]), {"q": "agent_b"}).json()[
            "users"
        ]
        == []
    )
    with django_capture_on_commit_callbacks(execute=True):
        _compose(client, inquiry, body="@sato @agent_b 住所の確認をお願いします")
    mention = Mention.objects.get()
    assert mention.mentioned == colleague and mention.by == agent_a

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    message = async_to_sync(receive)()
    assert message == {"type": "mention.created", "ticket_id": inquiry.pk}
    console = login(colleague).get(reverse("console")).content.decode()
    assert "あなた宛てのメンション" in console and "未読" in console
    assert f"#{inquiry.pk}" in console
    # Opening the ticket reads it.
    login(colleague).get(reverse("ticket_detail", args=[inquiry.pk]))
    mention.refresh_from_db()
    assert mention.read_at is not None


def test_macro_sets_category_status_assignee_and_adds_a_note(login, agent_a, city_a, open_inquiry):
    donor = DonorFactory(municipality=city_a, name="鈴木 一郎")
    donation = DonationFactory(donor=donor, portal_order_number="A-1001")
    inquiry = open_inquiry(donor=donor, donations=[donation])
    macro = CannedReply.objects.get(seed_key="macro-receipt-reissue")
    client = login(agent_a)
    payload = client.get(reverse("ticket_canned", args=[inquiry.pk]), {"q": "再発行を受付"}).json()
    [reply] = [r for r in payload["replies"] if r["id"] == macro.pk]
    assert reply["changes"] == {
        "status": Status.IN_PROGRESS,
        "category": "receipt",
        "assignee": str(agent_a.pk),
    }
    assert "状態→対応中" in reply["labels"]
    assert "鈴木 一郎 様" in reply["text"]
    _compose(
        client,
        inquiry,
        kind="reply",
        body=reply["text"],
        status=Status.IN_PROGRESS,
        category="receipt",
        assignee=agent_a.pk,
        macro=macro.pk,
    )
    inquiry.refresh_from_db()
    assert inquiry.status == Status.IN_PROGRESS and inquiry.category.code == "receipt"
    note = FollowUp.objects.get(ticket_id=inquiry.pk, title__contains="受領証明書の再発行を受付")
    assert "再発行を自治体へ依頼" in note.comment
    assert note.event.operator_only


def test_macro_actions_are_edited_with_the_canned_reply(login, supervisor, city_a):
    client = login(supervisor)
    response = client.post(
        reverse("knowledge_new", args=["canned"]),
        {
            "municipality": city_a.pk,
            "title": "住所変更を受付",
            "body": "{寄附者名} 様 住所変更を承りました。",
            "category_code": "address_change",
            "sort_order": 10,
            "is_active": "on",
            "action_status": Status.IN_PROGRESS,
            "action_set_category": "on",
            "action_severity": "",
            "action_assignee": "me",
            "action_note": "新住所を事業者へ連絡",
        },
    )
    assert response.status_code == 302
    row = CannedReply.objects.get(title="住所変更を受付")
    assert row.action_status == Status.IN_PROGRESS and row.action_set_category
    assert row.action_assignee == "me" and row.action_note == "新住所を事業者へ連絡"
    page = client.get(reverse("knowledge_edit", args=["canned", row.pk])).content.decode()
    assert "対応中" in page and "新住所を事業者へ連絡" in page


def test_customer_panel_shows_the_donors_records(login, agent_a, city_a, open_inquiry):
    donor = DonorFactory(municipality=city_a, name="鈴木 一郎")
    ShipmentFactory(donation__donor=donor, gift_item__name="いくら醤油漬け")
    older = open_inquiry(title="以前の問合せ", donor=donor)
    inquiry = open_inquiry(donor=donor)
    page = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert 'id="customer-panel"' in page
    assert "いくら醤油漬け" in page and f"#{older.pk} 以前の問合せ" in page
