"""Every write to tickets. Each one leaves a timeline/audit row (tickets.events.record).

Writers check ``crm.access.require_write`` when an actor is given; ``actor=None`` means the
system itself (mail intake, voicemail), which is scoped by the municipality it arrived for.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from helpdesk.models import FollowUp, Queue, Ticket

from crm.access import can_see_municipality, can_write, is_supervisor, require_write
from crm.audit import audit_record
from crm.models import AuditLog, Donor, Municipality, Provider
from donations_sync.models import Donation, Shipment
from tickets import events, live, memo
from tickets.forms import STATUS_FLOW
from tickets.models import (
    OPEN_STATUSES,
    SEVERITY_PRIORITY,
    Category,
    Inquiry,
    InquiryEvent,
    MunicipalityQueue,
    SavedView,
    Severity,
    SlaTarget,
    Status,
)
from tickets.search import normalize_for_search
from tickets.signals import (
    inquiry_message_added,
    inquiry_opened,
    inquiry_reclassified,
    inquiry_replied,
)

if TYPE_CHECKING:
    from crm.models import User

Kind = InquiryEvent.Kind


class InquiryError(ValueError):
    """A write that makes no sense (e.g. linking another municipality's record)."""


# --- queues -------------------------------------------------------------------------------


@transaction.atomic
def municipality_queue_ensure(*, municipality: Municipality) -> Queue:
    """The municipality's helpdesk Queue, created on first use and kept titled after it."""
    link = MunicipalityQueue.objects.select_related("queue").filter(municipality=municipality)
    link = link.first()
    if link is None:
        queue = Queue.objects.create(
            title=municipality.name,
            slug=f"m{municipality.code}",
            # helpdesk must never fetch or send mail for these queues: tickets.mail does.
            allow_email_submission=False,
            allow_public_submission=False,
            enable_notifications_on_email_events=False,
        )
        MunicipalityQueue.objects.create(municipality=municipality, queue=queue)
        return queue
    if link.queue.title != municipality.name:
        link.queue.title = municipality.name
        link.queue.save(update_fields=["title"])
    return link.queue


def _queue_id(municipality: Municipality) -> int:
    """The queue a new ticket goes into (its title is kept in step on municipality save)."""
    queue_id = memo.remembered(
        ("queue", municipality.pk),
        lambda: (
            MunicipalityQueue.objects.filter(municipality=municipality)
            .values_list("queue_id", flat=True)
            .first()
        ),
    )
    # A municipality without a queue yet (only possible for rows loaded from fixtures) gets
    # one now; that id is not remembered, in case the enclosing transaction rolls back.
    return queue_id or municipality_queue_ensure(municipality=municipality).pk


# --- opening ------------------------------------------------------------------------------


def _check_write(actor: User | None, municipality_id: int) -> None:
    if actor is not None:
        require_write(actor, municipality_id)


def _check_same_municipality(municipality_id: int, records: Iterable[object]) -> None:
    for record in records:
        if record is not None and record.municipality_id != municipality_id:  # type: ignore[attr-defined]
            raise InquiryError("他の自治体の記録は関連付けできません。")


def _category(code: str | None) -> Category | None:
    if not code:
        return None
    category = memo.remembered(
        ("category", code), lambda: Category.objects.filter(code=code).first()
    )
    if category is None:
        raise InquiryError(f"分類が見つかりません: {code}")
    return category


@dataclass
class NewInquiry:
    """What an inquiry is opened with (the fields of ``inquiry_open``)."""

    channel: str
    title: str
    description: str
    requester_type: str = "donor"
    category: str | None = None
    severity: str = "normal"
    donor: Donor | None = None
    donations: Sequence[Donation] = ()
    shipments: Sequence[Shipment] = ()
    provider: Provider | None = None
    submitter_email: str = ""
    requester_name: str = ""
    assigned_to: User | None = None


def inquiry_open(*, actor: User | None, municipality: Municipality, **fields: Any) -> Inquiry:
    """Open one inquiry; ``fields`` are those of ``NewInquiry``."""
    return inquiries_open(actor=actor, municipality=municipality, new=[NewInquiry(**fields)])[0]


@transaction.atomic
def inquiries_open(
    *, actor: User | None, municipality: Municipality, new: Sequence[NewInquiry]
) -> list[Inquiry]:
    """Open inquiries of one municipality, each with its 受付 timeline entry.

    Rows are inserted in bulk, so a mail batch costs a handful of statements, not a handful
    per mail. Everything is checked before the first write: a bad item writes nothing.
    """
    _check_write(actor, municipality.pk)
    checked = []
    for item in new:
        donations, shipments = list(item.donations), list(item.shipments)
        _check_same_municipality(
            municipality.pk, [item.donor, item.provider, *donations, *shipments]
        )
        checked.append((item, Severity(item.severity), _category(item.category)))
    queue_id = _queue_id(municipality)
    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            title=item.title[:200],
            queue_id=queue_id,
            description=item.description,
            submitter_email=item.submitter_email or None,
            assigned_to=item.assigned_to,
            priority=SEVERITY_PRIORITY[severity],
            status=Status.OPEN,
        )
        for item, severity, _ in checked
    )
    inquiries = Inquiry.objects.bulk_create(
        Inquiry(
            ticket=ticket,
            municipality=municipality,
            channel=item.channel,
            requester_type=item.requester_type,
            requester_name=item.requester_name.strip()[:200],
            category=category,
            severity=severity,
            status=Status.OPEN,
            assigned_to=item.assigned_to,
            created_at=now,
            last_activity_at=now,
            donor=item.donor,
            provider=item.provider,
            # The requester's name too, so searching for it finds the ticket.
            search_text=normalize_for_search(
                "\n".join(x for x in (item.title, item.description, item.requester_name) if x)
            ),
        )
        for ticket, (item, severity, category) in zip(tickets, checked, strict=True)
    )
    Inquiry.donations.through.objects.bulk_create(
        Inquiry.donations.through(inquiry=inquiry, donation=donation)
        for inquiry, item in zip(inquiries, new, strict=True)
        for donation in item.donations
    )
    Inquiry.shipments.through.objects.bulk_create(
        Inquiry.shipments.through(inquiry=inquiry, shipment=shipment)
        for inquiry, item in zip(inquiries, new, strict=True)
        for shipment in item.shipments
    )
    events.record_opened(inquiries=inquiries, actor=actor)
    live.announce_tickets_changed(municipality.pk)
    ids = [inquiry.pk for inquiry in inquiries]
    actor_id = actor.pk if actor else None
    # robust: a listener's failure (escalation rules, say) never undoes or fails the opening.
    transaction.on_commit(
        lambda: inquiry_opened.send(sender=Inquiry, inquiry_ids=ids, actor_id=actor_id),
        robust=True,
    )
    return inquiries


