"""Supervisor pages: quarantine with reasons and re-processing, rules, attachments; scoping."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import PersonalDataAccess, User
from tests.factories import UserFactory
from tests.tickets.mail.conftest import ADDRESS_B, deliver, make_mail
from tests.tickets.mail.test_triage import JPEG, _with_attachments
from tickets.mail.models import InboundAttachment, InboundMessage, TriageRule
from tickets.models import Category


@pytest.fixture
def supervisor_b(city_b):
    return UserFactory(username="sv_b", role=User.Role.SUPERVISOR, municipalities=[city_b])


@pytest.fixture
def quarantined_a(mailbox_a, settings):
    settings.MAIL_RATE_LIMIT_PER_HOUR = 0
    message = deliver(make_mail(subject="小樽の隔離メール"))
    assert message.status == InboundMessage.Status.QUARANTINED
    return message


def test_supervisor_sees_quarantine_with_reason_and_reprocesses(
    quarantined_a, supervisor, login, settings
):
    client = login(supervisor)
    page = client.get(reverse("mail_quarantine")).content.decode()
    assert "小樽の隔離メール" in page and "受信制限" in page
    detail = client.get(reverse("mail_inbound_detail", args=[quarantined_a.pk]))
    assert "返礼品について教えてください。" in detail.content.decode()
    response = client.post(reverse("mail_inbound_reprocess", args=[quarantined_a.pk]))
    assert response.status_code == 302
    quarantined_a.refresh_from_db()
    assert quarantined_a.status == InboundMessage.Status.PROCESSED
    assert quarantined_a.inquiry.ticket.title == "小樽の隔離メール"


def test_supervisor_of_city_b_sees_no_quarantined_mail_of_city_a(
    quarantined_a, supervisor_b, login
):
    client = login(supervisor_b)
    assert "小樽の隔離メール" not in client.get(reverse("mail_quarantine")).content.decode()
    assert client.get(reverse("mail_inbound_detail", args=[quarantined_a.pk])).status_code == 404
    assert (
        client.post(reverse("mail_inbound_reprocess", args=[quarantined_a.pk])).status_code == 404
    )
    quarantined_a.refresh_from_db()
    assert quarantined_a.status == InboundMessage.Status.QUARANTINED


@pytest.mark.parametrize("who", ["city_official_b", "city_official_a", "agent_a"])
def test_city_officials_and_agents_cannot_open_mail_pages(
    who, request, quarantined_a, city_a, login
):
    client = login(request.getfixturevalue(who))
    urls = [
        reverse("mail_quarantine"),
        reverse("mail_inbound_detail", args=[quarantined_a.pk]),
        reverse("mail_rules", args=[city_a.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403
    assert (
        client.post(reverse("mail_inbound_reprocess", args=[quarantined_a.pk])).status_code == 403
    )


def test_unroutable_mail_is_shown_to_operator_admin_only(
    mailbox_a, supervisor, operator_admin, login
):
    message = deliver(make_mail(to="nobody@elsewhere.example.jp", subject="宛先不明メール"))
    assert (
        "宛先不明メール" not in login(supervisor).get(reverse("mail_quarantine")).content.decode()
    )
    assert (
        "宛先不明メール" in login(operator_admin).get(reverse("mail_quarantine")).content.decode()
    )
    assert message.municipality is None


def test_rules_are_edited_per_municipality(
    city_a, city_b, mailbox_a, supervisor, supervisor_b, login
):
    client = login(supervisor)
    damaged = Category.objects.get(code="damaged")
    response = client.post(
        reverse("mail_rules", args=[city_a.pk]),
        {
            "name": "傷み",
            "keywords": "傷み\n潰れ",
            "category": damaged.pk,
            "severity": "urgent",
            "sort_order": 1,
            "active": "on",
        },
    )
    assert response.status_code == 302
    rule = TriageRule.objects.get(municipality=city_a)
    assert rule.keyword_list == ["傷み", "潰れ"]
    message = deliver(make_mail(body="箱が潰れていました"))
    assert (message.inquiry.category, message.inquiry.severity) == (damaged, "urgent")

    # City B's supervisor can neither see nor change city A's rules.
    other = login(supervisor_b)
    assert other.get(reverse("mail_rules", args=[city_a.pk])).status_code == 404
    assert other.post(reverse("mail_rule_edit", args=[rule.pk]), {"delete": "1"}).status_code == 404
    assert TriageRule.objects.filter(pk=rule.pk).exists()
    client.post(reverse("mail_rule_edit", args=[rule.pk]), {"delete": "1"})
    assert not TriageRule.objects.filter(pk=rule.pk).exists()


def test_default_rules_button(city_a, supervisor, login):
    login(supervisor).post(reverse("mail_rules_defaults", args=[city_a.pk]))
    assert TriageRule.objects.filter(municipality=city_a).count() >= 5


def test_photos_inline_for_agents_my_number_for_supervisors_only(
    mailbox_a, agent_a, supervisor, city_official_a, login
):
    message = deliver(
        _with_attachments(
            ("破損.jpg", "image/jpeg", JPEG), ("マイナンバー.jpg", "image/jpeg", JPEG)
        )
    )
    photo = InboundAttachment.objects.get(message=message, filename="破損.jpg")
    secret = InboundAttachment.objects.get(message=message, filename="マイナンバー.jpg")
    agent = login(agent_a)
    response = agent.get(reverse("mail_attachment", args=[photo.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == JPEG
    assert agent.get(reverse("mail_attachment", args=[secret.pk])).status_code == 403
    assert (
        login(city_official_a).get(reverse("mail_attachment", args=[photo.pk])).status_code == 403
    )
    assert login(supervisor).get(reverse("mail_attachment", args=[secret.pk])).status_code == 200
    assert PersonalDataAccess.objects.filter(
        record_type="mail_attachment", record_id=str(secret.pk), user=supervisor
    ).exists()


def test_attachments_of_another_city_are_not_found(mailbox_a, mailbox_b, city_b, login):
    message = deliver(_with_attachments(("写真.jpg", "image/jpeg", JPEG)), recipient=ADDRESS_B)
    photo = InboundAttachment.objects.get(message=message)
    agent = login(UserFactory(username="agent_x", role=User.Role.AGENT, municipalities=[]))
    assert agent.get(reverse("mail_attachment", args=[photo.pk])).status_code == 404


def test_city_official_b_gets_nothing_of_city_a_from_any_mail_url(
    mailbox_a,
    city_a,
    supervisor,
    agent_a,
    city_official_b,
    login,
    django_capture_on_commit_callbacks,
):
    from tickets import services as ticket_services
    from tickets.mail.models import OutboundMessage
    from tickets.mail.services import configuration

    configuration.triage_rules_add_defaults(actor=supervisor, municipality=city_a)
    rule = TriageRule.objects.filter(municipality=city_a).first()
    message = deliver(_with_attachments(("写真.jpg", "image/jpeg", JPEG)))
    photo = InboundAttachment.objects.get(message=message)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=message.inquiry, body="回答")
    out = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=out.pk).update(status="failed")
    client = login(city_official_b)
    gets = [
        reverse("mail_quarantine"),
        reverse("mail_inbound_detail", args=[message.pk]),
        reverse("mail_rules", args=[city_a.pk]),
        reverse("mail_rule_edit", args=[rule.pk]),
        reverse("mail_attachment", args=[photo.pk]),
    ]
    posts = [
        reverse("mail_inbound_reprocess", args=[message.pk]),
        reverse("mail_outbound_retry", args=[out.pk]),
        reverse("mail_rules_defaults", args=[city_a.pk]),
        reverse("mail_rule_edit", args=[rule.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code in (403, 404), url
    for url in posts:
        assert client.post(url, {"delete": "1"}).status_code in (403, 404), url
    assert TriageRule.objects.filter(pk=rule.pk).exists()
    assert OutboundMessage.objects.get(pk=out.pk).status == "failed"


def test_attachment_partial_shows_photos_inline_and_hides_restricted_ones(mailbox_a, agent_a):
    from django.template.loader import render_to_string

    from tickets.mail.selectors import attachments_for_inquiry

    message = deliver(
        _with_attachments(
            ("破損.jpg", "image/jpeg", JPEG),
            ("マイナンバー.jpg", "image/jpeg", JPEG),
            ("tool.exe", "application/octet-stream", b"MZ" + b"\x00" * 10),
        )
    )
    attachments = attachments_for_inquiry(agent_a, message.inquiry_id)
    html = render_to_string("mail/_attachments.html", {"attachments": attachments, "user": agent_a})
    photo = attachments.get(filename="破損.jpg")
    secret = attachments.get(filename="マイナンバー.jpg")
    assert f'<img src="{reverse("mail_attachment", args=[photo.pk])}"' in html
    assert reverse("mail_attachment", args=[secret.pk]) not in html
    assert "閲覧制限" in html
    assert "受け付けませんでした: 実行形式のファイルは受け付けません" in html


def test_acknowledgement_settings_are_edited_per_municipality(
    city_a,
    mailbox_a,
    supervisor,
    supervisor_b,
    login,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    from tickets.mail.models import MunicipalityMailSettings

    url = reverse("mail_settings", args=[city_a.pk])
    assert login(supervisor_b).post(url, {"acknowledgement_enabled": "on"}).status_code == 404
    response = login(supervisor).post(
        url,
        {
            "acknowledgement_enabled": "on",
            "acknowledgement_subject": "受付しました\r\nBcc: x@example.com",
            "acknowledgement_body": "受付番号は{ticket_id}です。",
        },
    )
    assert response.status_code == 302
    prefs = MunicipalityMailSettings.objects.get(municipality=city_a)
    assert prefs.acknowledgement_enabled
    assert "\n" not in prefs.acknowledgement_subject
    with django_capture_on_commit_callbacks(execute=True):
        message = deliver(make_mail())
    assert len(mailoutbox) == 1
    from tickets.mail.decoding import parse

    sent = parse(mailoutbox[0].message().as_bytes())
    assert sent.body.strip() == f"受付番号は{message.inquiry_id}です。"
    assert sent.subject.startswith("受付しました Bcc: x@example.com [#")
