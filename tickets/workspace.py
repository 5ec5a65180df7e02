"""Writes of the agent's ticket page: the one composer (reply or note with status, category,
severity and assignee in the same submit, and a 定型文's actions), the title, drafts kept per
ticket and user, and @mentions in internal notes.

Each change goes through ``tickets.services`` (or ``tickets.events`` directly for the title), so
every one leaves its timeline/audit row; everything is checked against the ticket's municipality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from helpdesk.models import FollowUp

from crm.access import require_write
from crm.models import User
from crm.push import push_many_after_commit
from tickets import events, services
from tickets.live import console_user_group
from tickets.models import Draft, Inquiry, InquiryEvent, Mention, Status
from tickets.search import normalize_for_search
from tickets.services import InquiryError

if TYPE_CHECKING:
    from knowledge.models import CannedReply

Kind = InquiryEvent.Kind

# "Leave as it is" for the composer's optional changes (None means unassign / no category).
KEEP = object()

# @username: ASCII letters, digits and . _ - (the characters usernames are made of here).
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9._\-]{0,149})")


def assignable_users(inquiry: Inquiry) -> QuerySet[User]:
    """Who may hold the ticket (and be @mentioned on it): active agents and supervisors of its
    municipality. Never anyone of another municipality only."""
    return (
        User.objects.filter(
            is_active=True,
            role__in=[User.Role.AGENT, User.Role.SUPERVISOR],
            municipalities=inquiry.municipality_id,
        )
        .distinct()
        .order_by("display_name", "username")
    )


# --- title ---------------------------------------------------------------------------------


@transaction.atomic
def inquiry_retitle(*, actor: User, inquiry: Inquiry, title: str) -> FollowUp | None:
    require_write(actor, inquiry.municipality_id)
    title = " ".join(title.split())[:200]
    if not title:
        raise InquiryError("件名を入力してください。")
    inquiry = services._lock(inquiry)
    old = inquiry.ticket.title
    if old == title:
        return None
    inquiry.ticket.title = title
    inquiry.ticket.save(update_fields=["title", "modified"])
    # The new title is searchable too (the old words stay: callers may still use them).
    inquiry.search_text = f"{inquiry.search_text}\n{normalize_for_search(title)}".strip()
    inquiry.save(update_fields=["search_text"])
    return events.record(
        inquiry=inquiry,
        actor=actor,
        kind=Kind.TITLE,
        title=f"件名を「{title}」に変更",
        changes=[("title", old, title)],
    )


# --- drafts ------------------------------------------------------------------------------------


@transaction.atomic
def draft_save(
    *, actor: User, inquiry: Inquiry, body: str, kind: str = "note", share_with_city: bool = False
) -> Draft | None:
    """Keep what ``actor`` has typed on this ticket; an empty composer removes the draft."""
    require_write(actor, inquiry.municipality_id)
    if not body.strip():
        Draft.objects.filter(inquiry=inquiry, user=actor).delete()
        return None
    draft, _ = Draft.objects.update_or_create(
        inquiry=inquiry,
        user=actor,
        defaults={
            "municipality_id": inquiry.municipality_id,
            "body": body,
            "kind": kind if kind in ("reply", "note") else "note",
            "share_with_city": share_with_city,
            "updated_at": timezone.now(),
        },
    )
    return draft


def draft_for(user: User, inquiry: Inquiry) -> Draft | None:
    return Draft.objects.visible_to(user).filter(inquiry=inquiry, user=user).first()


# --- mentions ------------------------------------------------------------------------------------


def mentioned_users(inquiry: Inquiry, text: str, *, exclude: User | None = None) -> list[User]:
    """The colleagues ``text`` names with @username who may work on this ticket."""
    names = {m.group(1).lower() for m in _MENTION.finditer(text)}
    if not names:
        return []
    query = Q()
    for name in names:
        query |= Q(username__iexact=name)
    users = assignable_users(inquiry).filter(query)
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return list(users)


def _record_mentions(inquiry: Inquiry, followup: FollowUp, actor: User, text: str) -> list[Mention]:
    users = mentioned_users(inquiry, text, exclude=actor)
    if not users:
        return []
    now = timezone.now()
    mentions = Mention.objects.bulk_create(
        Mention(
            inquiry=inquiry,
            municipality_id=inquiry.municipality_id,
            followup=followup,
            mentioned=user,
            by=actor,
            at=now,
        )
        for user in users
    )
    # Only that something arrived: the console reads its mentions through its own page.
    push_many_after_commit(
        (console_user_group(user.pk), {"type": "mention.created", "ticket_id": inquiry.pk})
        for user in users
    )
    return mentions


@transaction.atomic
def mentions_mark_read(*, user: User, inquiry: Inquiry) -> int:
    return Mention.objects.filter(mentioned=user, inquiry=inquiry, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def recent_mentions(user: User, *, limit: int = 10) -> QuerySet[Mention]:
    """The user's mentions on tickets they may still see, newest first."""
    return (
        Mention.objects.visible_to(user)
        .filter(mentioned=user)
        .select_related("inquiry__ticket", "inquiry__municipality", "by")
        .order_by("-at")[:limit]
    )