# --- follow-ups ---------------------------------------------------------------------------


@transaction.atomic
def inquiry_reply(*, actor: User, inquiry: Inquiry, body: str) -> FollowUp:
    """A public reply to the requester; the mail app delivers it on ``inquiry_replied``."""
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    followup = events.record(
        inquiry=inquiry, actor=actor, kind=Kind.REPLY, title="返信", comment=body, public=True
    )
    if inquiry.first_response_at is None:
        inquiry.first_response_at = followup.date
        inquiry.save(update_fields=["first_response_at"])
    transaction.on_commit(
        lambda: inquiry_replied.send(
            sender=Inquiry, inquiry=inquiry, followup_id=followup.pk, actor=actor
        )
    )
    return followup


@transaction.atomic
def inquiry_add_note(
    *, actor: User, inquiry: Inquiry, body: str, operator_only: bool = True, title: str = ""
) -> FollowUp:
    """An internal note (内部メモ); operator-only notes are hidden from city officials too."""
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.NOTE,
        title=title or "内部メモ",
        comment=body,
        public=False,
        operator_only=operator_only,
    )


@dataclass
class CustomerMessage:
    """A mail/fax/letter from the requester (the fields of ``inquiry_add_customer_message``)."""

    inquiry: Inquiry
    body: str
    channel: str
    sender: str = ""
    title: str = ""
    message_id: str | None = None


