"""Every write of city escalation: opening (by rule, by hand, from a call, from a cluster), the
contact chain and its clocks, notification attempts, and the city's acknowledgement, instructions
and closing. Each leaves an entry on the ticket's timeline (tickets.services).

Sending is never done inside a transaction: attempts are rows written with their cause, then
``signals.notifications_queued`` (after commit) lets the tasks module hand them to workers,
which claim a row before talking to the SMTP server or Twilio (``notification_send``).
"""

from __future__ import annotations

import datetime
import logging
import secrets
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from crm.access import can_see_municipality, can_write, is_city_official, require_write
from crm.models import CityContact, User
from escalation import messages, signals
from escalation.clocks import CityClock, wall_clock_add
from escalation.models import (
    CityInstruction,
    Escalation,
    EscalationNotification,
    EscalationRule,
    Kind,
)
from telephony import outbound as twilio_outbound
from telephony import twilio_api
from tickets import live
from tickets import services as ticket_services
from tickets.mail import outbound as mail_outbound
from tickets.models import OPEN_STATUSES, Inquiry, InquiryEvent

if TYPE_CHECKING:
    from telephony.models import Call

logger = logging.getLogger("escalation")

Source = Escalation.Source
Status = Escalation.Status
Channel = EscalationNotification.Channel
Recipient = EscalationNotification.Recipient
NStatus = EscalationNotification.Status
EventKind = InquiryEvent.Kind

TRIGGER_FIELDS = {
    Source.RULE_OPEN: "on_open",
    Source.RULE_RECLASSIFY: "on_reclassify",
    Source.RULE_MESSAGE: "on_message",
}


class EscalationError(ValueError):
    pass


# --- the chain's parameters -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How an escalation is chased: its rule's settings, or the defaults for manual reports."""

    contacts_to_notify: int
    next_contact_minutes: int
    wall_clock: bool
    voice_call: bool
    notify_provider: bool

    @classmethod
    def of(cls, escalation: Escalation) -> Plan:
        rule = escalation.rule
        if rule is not None:
            return cls(
                contacts_to_notify=max(1, rule.contacts_to_notify),
                next_contact_minutes=max(1, rule.next_contact_minutes),
                wall_clock=rule.is_wall_clock,
                voice_call=rule.voice_call,
                notify_provider=rule.notify_provider,
            )
        return cls(
            contacts_to_notify=3,
            next_contact_minutes=settings.ESCALATION_NEXT_CONTACT_MINUTES,
            wall_clock=escalation.kind == Kind.PERSONAL_DATA,
            voice_call=False,
            notify_provider=False,
        )


def contacts_for(municipality_id: int, limit: int) -> list[CityContact]:
    return list(
        CityContact.objects.filter(municipality_id=municipality_id).order_by(
            "escalation_order", "id"
        )[:limit]
    )


def _next_contact_time(
    escalation: Escalation, plan: Plan, now: datetime.datetime, clock: CityClock | None = None
) -> datetime.datetime:
    if plan.wall_clock:
        return wall_clock_add(now, plan.next_contact_minutes)
    clock = clock or CityClock.for_municipality(escalation.municipality_id)
    return clock.add(now, plan.next_contact_minutes)


def _set_next_action(escalation: Escalation) -> None:
    candidates = [escalation.next_contact_at]
    if escalation.deadline_at and not escalation.deadline_passed_at:
        candidates.append(escalation.deadline_at)
    present = [c for c in candidates if c is not None]
    escalation.next_action_at = min(present) if present else None


# --- opening --------------------------------------------------------------------------------


