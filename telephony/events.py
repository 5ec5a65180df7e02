"""What telephony tells others: pushes to browsers (Channels groups) and ticket timeline entries.

Pushes are sent after the transaction commits, so a browser never hears of a state the database
does not hold. The pushes carry ids only; consumers load what their user may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crm import normalize
from crm.push import push_many_after_commit

if TYPE_CHECKING:
    from telephony.models import Call


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


def wallboard_group(municipality_id: int) -> str:
    return f"wallboard.{municipality_id}"


def call_ringing(*, call: Call, agent_ids: Iterable[int]) -> None:
    push_many_after_commit(
        [(agent_group(a), {"type": "call.ring", "call_id": call.pk}) for a in agent_ids]
        + [(wallboard_group(call.municipality_id), {"type": "wallboard.changed"})]
    )


def call_taken(*, call: Call, agent_ids: Iterable[int], answered_by_id: int | None) -> None:
    """The call stopped ringing for these agents (someone answered, or the caller left)."""
    push_many_after_commit(
        [
            (
                agent_group(a),
                {"type": "call.clear", "call_id": call.pk, "answered_by": answered_by_id},
            )
            for a in agent_ids
        ]
    )


def call_changed(*, call: Call, agent_id: int | None = None) -> None:
    """The call's state moved (answered, ended): the agent's panel and the wallboards follow."""
    messages = [(wallboard_group(call.municipality_id), {"type": "wallboard.changed"})]
    if agent_id:
        messages.append((agent_group(agent_id), {"type": "call.update", "call_id": call.pk}))
    push_many_after_commit(messages)


def presence_changed(*, user_id: int, state: str, municipality_ids: Iterable[int]) -> None:
    push_many_after_commit(
        [(agent_group(user_id), {"type": "presence.changed", "state": state})]
        + [(wallboard_group(m), {"type": "wallboard.changed"}) for m in municipality_ids]
    )


def call_summary(call: Call) -> str:
    """The call as one timeline entry (通話記録) on its ticket."""
    from django.utils import timezone

    lines = [
        f"{call.get_direction_display()}: {normalize.format_phone_national(call.from_e164) or '非通知'}"
        f" → {normalize.format_phone_national(call.to_e164)}",
        f"着信日時: {timezone.localtime(call.offered_at):%Y年%m月%d日 %H:%M}",
        f"状態: {call.get_status_display()}",
    ]
    if call.answered_by_id:
        lines.append(f"応答者: {call.answered_by}")
    if call.queue_seconds is not None:
        lines.append(f"待ち時間: {call.queue_seconds}秒")
    if call.talk_seconds is not None:
        lines.append(f"通話時間: {call.talk_seconds}秒")
    if call.disposition_id:
        lines.append(f"後処理コード: {call.disposition}")
    if call.disposition_note:
        lines.append(f"メモ: {call.disposition_note}")
    if call.recording_sid:
        lines.append(f"録音: {recording_path(call)}")
    return "\n".join(lines)


def recording_path(call: Call) -> str:
    """Where our users play the recording (Twilio's own URL needs the account's credentials)."""
    from django.urls import reverse

    return reverse("telephony:call_recording", args=[call.pk])


def call_logged_on_inquiry(*, call: Call, actor: Any) -> None:
    """Timeline entry: the call, with its duration and recording, on the ticket it belongs to."""
    from tickets import services as ticket_services

    ticket_services.inquiry_add_note(
        actor=actor, inquiry=call.inquiry, body=call_summary(call), title="通話記録"
    )