def inquiry_add_customer_message(**fields: Any) -> FollowUp:
    """A mail/fax/letter from the requester joins the ticket and reopens it if it was done."""
    return inquiries_add_customer_messages([CustomerMessage(**fields)])[0]


@transaction.atomic
def inquiries_add_customer_messages(messages: Sequence[CustomerMessage]) -> list[FollowUp]:
    """Several requesters' messages at once (mail intake), each as ``inquiry_add_customer_message``;
    several for one ticket are added in order."""
    locked = (
        Inquiry.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .in_bulk({m.inquiry.pk for m in messages})
    )
    entries = []
    for m in messages:
        inquiry = locked[m.inquiry.pk]
        changes: list[events.Change] = []
        new_status = None
        if inquiry.status in (Status.RESOLVED, Status.CLOSED):
            changes.append(_set_status(inquiry, Status.REOPENED))
            new_status = Status.REOPENED
        entries.append(
            events.Entry(
                inquiry=inquiry,
                actor=None,
                kind=Kind.CUSTOMER_MESSAGE,
                title=m.title or "問合せ者からの連絡",
                comment=m.body,
                public=True,
                channel=m.channel,
                sender=m.sender,
                message_id=m.message_id,
                changes=changes,
                new_status=new_status,
            )
        )
    followups = events.record_many(entries)
    for municipality_id in {inquiry.municipality_id for inquiry in locked.values()}:
        live.announce_tickets_changed(municipality_id)
    ids = sorted(locked)
    transaction.on_commit(
        lambda: inquiry_message_added.send(sender=Inquiry, inquiry_ids=ids), robust=True
    )
    return followups


# --- field changes ------------------------------------------------------------------------


def _lock(inquiry: Inquiry) -> Inquiry:
    """Re-read the inquiry and its ticket under a row lock, so concurrent agents serialize."""
    return (
        Inquiry.objects.select_for_update(of=("self",)).select_related("ticket").get(pk=inquiry.pk)
    )


def _set_status(inquiry: Inquiry, status: int) -> events.Change:
    old = Status(inquiry.status)
    status = Status(status)
    now = timezone.now()
    inquiry.status = status
    if status in (Status.RESOLVED, Status.CLOSED):
        inquiry.resolved_at = inquiry.resolved_at or now
    elif status in OPEN_STATUSES:
        inquiry.resolved_at = None
    inquiry.save(update_fields=["status", "resolved_at"])
    ticket = inquiry.ticket
    ticket.status = status
    ticket.save(update_fields=["status", "modified"])
    return ("status", old.label, status.label)


@transaction.atomic
def inquiry_change_status(
    *, actor: User, inquiry: Inquiry, status: int, comment: str = ""
) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    if inquiry.status == Status(status):
        return None
    change = _set_status(inquiry, status)
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.STATUS,
        title=f"状態を「{change[2]}」に変更",
        comment=comment,
        changes=[change],
        new_status=int(status),
    )


@transaction.atomic
def inquiry_change_category(
    *, actor: User, inquiry: Inquiry, category: str | None
) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    new = _category(category)
    if new == inquiry.category:
        return None
    old_name = inquiry.category.name if inquiry.category else ""
    inquiry.category = new
    inquiry.save(update_fields=["category"])
    new_name = new.name if new else ""
    _announce_reclassified(inquiry, actor, "category")
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.CATEGORY,
        title=f"分類を「{new_name or '未設定'}」に変更",
        changes=[("category", old_name, new_name)],
    )


@transaction.atomic
def inquiry_change_severity(*, actor: User, inquiry: Inquiry, severity: str) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    new = Severity(severity)
    if new == inquiry.severity:
        return None
    old = Severity(inquiry.severity)
    inquiry.severity = new
    inquiry.save(update_fields=["severity"])
    inquiry.ticket.priority = SEVERITY_PRIORITY[new]
    inquiry.ticket.save(update_fields=["priority", "modified"])
    _announce_reclassified(inquiry, actor, "severity")
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.SEVERITY,
        title=f"重要度を「{new.label}」に変更",
        changes=[("severity", old.label, new.label)],
    )


