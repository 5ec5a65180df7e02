"""Replies join their ticket; guesses, other senders and other cities' tickets never do."""

from __future__ import annotations

import pytest

from tests.tickets.mail.conftest import ADDRESS_B, deliver, make_mail
from tickets import services as ticket_services
from tickets.mail.models import OutboundMessage
from tickets.models import Inquiry


@pytest.fixture
def replied(requester_reply, agent_a, django_capture_on_commit_callbacks, mailoutbox):
    """A donor mailed city A and an agent answered: returns (inquiry, our outbound mail)."""
    _, inquiry = requester_reply(message_id="<orig@example.jp>")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="確認いたします。")
    return inquiry, OutboundMessage.objects.get(inquiry=inquiry)


def test_reply_to_our_message_id_joins_the_ticket(replied):
    inquiry, out = replied
    message = deliver(
        make_mail(
            sender="family@example.jp",  # forwarded to a family member who answers: still ours
            subject="Re: 件名を変えました",
            headers={"In-Reply-To": f"<{out.message_id}>"},
        )
    )
    assert message.inquiry == inquiry and not message.created_inquiry


def test_reply_token_in_reply_to_plus_address_joins_the_ticket(replied):
    inquiry, out = replied
    token = inquiry.mail_thread.token
    plus = f"furusato+t{token}@otaru.example.jp"
    message = deliver(make_mail(to=plus, subject="新しい件名"), recipient=plus)
    assert message.inquiry == inquiry


def test_reply_token_in_subject_joins_the_ticket(replied):
    inquiry, out = replied
    assert f"t{inquiry.mail_thread.token}" in out.subject
    message = deliver(make_mail(sender="other@example.jp", subject=out.subject))
    assert message.inquiry == inquiry


def test_guessed_subject_tag_from_another_sender_opens_a_new_ticket(replied):
    inquiry, _ = replied
    message = deliver(make_mail(sender="attacker@example.com", subject=f"Re: [#{inquiry.pk}] 追記"))
    assert message.created_inquiry
    assert message.inquiry != inquiry
    assert inquiry.ticket.followup_set.filter(comment__contains="返礼品について").count() == 0


def test_subject_tag_from_the_requester_joins_the_ticket(replied):
    inquiry, _ = replied
    message = deliver(make_mail(subject=f"Re: [#{inquiry.pk}] 追記です"))
    assert message.inquiry == inquiry


def test_token_of_another_municipalitys_ticket_never_attaches(
    replied, mailbox_b, city_b, django_capture_on_commit_callbacks
):
    inquiry_a, out_a = replied
    # The same donor writes to city B's inbox quoting city A's ticket token and Message-ID.
    message = deliver(
        make_mail(
            to=ADDRESS_B,
            subject=out_a.subject,
            headers={"In-Reply-To": f"<{out_a.message_id}>"},
        )
    )
    assert message.inquiry.municipality == city_b
    assert message.created_inquiry
    assert Inquiry.objects.get(pk=inquiry_a.pk).ticket.followup_set.count() == 2  # opened + reply


def test_subject_tag_of_another_municipalitys_ticket_from_its_requester_opens_new(
    replied, mailbox_b, city_b
):
    inquiry_a, _ = replied
    message = deliver(make_mail(to=ADDRESS_B, subject=f"[#{inquiry_a.pk}] 続き"))
    assert message.inquiry.municipality == city_b and message.inquiry != inquiry_a


def test_strangers_in_cc_receive_nothing(
    replied, agent_a, django_capture_on_commit_callbacks, mailoutbox
):
    inquiry, out = replied
    deliver(
        make_mail(
            subject=out.subject,
            headers={"Cc": "stranger@example.com", "In-Reply-To": f"<{out.message_id}>"},
        )
    )
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="再度ご連絡します。")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].recipients() == ["donor@example.jp"]
    assert b"stranger" not in mailoutbox[0].message().as_bytes()
    assert not inquiry.ticket.ticketcc_set.exists()


def test_a_reply_to_the_donors_own_mail_from_someone_else_does_not_attach(requester_reply):
    _, inquiry = requester_reply(message_id="<mine@example.jp>")
    message = deliver(
        make_mail(sender="attacker@example.com", headers={"In-Reply-To": "<mine@example.jp>"})
    )
    assert message.inquiry != inquiry
