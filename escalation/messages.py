"""The words of each notification. Only the minimum personal data: the ticket's number, kind and
the agent's reason; never the donor's name, address, phone number or e-mail address. The city
reads the rest after logging in."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from escalation.models import Escalation, EscalationNotification

Recipient = EscalationNotification.Recipient


def login_link(escalation: Escalation) -> str:
    return settings.ESCALATION_SITE_URL.rstrip("/") + reverse(
        "escalation:detail", args=[escalation.pk]
    )


def _when(value) -> str:
    local = timezone.localtime(value)
    return f"{local:%Y年%m月%d日 %H:%M}"


def subject(escalation: Escalation, notification: EscalationNotification) -> str:
    prefix = "【緊急】" if escalation.urgent else ""
    reminder = (
        "【再通知】" if notification.step > 0 and notification.recipient == Recipient.CITY else ""
    )
    if notification.recipient == Recipient.PROVIDER:
        return f"{prefix}返礼品に関するご連絡（{escalation.municipality.name}）"
    ticket = f" 問合せ#{escalation.inquiry_id}" if escalation.inquiry_id else ""
    return (
        f"{prefix}{reminder}{escalation.municipality.name}へのご報告："
        f"{escalation.get_kind_display()}{ticket}"
    )


def mail_body(escalation: Escalation, notification: EscalationNotification) -> str:
    lines = []
    if notification.name:
        lines += [f"{notification.name} 様", ""]
    if notification.recipient == Recipient.PROVIDER:
        lines += [
            f"{escalation.municipality.name}ふるさと納税コールセンターです。",
            "返礼品について寄附者様からご連絡がありましたので、お知らせいたします。",
            "",
            f"種別: {escalation.get_kind_display()}",
            f"受付日時: {_when(escalation.aware_at)}",
            f"内容: {escalation.reason or escalation.title}",
            "",
            "対応についてはコールセンターよりあらためてご連絡いたします。",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        "ふるさと納税コールセンターより、次の案件をご報告いたします。",
        "",
        f"自治体: {escalation.municipality.name}",
        f"種別: {escalation.get_kind_display()}{'（緊急）' if escalation.urgent else ''}",
        f"件名: {escalation.title}",
    ]
    if escalation.inquiry_id:
        lines.append(f"問合せ番号: #{escalation.inquiry_id}")
    lines.append(f"覚知日時: {_when(escalation.aware_at)}")
    if escalation.deadline_at:
        lines.append(f"報告期限: {_when(escalation.deadline_at)}（覚知から60分以内）")
    if escalation.reason:
        lines += ["", "■ 報告理由", escalation.reason]
    if escalation.proposed_response:
        lines += ["", "■ 対応案", escalation.proposed_response]
    lines += [
        "",
        "詳細の確認、確認済みの登録および市の指示は、ログインしてご入力ください。",
        login_link(escalation),
        "",
        "※このメールには個人情報を記載しておりません。",
    ]
    return "\n".join(lines) + "\n"


def sms_body(escalation: Escalation) -> str:
    ticket = f"問合せ#{escalation.inquiry_id}" if escalation.inquiry_id else ""
    return (
        f"【{escalation.municipality.name}へ緊急報告】{escalation.get_kind_display()}"
        f"{ticket}。確認をお願いします: {login_link(escalation)}"
    )


def voice_message(escalation: Escalation) -> str:
    return (
        f"ふるさと納税コールセンターから、{escalation.municipality.name}への緊急のご報告です。"
        f"{escalation.get_kind_display()}の案件が発生しました。詳しくはメールをご確認ください。"
    )