def _announce_reclassified(inquiry: Inquiry, actor: User | None, field: str) -> None:
    inquiry_id, actor_id = inquiry.pk, actor.pk if actor else None
    transaction.on_commit(
        lambda: inquiry_reclassified.send(
            sender=Inquiry, inquiry_id=inquiry_id, actor_id=actor_id, field=field
        ),
        robust=True,
    )


@transaction.atomic
def inquiry_assign(*, actor: User, inquiry: Inquiry, assignee: User | None) -> FollowUp | None:
    """Assign to operator staff who serve the municipality (or unassign with None)."""
    require_write(actor, inquiry.municipality_id)
    if assignee is not None:
        try:
            require_write(assignee, inquiry.municipality_id)
        except Exception as exc:
            raise InquiryError("この自治体を担当していない利用者には割り当てられません。") from exc
    inquiry = _lock(inquiry)
    ticket = inquiry.ticket
    if ticket.assigned_to_id == (assignee.pk if assignee else None):
        return None
    old = str(ticket.assigned_to) if ticket.assigned_to_id else ""
    ticket.assigned_to = assignee
    ticket.save(update_fields=["assigned_to", "modified"])
    inquiry.assigned_to = assignee
    inquiry.save(update_fields=["assigned_to"])
    new = str(assignee) if assignee else ""
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.ASSIGN,
        title=f"担当者を「{new or '未割当'}」に変更",
        changes=[("assigned_to", old, new)],
    )


def _link_changes(
    inquiry: Inquiry,
    *,
    donor: Donor | None,
    donations: list[Donation],
    shipments: list[Shipment],
    provider: Provider | None,
    add: bool,
) -> list[events.Change]:
    changes: list[events.Change] = []
    if donor is not None:
        if add and inquiry.donor_id != donor.pk:
            changes.append(("donor", str(inquiry.donor or ""), str(donor)))
            inquiry.donor = donor
        elif not add and inquiry.donor_id == donor.pk:
            changes.append(("donor", str(donor), ""))
            inquiry.donor = None
    if provider is not None:
        if add and inquiry.provider_id != provider.pk:
            changes.append(("provider", str(inquiry.provider or ""), str(provider)))
            inquiry.provider = provider
        elif not add and inquiry.provider_id == provider.pk:
            changes.append(("provider", str(provider), ""))
            inquiry.provider = None
    inquiry.save(update_fields=["donor", "provider"])
    for field, records in (("donations", donations), ("shipments", shipments)):
        related = getattr(inquiry, field)
        linked = set(related.values_list("pk", flat=True))
        touched = [r for r in records if (r.pk in linked) != add]
        if touched:
            (related.add if add else related.remove)(*touched)
            labels = ", ".join(str(r) for r in touched)
            changes.append((field, "" if add else labels, labels if add else ""))
    return changes


@transaction.atomic
def inquiry_link_records(
    *,
    actor: User,
    inquiry: Inquiry,
    donor: Donor | None = None,
    donations: Iterable[Donation] = (),
    shipments: Iterable[Shipment] = (),
    provider: Provider | None = None,
) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    donations, shipments = list(donations), list(shipments)
    _check_same_municipality(inquiry.municipality_id, [donor, provider, *donations, *shipments])
    inquiry = _lock(inquiry)
    changes = _link_changes(
        inquiry, donor=donor, donations=donations, shipments=shipments, provider=provider, add=True
    )
    if not changes:
        return None
    return events.record(
        inquiry=inquiry, actor=actor, kind=Kind.LINK, title="記録を関連付け", changes=changes
    )