@transaction.atomic
def escalation_open(
    *,
    actor: User | None,
    inquiry: Inquiry | None,
    municipality_id: int | None = None,
    kind: str,
    source: str,
    rule: EscalationRule | None = None,
    title: str = "",
    reason: str = "",
    proposed_response: str = "",
    urgent: bool = False,
    aware_at: datetime.datetime | None = None,
    related: Sequence[Inquiry] = (),
    cluster_key: str | None = None,
    now: datetime.datetime | None = None,
) -> Escalation:
    """Open an escalation and queue its first notifications (the city's first contact, and the
    provider and the security officer where they are due)."""
    now = now or timezone.now()
    municipality_id = inquiry.municipality_id if inquiry is not None else municipality_id
    if municipality_id is None:
        raise EscalationError("自治体が決まりません。")
    if actor is not None:
        require_write(actor, municipality_id)
    kind = Kind(kind)
    if rule is not None and rule.urgent:
        urgent = True
    if kind == Kind.PERSONAL_DATA:
        urgent = True
    aware_at = aware_at or (inquiry.created_at if inquiry is not None and rule else now)
    deadline_minutes = (rule.deadline_minutes if rule else None) or (
        settings.ESCALATION_PERSONAL_DATA_MINUTES if kind == Kind.PERSONAL_DATA else None
    )
    title = (title or (inquiry.ticket.title if inquiry is not None else kind.label))[:200]
    escalation = Escalation(
        municipality_id=municipality_id,
        inquiry=inquiry,
        rule=rule,
        kind=kind,
        source=source,
        urgent=urgent,
        title=title,
        reason=reason.strip(),
        proposed_response=proposed_response.strip(),
        opened_by=actor,
        opened_at=now,
        aware_at=aware_at,
        deadline_at=wall_clock_add(aware_at, deadline_minutes) if deadline_minutes else None,
        cluster_key=cluster_key,
    )
    escalation.save()
    if related:
        escalation.related_inquiries.set(related)
    if inquiry is not None:
        body = "\n".join(
            x
            for x in (
                f"種別: {kind.label}{'（緊急）' if urgent else ''}",
                f"契機: {Source(source).label}" + (f"（{rule.name}）" if rule else ""),
                f"報告理由: {escalation.reason}" if escalation.reason else "",
                f"対応案: {escalation.proposed_response}" if escalation.proposed_response else "",
                f"報告期限: {timezone.localtime(escalation.deadline_at):%H:%M}"
                if escalation.deadline_at
                else "",
            )
            if x
        )
        ticket_services.inquiry_record_escalation(
            actor=actor, inquiry=inquiry, title=f"市へ報告: {kind.label}", body=body
        )
    batch = StepBatch(now)
    batch.step(escalation, first=True)
    batch.commit()
    # Supervisors' consoles list what waits for the city: they refresh at once.
    live.announce_tickets_changed(municipality_id)
    return escalation


def _rule_matches(rule: EscalationRule, inquiry: Inquiry, category_ids: set[int]) -> bool:
    if not (category_ids or rule.severities or rule.channels):
        return False  # a rule naming nothing would report every ticket
    if category_ids and inquiry.category_id not in category_ids:
        return False
    if rule.severities and inquiry.severity not in rule.severities:
        return False
    return not (rule.channels and inquiry.channel not in rule.channels)


def rules_apply(*, inquiry_ids: Iterable[int], source: str) -> list[Escalation]:
    """Tickets that match an active rule for this trigger escalate (once per ticket and rule)."""
    field = TRIGGER_FIELDS[Source(source)]
    inquiries = list(
        Inquiry.objects.filter(pk__in=list(inquiry_ids))
        .filter(status__in=list(OPEN_STATUSES))
        .select_related("ticket")
    )
    if not inquiries:
        return []
    rules = list(
        EscalationRule.objects.filter(
            municipality_id__in={i.municipality_id for i in inquiries}, active=True, **{field: True}
        )
        .exclude(kind=Kind.CLUSTER)
        .prefetch_related("categories")
    )
    if not rules:
        return []
    opened = []
    for inquiry in inquiries:
        for rule in rules:
            if rule.municipality_id != inquiry.municipality_id:
                continue
            if not _rule_matches(rule, inquiry, {c.pk for c in rule.categories.all()}):
                continue
            if (
                Escalation.objects.filter(inquiry=inquiry, rule=rule)
                .exclude(status=Status.CLOSED)
                .exists()
            ):
                continue
            try:
                with transaction.atomic():
                    opened.append(
                        escalation_open(
                            actor=None,
                            inquiry=inquiry,
                            kind=rule.kind,
                            source=source,
                            rule=rule,
                            reason=f"ルール「{rule.name}」に該当しました。",
                        )
                    )
            except IntegrityError:  # the same rule matched concurrently: one escalation
                continue
    return opened


def escalation_report(
    *,
    actor: User,
    inquiry: Inquiry,
    reason: str,
    proposed_response: str = "",
    kind: str = Kind.OTHER,
    question: bool = False,
    urgent: bool = False,
    aware_at: datetime.datetime | None = None,
) -> Escalation:
    """「市へ報告」 by hand, or a question the operator cannot answer passed to the city."""
    if not reason.strip():
        raise ValidationError("報告理由を入力してください。")
    return escalation_open(
        actor=actor,
        inquiry=inquiry,
        kind=Kind.QUESTION if question else kind,
        source=Source.QUESTION if question else Source.MANUAL,
        reason=reason,
        proposed_response=proposed_response,
        urgent=urgent,
        aware_at=aware_at,
    )