# --- the composer ------------------------------------------------------------------------------


@dataclass
class Composed:
    """What one submit of the composer asks for. ``KEEP`` leaves a field as it is."""

    kind: str = "note"  # "reply" | "note"
    body: str = ""
    share_with_city: bool = False
    status: object = KEEP  # a Status
    category: object = KEEP  # a category code, or None for 未分類
    severity: object = KEEP  # a Severity
    assignee: object = KEEP  # a User, or None for 未割当
    macro: CannedReply | None = None
    macro_note: str = ""  # the 定型文's note with its variables filled
    keep_draft: bool = False  # 変更のみ保存: the text typed so far stays the draft


@dataclass
class ComposeResult:
    followups: list[FollowUp] = field(default_factory=list)
    reply: FollowUp | None = None
    mentions: list[Mention] = field(default_factory=list)


@transaction.atomic
def inquiry_compose(*, actor: User, inquiry: Inquiry, composed: Composed) -> ComposeResult:
    """The composer's submit: the reply or note, then each change, then the 定型文's note, each
    with its own timeline row; all or nothing. The actor's draft of this ticket is removed."""
    require_write(actor, inquiry.municipality_id)
    if composed.status is not KEEP and Status(composed.status) == Status.DUPLICATE:
        raise InquiryError("「重複」には統合でのみ変更できます。")
    if composed.assignee is not KEEP and composed.assignee is not None:
        if not assignable_users(inquiry).filter(pk=composed.assignee.pk).exists():
            raise InquiryError("この自治体を担当していない利用者には割り当てられません。")
    result = ComposeResult()
    body = composed.body.strip()
    changes_asked = any(
        value is not KEEP
        for value in (composed.status, composed.category, composed.severity, composed.assignee)
    )
    if not body and not changes_asked and not composed.macro_note.strip():
        raise InquiryError("本文を入力するか、変更する項目を選んでください。")

    if body and composed.kind == "reply":
        result.reply = services.inquiry_reply(actor=actor, inquiry=inquiry, body=body)
        result.followups.append(result.reply)
    elif body:
        note = services.inquiry_add_note(
            actor=actor, inquiry=inquiry, body=body, operator_only=not composed.share_with_city
        )
        result.followups.append(note)
        result.mentions += _record_mentions(inquiry, note, actor, body)

    if composed.category is not KEEP:
        result.followups.append(
            services.inquiry_change_category(
                actor=actor, inquiry=inquiry, category=composed.category or None
            )
        )
    if composed.severity is not KEEP:
        result.followups.append(
            services.inquiry_change_severity(
                actor=actor, inquiry=inquiry, severity=composed.severity
            )
        )
    if composed.assignee is not KEEP:
        result.followups.append(
            services.inquiry_assign(actor=actor, inquiry=inquiry, assignee=composed.assignee)
        )
    if composed.macro_note.strip():
        title = f"内部メモ（定型文「{composed.macro.title}」）" if composed.macro else "内部メモ"
        note = services.inquiry_add_note(
            actor=actor, inquiry=inquiry, body=composed.macro_note.strip(), title=title
        )
        result.followups.append(note)
        result.mentions += _record_mentions(inquiry, note, actor, composed.macro_note)
    # The status last: 「送信して解決」 resolves after everything else is on the record.
    if composed.status is not KEEP:
        result.followups.append(
            services.inquiry_change_status(actor=actor, inquiry=inquiry, status=composed.status)
        )
    if not composed.keep_draft:
        Draft.objects.filter(inquiry=inquiry, user=actor).delete()
    result.followups = [f for f in result.followups if f is not None]
    return result


def macro_changes(macro: CannedReply, actor: User) -> dict[str, object]:
    """What applying ``macro`` sets on a ticket, as composer fields (for the page and the
    service alike): status, category code, severity, assignee id ("" = 未割当)."""
    changes: dict[str, object] = {}
    if macro.action_status:
        changes["status"] = int(macro.action_status)
    if macro.action_set_category and macro.category_code:
        changes["category"] = macro.category_code
    if macro.action_severity:
        changes["severity"] = macro.action_severity
    if macro.action_assignee == "me":
        changes["assignee"] = str(actor.pk)
    elif macro.action_assignee == "nobody":
        changes["assignee"] = ""
    return changes