@transaction.atomic
def inquiry_unlink_records(
    *,
    actor: User,
    inquiry: Inquiry,
    donor: Donor | None = None,
    donations: Iterable[Donation] = (),
    shipments: Iterable[Shipment] = (),
    provider: Provider | None = None,
) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    inquiry = _lock(inquiry)
    changes = _link_changes(
        inquiry,
        donor=donor,
        donations=list(donations),
        shipments=list(shipments),
        provider=provider,
        add=False,
    )
    if not changes:
        return None
    return events.record(
        inquiry=inquiry, actor=actor, kind=Kind.UNLINK, title="関連付けを解除", changes=changes
    )


@transaction.atomic
def inquiry_merge(*, actor: User, duplicate: Inquiry, into: Inquiry) -> Inquiry:
    """Close ``duplicate`` as a duplicate of ``into``; its links and text move to ``into``.

    Both tickets get a timeline row; the duplicate's follow-ups stay where they were written.
    """
    if duplicate.pk == into.pk:
        raise InquiryError("同じ問合せは統合できません。")
    if duplicate.municipality_id != into.municipality_id:
        raise InquiryError("異なる自治体の問合せは統合できません。")
    require_write(actor, into.municipality_id)
    # Lock in primary-key order so two opposite merges cannot deadlock.
    locked = {
        i.pk: i
        for i in Inquiry.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(pk__in=[duplicate.pk, into.pk])
        .order_by("pk")
    }
    duplicate, into = locked[duplicate.pk], locked[into.pk]
    if duplicate.status == Status.DUPLICATE:
        raise InquiryError("この問合せはすでに統合されています。")

    changes = _link_changes(
        into,
        donor=duplicate.donor if into.donor_id is None else None,
        donations=list(duplicate.donations.all()),
        shipments=list(duplicate.shipments.all()),
        provider=duplicate.provider if into.provider_id is None else None,
        add=True,
    )
    into.search_text = f"{into.search_text}\n{duplicate.search_text}".strip()
    into.search_text_internal = (
        f"{into.search_text_internal}\n{duplicate.search_text_internal}".strip()
    )
    into.save(update_fields=["search_text", "search_text_internal"])
    events.record(
        inquiry=into,
        actor=actor,
        kind=Kind.MERGE,
        title=f"問合せ #{duplicate.pk} を統合",
        changes=[("merged_from", "", str(duplicate.pk)), *changes],
    )

    status_change = _set_status(duplicate, Status.DUPLICATE)
    duplicate.ticket.merged_to = into.ticket
    duplicate.ticket.save(update_fields=["merged_to", "modified"])
    events.record(
        inquiry=duplicate,
        actor=actor,
        kind=Kind.MERGE,
        title=f"問合せ #{into.pk} に統合",
        changes=[status_change, ("merged_to", "", str(into.pk))],
        new_status=Status.DUPLICATE,
    )
    return into


# --- entries written by the apps above tickets ------------------------------------------------

ESCALATION_KINDS = (Kind.ESCALATION, Kind.CITY_INSTRUCTION)


@transaction.atomic
def inquiry_record_escalation(
    *,
    actor: User | None,
    inquiry: Inquiry,
    title: str,
    body: str = "",
    kind: str = Kind.ESCALATION,
    operator_only: bool = False,
) -> FollowUp:
    """A 市へ報告 or 市の指示 entry on the timeline, written by city escalation.

    The city's own officials may write these on their city's tickets (their instruction is
    part of the record), unlike any other entry; ``actor=None`` is the system (rules, clocks).
    """
    if kind not in ESCALATION_KINDS:
        raise InquiryError(f"not an escalation entry: {kind}")
    if actor is not None and not can_see_municipality(actor, inquiry.municipality_id):
        require_write(actor, inquiry.municipality_id)  # raises PermissionDenied
    inquiry = _lock(inquiry)
    followup = events.record(
        inquiry=inquiry,
        actor=actor,
        kind=kind,
        title=title,
        comment=body,
        public=False,
        operator_only=operator_only,
    )
    live.announce_ticket_changed(inquiry.pk, part="escalation")
    return followup