ESCALATE_CITY_DISPOSITION = "escalate_city"


def escalation_from_call(*, call: Call, actor: User) -> Escalation | None:
    """The wrap-up code 「市へ取次」: the call's ticket (a new phone ticket if it had none) is
    reported to the city with the agent's wrap-up note as the reason."""
    with transaction.atomic():
        inquiry = (
            Inquiry.objects.select_related("ticket").filter(pk=call.inquiry_id).first()
            if call.inquiry_id
            else None
        )
        if inquiry is not None and inquiry.escalations.filter(source=Source.CALL).exists():
            return None  # the same call's code delivered twice
        if inquiry is None:
            inquiry = ticket_services.inquiry_open(
                actor=actor,
                municipality=call.municipality,
                channel="phone",
                title="電話: 市へ取次",
                description=call.disposition_note or "電話で市への取次を依頼されました。",
            )
        return escalation_open(
            actor=actor,
            inquiry=inquiry,
            kind=Kind.OTHER,
            source=Source.CALL,
            reason=call.disposition_note or "電話で市への取次を依頼されました。",
        )


# --- notifications --------------------------------------------------------------------------


def _security_officers() -> list[tuple[str, str]]:
    return [("情報セキュリティ責任者", a) for a in settings.ESCALATION_SECURITY_OFFICER_EMAILS]


def _write_steps(escalations: list[Escalation]) -> None:
    """The step fields of many escalations in one statement. ``bulk_update`` builds a CASE per
    field and row, which costs more in Python than the update in the database; PostgreSQL takes
    the rows as a VALUES list instead."""
    if connection.vendor != "postgresql":
        Escalation.objects.bulk_update(escalations, list(StepBatch.STEP_FIELDS), batch_size=500)
        return
    row = "(%s::bigint, %s::integer, %s::timestamptz, %s::timestamptz, %s::timestamptz)"
    params: list[object] = []
    for e in escalations:
        params += [e.pk, e.step, e.first_notified_at, e.next_contact_at, e.next_action_at]
    table = connection.ops.quote_name(Escalation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # Only placeholders are formatted in: the values travel as parameters.
            f"UPDATE {table} AS e SET step = v.step, first_notified_at = v.first_notified_at, "  # noqa: S608
            "next_contact_at = v.next_contact_at, next_action_at = v.next_action_at "
            f"FROM (VALUES {', '.join([row] * len(escalations))}) "
            "AS v(id, step, first_notified_at, next_contact_at, next_action_at) "
            "WHERE e.id = v.id",
            params,
        )


class StepBatch:
    """The notifications and timeline entries of escalation steps taken together (one beat
    advancing many escalations), written a statement per table by ``commit``."""

    STEP_FIELDS = ("first_notified_at", "next_contact_at", "next_action_at", "step")

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now
        self.contacts: dict[tuple[int, int], list[CityContact]] = {}
        self.clocks: dict[int, CityClock] = {}
        self.rows: list[EscalationNotification] = []
        self.entries: list[ticket_services.EscalationEntry] = []
        self.stepped: list[Escalation] = []
        self.updated: dict[str, list[Escalation]] = {}

    def _contacts(self, municipality_id: int, limit: int) -> list[CityContact]:
        key = (municipality_id, limit)
        if key not in self.contacts:
            self.contacts[key] = contacts_for(municipality_id, limit)
        return self.contacts[key]

    def _clock(self, municipality_id: int) -> CityClock:
        if municipality_id not in self.clocks:
            self.clocks[municipality_id] = CityClock.for_municipality(municipality_id)
        return self.clocks[municipality_id]

    def entry(self, escalation: Escalation, title: str, body: str = "", **kw) -> None:
        if escalation.inquiry_id:
            self.entries.append(
                ticket_services.EscalationEntry(
                    inquiry_id=escalation.inquiry_id, title=title, body=body, **kw
                )
            )

    def save(self, escalation: Escalation, *fields: str) -> None:
        self.updated.setdefault(",".join(sorted(fields)), []).append(escalation)

    def step(self, escalation: Escalation, *, first: bool = False) -> None:
        """Notify the contact this step calls for and set when the next step is due."""
        now = self.now
        plan = Plan.of(escalation)
        contacts = self._contacts(escalation.municipality_id, plan.contacts_to_notify)
        rows: list[EscalationNotification] = []

        def add(recipient: str, channel: str, to: str, name: str, contact=None) -> None:
            rows.append(
                EscalationNotification(
                    escalation=escalation,
                    municipality_id=escalation.municipality_id,
                    step=escalation.step,
                    recipient=recipient,
                    contact=contact,
                    name=name[:120],
                    channel=channel,
                    to=to,
                    created_at=now,
                    next_try_at=now,
                )
            )

        contact = contacts[escalation.step % len(contacts)] if contacts else None
        if contact is not None:
            if contact.email:
                add(Recipient.CITY, Channel.EMAIL, contact.email, contact.name, contact)
            if contact.phone and escalation.urgent:
                add(Recipient.CITY, Channel.SMS, contact.phone, contact.name, contact)
            if contact.phone and plan.voice_call:
                add(Recipient.CITY, Channel.VOICE, contact.phone, contact.name, contact)
        if first:
            provider = escalation.inquiry.provider if escalation.inquiry_id else None
            if plan.notify_provider and provider is not None and provider.email:
                add(Recipient.PROVIDER, Channel.EMAIL, provider.email, provider.name)
            if escalation.kind == Kind.PERSONAL_DATA:
                for name, address in _security_officers():
                    add(Recipient.SECURITY, Channel.EMAIL, address, name)
        if escalation.first_notified_at is None and rows:
            escalation.first_notified_at = now
        # Reminders cycle through the contacts until acknowledged, at most ESCALATION_MAX_STEPS.
        if contacts and escalation.step + 1 < settings.ESCALATION_MAX_STEPS:
            clock = None if plan.wall_clock else self._clock(escalation.municipality_id)
            escalation.next_contact_at = _next_contact_time(escalation, plan, now, clock)
        else:
            escalation.next_contact_at = None
        _set_next_action(escalation)
        self.rows.extend(rows)
        self.stepped.append(escalation)
        if contact is not None:
            channels = "・".join(
                sorted({Channel(r.channel).label for r in rows if r.recipient == Recipient.CITY})
            )
            self.entry(
                escalation,
                f"市へ通知（第{escalation.step + 1}報）: {contact.department} {contact.name}"
                + (f"（{channels}）" if channels else ""),
            )
        elif first:
            self.entry(
                escalation,
                "市へ通知できません: 自治体担当者が登録されていません",
                operator_only=True,
            )

    def commit(self) -> list[int]:
        """Write everything collected; the notifications go to the workers after the commit."""
        created = EscalationNotification.objects.bulk_create(self.rows)
        if self.stepped:
            _write_steps(self.stepped)
        for fields, escalations in self.updated.items():
            Escalation.objects.bulk_update(escalations, fields.split(","), batch_size=500)
        ticket_services.inquiries_record_escalation(self.entries)
        ids = [row.pk for row in created]
        if ids:
            transaction.on_commit(
                lambda: signals.notifications_queued.send(Escalation, notification_ids=ids),
                robust=True,
            )
        return ids


def _claim(notification_id: int) -> EscalationNotification | None:
    """Take the row for this worker (committed before any network traffic)."""
    now = timezone.now()
    lease = datetime.timedelta(seconds=settings.ESCALATION_SEND_LEASE_SECONDS)
    with transaction.atomic():
        row = (
            EscalationNotification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("escalation__municipality", "escalation__inquiry")
            .filter(pk=notification_id, status__in=[NStatus.QUEUED, NStatus.RETRYING])
            .filter(Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))
            .first()
        )
        if row is None:
            return None
        escalation = row.escalation
        if escalation.status == Status.CLOSED or (
            escalation.status == Status.ACKNOWLEDGED and row.recipient == Recipient.CITY
        ):
            row.status = NStatus.CANCELLED
            row.save(update_fields=["status"])
            return None
        row.status = NStatus.SENDING
        row.tries += 1
        row.lease_until = now + lease
        row.save(update_fields=["status", "tries", "lease_until"])
        return row


def _settle(row: EscalationNotification, **fields) -> None:
    fields = {"lease_until": None, **fields}
    with transaction.atomic():
        updated = EscalationNotification.objects.filter(
            pk=row.pk,
            status__in=[NStatus.SENDING, NStatus.UNKNOWN],
            lease_until=row.lease_until,
        ).update(**fields)
        for name, value in fields.items():
            setattr(row, name, value)
        if not updated:
            logger.warning("notification %s was claimed again before its outcome", row.pk)
            return
        if fields.get("status") == NStatus.FAILED and row.recipient == Recipient.CITY:
            _failed_contact_moves_on(row)