@dataclass
class EscalationEntry:
    """A system-written 市へ報告 entry (the fields of ``inquiries_record_escalation``)."""

    inquiry_id: int
    title: str
    body: str = ""
    operator_only: bool = False


@transaction.atomic
def inquiries_record_escalation(entries: Sequence[EscalationEntry]) -> list[FollowUp]:
    """Several system entries at once (escalation's clock advancing many escalations in one
    beat): a statement per table rather than per entry; tickets locked in id order."""
    if not entries:
        return []
    locked = {
        inquiry.pk: inquiry
        for inquiry in Inquiry.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(pk__in={e.inquiry_id for e in entries})
        .order_by("pk")
    }
    followups = events.record_many(
        [
            events.Entry(
                inquiry=locked[e.inquiry_id],
                actor=None,
                kind=Kind.ESCALATION,
                title=e.title,
                comment=e.body,
                operator_only=e.operator_only,
            )
            for e in entries
        ]
    )
    live.announce_tickets_part_changed(sorted(locked), part="escalation")
    return followups


# --- triage: due times, targets, saved views, bulk changes -----------------------------------


@transaction.atomic
def inquiries_set_due_times(
    *, due: dict[int, tuple[datetime.datetime | None, datetime.datetime | None]]
) -> None:
    """Store computed (first response, resolution) due times; the system's write, no timeline
    row (the due times are derived from the targets, which are audited where they are set)."""
    for inquiry_id, (first_response_due, resolution_due) in due.items():
        Inquiry.objects.filter(pk=inquiry_id).update(
            first_response_due=first_response_due, resolution_due=resolution_due
        )


@transaction.atomic
def inquiries_set_awaiting_requester(*, inquiry_ids: Sequence[int], awaiting: bool) -> None:
    """Our reply now waits for the requester (True), or the requester wrote again (False)."""
    Inquiry.objects.filter(pk__in=list(inquiry_ids)).exclude(awaiting_requester=awaiting).update(
        awaiting_requester=awaiting
    )


def _require_supervisor(actor: User, municipality_id: int) -> None:
    if not (is_supervisor(actor) and can_see_municipality(actor, municipality_id)):
        raise PermissionDenied("対応期限の目標はスーパーバイザーが設定します。")


@transaction.atomic
def sla_target_save(
    *,
    actor: User,
    municipality: Municipality,
    category: Category | None,
    first_response_minutes: int,
    resolution_minutes: int,
    request: Any = None,
) -> SlaTarget:
    """Set a municipality's (or one category's) targets; applies to tickets opened or
    reclassified from now on."""
    _require_supervisor(actor, municipality.pk)
    target, created = SlaTarget.objects.update_or_create(
        municipality=municipality,
        category=category,
        defaults={
            "first_response_minutes": first_response_minutes,
            "resolution_minutes": resolution_minutes,
        },
    )
    audit_record(
        action=AuditLog.Action.CONFIG_CHANGED,
        request=request,
        user=actor,
        what="sla_target",
        municipality_id=municipality.pk,
        category=category.code if category else "",
        first_response_minutes=first_response_minutes,
        resolution_minutes=resolution_minutes,
        created=created,
    )
    return target


@transaction.atomic
def sla_target_delete(*, actor: User, target: SlaTarget, request: Any = None) -> None:
    _require_supervisor(actor, target.municipality_id)
    audit_record(
        action=AuditLog.Action.CONFIG_CHANGED,
        request=request,
        user=actor,
        what="sla_target_deleted",
        municipality_id=target.municipality_id,
        category=target.category.code if target.category else "",
    )
    target.delete()


@transaction.atomic
def saved_view_save(*, actor: User, name: str, query: str) -> SavedView:
    """The user's own named filter set (replaces one of the same name)."""
    view, _ = SavedView.objects.update_or_create(
        user=actor, name=name.strip()[:60], defaults={"query": query[:1000]}
    )
    return view


@transaction.atomic
def saved_view_delete(*, actor: User, view: SavedView) -> None:
    if view.user_id != actor.pk:
        raise PermissionDenied
    view.delete()