def _failed_contact_moves_on(row: EscalationNotification) -> None:
    """Nobody at this step can be reached: the next contact need not wait for the clock."""
    alive = EscalationNotification.objects.filter(
        escalation_id=row.escalation_id, step=row.step, recipient=Recipient.CITY
    ).exclude(status__in=[NStatus.FAILED, NStatus.CANCELLED])
    if alive.exists():
        return
    now = timezone.now()
    Escalation.objects.filter(
        pk=row.escalation_id, status=Status.OPEN, step=row.step, next_contact_at__isnull=False
    ).update(next_contact_at=now, next_action_at=now)


def _retry_or_fail(row: EscalationNotification, error: str) -> None:
    if row.tries >= settings.ESCALATION_SEND_MAX_TRIES:
        _settle(row, status=NStatus.FAILED, last_error=error[:2000])
        return
    backoff = datetime.timedelta(seconds=settings.ESCALATION_RETRY_SECONDS * 2 ** (row.tries - 1))
    _settle(
        row,
        status=NStatus.RETRYING,
        last_error=error[:2000],
        next_try_at=timezone.now() + backoff,
    )


def notification_send(*, notification_id: int) -> EscalationNotification | None:
    """Send one attempt at most once. Idempotent: any number of calls send it once, and an
    attempt whose outcome is unknown (the server may have taken it) is never repeated."""
    row = _claim(notification_id)
    if row is None:
        return EscalationNotification.objects.filter(pk=notification_id).first()
    base = settings.TWILIO_PUBLIC_BASE_URL.rstrip("/")
    status_url = base + reverse("escalation:delivery_status", args=[row.pk])
    if row.channel != Channel.EMAIL and not (
        twilio_api.rest_configured() and settings.ESCALATION_SMS_FROM
    ):
        # Development credentials or no sending number: Twilio would refuse anyway.
        _settle(row, status=NStatus.FAILED, last_error="Twilio（SMS・音声）が設定されていません")
        return row
    if row.channel == Channel.EMAIL:
        _send_mail(row)
    elif row.channel == Channel.SMS:
        _send_twilio(
            row,
            lambda: twilio_outbound.sms_send(
                to=row.to, body=messages.sms_body(row.escalation), status_callback=status_url
            ),
        )
    else:
        gather_url = base + reverse("escalation:voice_gather", args=[row.pk])
        _send_twilio(
            row,
            lambda: twilio_outbound.voice_call_place(
                to=row.to,
                message=messages.voice_message(row.escalation),
                gather_url=gather_url,
                status_callback=status_url,
            ),
        )
    return row


def _send_twilio(row: EscalationNotification, send) -> None:
    try:
        sent = send()
    except twilio_outbound.TwilioRefused as exc:
        _settle(row, status=NStatus.FAILED, last_error=str(exc))
    except twilio_outbound.TwilioUnavailable as exc:
        _retry_or_fail(row, str(exc))
    except twilio_outbound.TwilioSendError as exc:
        _settle(row, status=NStatus.UNKNOWN, last_error=f"送信結果不明（{exc}）")
    else:
        _settle(
            row,
            status=NStatus.SENT,
            sent_at=timezone.now(),
            provider_sid=sent.sid,
            provider_status=sent.status,
            last_error="",
        )