@dataclass
class BulkResult:
    changed: list[int]
    unchanged: list[int]
    refused: dict[int, str]


@transaction.atomic
def inquiries_bulk_change(
    *,
    actor: User,
    inquiries: Sequence[Inquiry],
    action: str,
    assignee: User | None = None,
    category: str | None = None,
    status: int | None = None,
    merge_into: Inquiry | None = None,
) -> BulkResult:
    """One change to several tickets, each through its own service (so each ticket gets its
    timeline row); tickets the actor may not change are refused, one by one, with the reason.

    ``action`` is assign (``assignee`` None unassigns), category, status or merge (every
    ticket into ``merge_into``).
    """
    result = BulkResult([], [], {})
    for inquiry in sorted(inquiries, key=lambda i: i.pk):
        if not can_write(actor, inquiry.municipality_id):
            result.refused[inquiry.pk] = "変更する権限がありません。"
            continue
        if inquiry.status == Status.DUPLICATE:
            result.refused[inquiry.pk] = "統合済みの問合せは変更できません。"
            continue
        if action == "status" and status is not None and status != inquiry.status:
            if status not in STATUS_FLOW.get(inquiry.status, ()):
                result.refused[inquiry.pk] = (
                    f"「{inquiry.get_status_display()}」から「{Status(status).label}」には"
                    "変更できません。"
                )
                continue
        try:
            with transaction.atomic():
                done: object = None
                if action == "assign":
                    done = inquiry_assign(actor=actor, inquiry=inquiry, assignee=assignee)
                elif action == "category":
                    done = inquiry_change_category(actor=actor, inquiry=inquiry, category=category)
                elif action == "status" and status is not None:
                    done = inquiry_change_status(actor=actor, inquiry=inquiry, status=status)
                elif action == "merge" and merge_into is not None:
                    if inquiry.pk == merge_into.pk:
                        continue
                    done = inquiry_merge(actor=actor, duplicate=inquiry, into=merge_into)
                else:
                    raise InquiryError("操作が正しくありません。")
        except (InquiryError, PermissionDenied) as exc:
            result.refused[inquiry.pk] = str(exc) or "変更できません。"
            continue
        (result.changed if done is not None else result.unchanged).append(inquiry.pk)
    return result


@transaction.atomic
def inquiry_record_reshipment(
    *,
    actor: User | None,
    inquiry: Inquiry,
    title: str,
    body: str = "",
    link_shipments: Sequence[Shipment] = (),
    mail_to_requester: str = "",
) -> FollowUp:
    """A 再送 entry (request, approval, refusal, the core's answer) written by re-shipments.

    Like escalation entries, the city's own officials may write these on their city's tickets
    (a city that approves re-shipments decides on them); ``actor=None`` is the system (the
    core's answers). ``link_shipments`` links the replacement shipment to the ticket, so the
    ticket shows it beside the one it replaces. ``mail_to_requester`` is also written as a
    public reply, which the mail app delivers where the ticket has an address.
    """
    if actor is not None and not can_see_municipality(actor, inquiry.municipality_id):
        require_write(actor, inquiry.municipality_id)  # raises PermissionDenied
    shipments = list(link_shipments)
    _check_same_municipality(inquiry.municipality_id, shipments)
    inquiry = _lock(inquiry)
    changes = _link_changes(
        inquiry, donor=None, donations=(), shipments=shipments, provider=None, add=True
    )
    followup = events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.RESHIPMENT,
        title=title,
        comment=body,
        public=False,
        changes=changes,
    )
    if mail_to_requester:
        reply = events.record(
            inquiry=inquiry,
            actor=None,
            kind=Kind.REPLY,
            title="返信（再送のご案内）",
            comment=mail_to_requester,
            public=True,
        )
        transaction.on_commit(
            lambda: inquiry_replied.send(
                sender=Inquiry, inquiry=inquiry, followup_id=reply.pk, actor=None
            )
        )
    live.announce_ticket_changed(inquiry.pk, part="timeline")
    return followup