def _send_mail(row: EscalationNotification) -> None:
    escalation = row.escalation
    from_address = settings.ESCALATION_MAIL_FROM or settings.DEFAULT_FROM_EMAIL
    domain = from_address.rpartition("@")[2] or "localhost"
    message_id = f"esc{row.pk}.{secrets.token_hex(8)}@{domain}"
    try:
        mime, _used = mail_outbound.build(
            from_name=settings.ESCALATION_MAIL_FROM_NAME,
            from_address=from_address,
            to_address=row.to,
            subject=messages.subject(escalation, row),
            body=messages.mail_body(escalation, row),
            message_id=message_id,
            charset=settings.ESCALATION_MAIL_CHARSET,
        )
    except mail_outbound.UnsafeHeader as exc:
        _settle(row, status=NStatus.FAILED, last_error=str(exc))
        return
    backend = get_connection(fail_silently=False, timeout=settings.MAIL_SMTP_TIMEOUT)
    try:
        backend.open()
    except Exception as exc:  # the server never saw the mail
        _retry_or_fail(row, f"{type(exc).__name__}: {exc}")
        return
    try:
        try:
            sent = backend.send_messages(
                [mail_outbound.PrebuiltEmail(mime, from_email=from_address, to=[row.to])]
            )
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
            _retry_or_fail(row, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            _settle(row, status=NStatus.UNKNOWN, last_error=f"送信結果不明（{exc}）"[:2000])
            return
        if not sent:
            _retry_or_fail(row, "メールサーバーが受け付けませんでした")
            return
        _settle(
            row,
            status=NStatus.SENT,
            sent_at=timezone.now(),
            provider_sid=message_id,
            provider_status="accepted",
            last_error="",
        )
    finally:
        try:
            backend.close()
        except Exception:  # noqa: S110 (QUIT after acceptance changes nothing)
            pass


# Twilio's final word on a message or call that was accepted.
UNDELIVERED = {"failed", "undelivered"}


@transaction.atomic
def notification_delivery_status(
    *, notification_id: int, sid: str, status: str, error_code: str = ""
) -> bool:
    """Twilio's status callback for an SMS or automated call: kept on the attempt; an SMS that
    could not be delivered fails the attempt (the next contact may then be tried at once)."""
    row = (
        EscalationNotification.objects.select_for_update()
        .filter(pk=notification_id, provider_sid=sid)
        .exclude(channel=Channel.EMAIL)
        .first()
    )
    if row is None:
        return False
    row.provider_status = status[:30]
    fields = ["provider_status"]
    if row.channel == Channel.SMS and status in UNDELIVERED and row.status == NStatus.SENT:
        row.status = NStatus.FAILED
        row.last_error = f"Twilio: {status}" + (f" ({error_code})" if error_code else "")
        fields += ["status", "last_error"]
    row.save(update_fields=fields)
    if row.status == NStatus.FAILED and row.recipient == Recipient.CITY:
        _failed_contact_moves_on(row)
    return True


# --- the city's answers ---------------------------------------------------------------------


def _lock(escalation: Escalation) -> Escalation:
    return (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("inquiry__ticket", "municipality")
        .get(pk=escalation.pk)
    )


def _require_city(actor: User, escalation: Escalation) -> None:
    if not (is_city_official(actor) and can_see_municipality(actor, escalation.municipality_id)):
        raise PermissionDenied("この報告を確認できるのは当該自治体の職員のみです。")


def _cancel_reminders(escalation: Escalation) -> None:
    EscalationNotification.objects.filter(
        escalation=escalation,
        recipient=Recipient.CITY,
        status__in=[NStatus.QUEUED, NStatus.RETRYING],
    ).update(status=NStatus.CANCELLED)


def _acknowledge(
    escalation: Escalation, *, actor: User | None, via: str, now: datetime.datetime, who: str
) -> None:
    escalation.status = Status.ACKNOWLEDGED
    escalation.acknowledged_at = now
    escalation.acknowledged_by = actor
    escalation.acknowledged_via = via
    escalation.next_contact_at = None
    _set_next_action(escalation)
    escalation.save(
        update_fields=[
            "status",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledged_via",
            "next_contact_at",
            "next_action_at",
        ]
    )
    _cancel_reminders(escalation)
    live.announce_tickets_changed(escalation.municipality_id)
    if escalation.inquiry_id:
        ticket_services.inquiry_record_escalation(
            actor=actor,
            inquiry=escalation.inquiry,
            title=f"市が確認: {who}",
            body="電話（自動音声）で確認" if via == "voice" else "",
        )


@transaction.atomic
def escalation_acknowledge(*, actor: User, escalation: Escalation) -> Escalation:
    _require_city(actor, escalation)
    escalation = _lock(escalation)
    if escalation.status != Status.OPEN:
        return escalation
    _acknowledge(escalation, actor=actor, via="web", now=timezone.now(), who=str(actor))
    return escalation


@transaction.atomic
def escalation_acknowledge_by_phone(*, notification_id: int) -> bool:
    """The callee of an automated call pressed 1."""
    row = (
        EscalationNotification.objects.select_related("contact")
        .filter(pk=notification_id, channel=Channel.VOICE, recipient=Recipient.CITY)
        .first()
    )
    if row is None:
        return False
    now = timezone.now()
    EscalationNotification.objects.filter(pk=row.pk).update(acknowledged_at=now)
    escalation = _lock(row.escalation)
    if escalation.status == Status.OPEN:
        who = row.name or row.to
        user = row.contact.user if row.contact and row.contact.user_id else None
        _acknowledge(escalation, actor=user, via="voice", now=now, who=who)
    return True


@transaction.atomic
def escalation_instruct(*, actor: User, escalation: Escalation, body: str) -> CityInstruction:
    """市の指示: recorded on the escalation and the ticket's timeline; acknowledges too."""
    _require_city(actor, escalation)
    body = body.strip()
    if not body:
        raise ValidationError("指示内容を入力してください。")
    escalation = _lock(escalation)
    if escalation.status == Status.CLOSED:
        raise ValidationError("完了した報告には指示を追加できません。")
    now = timezone.now()
    if escalation.status == Status.OPEN:
        _acknowledge(escalation, actor=actor, via="web", now=now, who=str(actor))
    instruction = CityInstruction.objects.create(
        escalation=escalation,
        municipality_id=escalation.municipality_id,
        author=actor,
        body=body,
        created_at=now,
    )
    if escalation.inquiry_id:
        ticket_services.inquiry_record_escalation(
            actor=actor,
            inquiry=escalation.inquiry,
            title="市の指示",
            body=body,
            kind=EventKind.CITY_INSTRUCTION,
        )
    return instruction


@transaction.atomic
def escalation_close(*, actor: User, escalation: Escalation, outcome: str = "") -> Escalation:
    """The agreed response is done: the city, or the operator's supervisor, closes it."""
    allowed = (
        is_city_official(actor) and can_see_municipality(actor, escalation.municipality_id)
    ) or can_write(actor, escalation.municipality_id)
    if not allowed:
        raise PermissionDenied("この報告を完了にする権限がありません。")
    escalation = _lock(escalation)
    if escalation.status == Status.CLOSED:
        return escalation
    now = timezone.now()
    escalation.status = Status.CLOSED
    escalation.closed_at = now
    escalation.closed_by = actor
    escalation.outcome = outcome.strip()
    escalation.next_contact_at = escalation.next_action_at = None
    escalation.save(
        update_fields=[
            "status",
            "closed_at",
            "closed_by",
            "outcome",
            "next_contact_at",
            "next_action_at",
        ]
    )
    _cancel_reminders(escalation)
    if escalation.inquiry_id:
        ticket_services.inquiry_record_escalation(
            actor=actor,
            inquiry=escalation.inquiry,
            title="市への報告を完了",
            body=escalation.outcome,
        )
    return escalation


# --- clocks (Celery beat) -------------------------------------------------------------------


def _advance(escalation: Escalation, batch: StepBatch) -> None:
    now = batch.now
    if (
        escalation.deadline_at
        and not escalation.deadline_passed_at
        and escalation.deadline_at <= now
    ):
        escalation.deadline_passed_at = now
        batch.save(escalation, "deadline_passed_at")
        batch.entry(escalation, "報告期限（覚知から60分）を経過: 市の確認が未了")
    if escalation.next_contact_at and escalation.next_contact_at <= now:
        escalation.step += 1
        batch.step(escalation)
    else:
        _set_next_action(escalation)
        batch.save(escalation, "next_action_at")


def escalations_tick(*, now: datetime.datetime | None = None, batch: int = 500) -> dict[str, int]:
    """One beat: advance every escalation whose next step or deadline is due, hand queued
    attempts whose time has come to the workers, and mark abandoned sends as unknown.

    Rows are taken with SKIP LOCKED, so two beats (or a beat and a slow worker) never advance
    one escalation twice; everything is read from the database, so nothing is lost by a restart.
    Each batch is written a statement per table (``StepBatch``).
    """
    now = now or timezone.now()
    advanced = 0
    while True:
        with transaction.atomic():
            due = list(
                Escalation.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("rule", "inquiry__provider")
                .filter(status=Status.OPEN, next_action_at__lte=now)
                .order_by("next_action_at")[:batch]
            )
            work = StepBatch(now)
            for escalation in due:
                _advance(escalation, work)
            work.commit()
        advanced += len(due)
        if len(due) < batch:
            break
    stranded = EscalationNotification.objects.filter(
        status=NStatus.SENDING, lease_until__lt=now
    ).update(status=NStatus.UNKNOWN, last_error="送信中に処理が中断しました（送信結果不明）")
    # Queued rows are handed over after their commit; one still queued a while later lost its
    # message (broker down, worker gone). Retries are due at their own time.
    lost = now - datetime.timedelta(seconds=settings.ESCALATION_DISPATCH_GRACE_SECONDS)
    waiting = list(
        EscalationNotification.objects.filter(
            Q(status=NStatus.QUEUED, next_try_at__lte=lost)
            | Q(status=NStatus.RETRYING, next_try_at__lte=now)
        ).values_list("pk", flat=True)[:500]
    )
    if waiting:
        signals.notifications_queued.send(Escalation, notification_ids=waiting)
    return {"advanced": advanced, "stranded": stranded, "dispatched": len(waiting)}


# --- complaint clusters ---------------------------------------------------------------------

CLUSTER_DIMENSIONS = {
    "provider": ("provider_id", "provider__name", "事業者"),
    "gift_item": ("shipments__gift_item_id", "shipments__gift_item__name", "返礼品"),
    "carrier": ("shipments__carrier_id", "shipments__carrier__name", "配送業者"),
}


def clusters_detect(*, now: datetime.datetime | None = None) -> list[Escalation]:
    """Complaints about one provider, gift item or carrier well above their usual rate escalate
    with the list of tickets (rules of kind 「苦情の集中」)."""
    now = now or timezone.now()
    opened = []
    rules = EscalationRule.objects.filter(active=True, kind=Kind.CLUSTER).prefetch_related(
        "categories"
    )
    for rule in rules:
        window = datetime.timedelta(days=rule.cluster_window_days)
        window_start = now - window
        base_start = window_start - window * rule.cluster_baseline_windows
        qs = Inquiry.objects.filter(
            municipality_id=rule.municipality_id, created_at__gte=base_start
        )
        category_ids = [c.pk for c in rule.categories.all()]
        if category_ids:
            qs = qs.filter(category_id__in=category_ids)
        if rule.severities:
            qs = qs.filter(severity__in=rule.severities)
        for dimension, (key_field, name_field, label) in CLUSTER_DIMENSIONS.items():
            counts = (
                qs.filter(**{f"{key_field}__isnull": False})
                .values(key_field, name_field)
                .annotate(
                    current=Count("pk", filter=Q(created_at__gte=window_start), distinct=True),
                    before=Count("pk", filter=Q(created_at__lt=window_start), distinct=True),
                )
                .filter(current__gte=rule.cluster_min_count)
            )
            for row in counts:
                usual = Decimal(row["before"]) / max(1, rule.cluster_baseline_windows)
                if Decimal(row["current"]) < rule.cluster_factor * usual:
                    continue
                key_prefix = f"{rule.pk}:{dimension}:{row[key_field]}:"
                if Escalation.objects.filter(
                    cluster_key__startswith=key_prefix, opened_at__gte=window_start
                ).exists():
                    continue
                tickets = list(
                    qs.filter(**{key_field: row[key_field]}, created_at__gte=window_start)
                    .select_related("ticket")
                    .distinct()
                    .order_by("-created_at")
                )
                days = rule.cluster_window_days
                title = (
                    f"苦情の集中: {label}「{row[name_field]}」{days}日間で{row['current']}件"
                    f"（通常 {usual:.1f}件/{days}日）"
                )
                with transaction.atomic():
                    opened.append(
                        escalation_open(
                            actor=None,
                            inquiry=tickets[0],
                            kind=Kind.CLUSTER,
                            source=Source.CLUSTER,
                            rule=rule,
                            title=title,
                            reason=title
                            + "\n"
                            + "\n".join(f"問合せ#{t.pk} {t.ticket.title}" for t in tickets),
                            related=tickets,
                            cluster_key=f"{key_prefix}{now:%Y%m%d%H%M%S}",
                            now=now,
                        )
                    )
    return opened


# --- rules ----------------------------------------------------------------------------------


@transaction.atomic
def escalation_rule_save(
    *, actor: User, rule: EscalationRule, categories: Iterable[object] | None = None
) -> EscalationRule:
    require_write(actor, rule.municipality_id)
    if not (actor.is_operator_admin or actor.role == User.Role.SUPERVISOR):
        raise PermissionDenied("ルールを編集できるのはスーパーバイザーのみです。")
    if rule.kind == Kind.PERSONAL_DATA and not rule.deadline_minutes:
        rule.deadline_minutes = settings.ESCALATION_PERSONAL_DATA_MINUTES
    rule.save()
    if categories is not None:
        rule.categories.set(list(categories))
    return rule
