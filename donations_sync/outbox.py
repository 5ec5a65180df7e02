"""The outbox: every decision sent to the donation & fulfillment core.

- Written with the decision: ``outbox_enqueue`` runs inside the caller's transaction, so the
  decision (a re-shipment approved, an address confirmed) and its message commit together or
  not at all. ``outbox_message_queued`` is sent after the commit (a Celery task delivers it).
- Delivered over HTTP (``POST {CORE_API_URL}/{CORE_OUTBOX_PATH}``) with the message's
  Idempotency-Key: the core applies one key once, so a delivery repeated after a lost answer
  or a killed worker has no second effect.
- Claimed before sending, by one conditional UPDATE (a single message) or SELECT … FOR UPDATE
  SKIP LOCKED (a batch): two workers never send one message at the same time. The claim sets
  status 送信中 and a lease in ``next_attempt_at``; a worker killed mid-delivery leaves the
  message due again when the lease runs out, and the beat sweep sends it. The sweep sends a
  claimed batch CORE_OUTBOX_CONCURRENCY POSTs at a time (threads that only speak HTTP) and
  records its answers by batch (``feed.first_answers_apply``).
- A failure worth retrying (timeout, dropped connection, 5xx, 429) waits an exponential
  backoff with jitter, capped, and at least the core's Retry-After; after
  CORE_OUTBOX_MAX_ATTEMPTS attempts, or at once on a permanent refusal of the request (4xx), the
  message is 配信停止 (a dead letter) with its reason, for a supervisor to retry or cancel.
- The core's answers (accepted, tracking, shipped, delivered, refused) come in the POST's own
  answer, in the change feed (type "decision") and through the signed callback; all go
  through ``donations_sync.feed.decision_answer_apply`` and end in ``core_decision_answered``.

The HTTP contract is in the README (「基幹システムへの送信（アウトボックス）」).
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from crm import normalize
from crm.access import can_write, is_supervisor
from crm.audit import audit_record
from donations_sync.core_client import (
    CoreClient,
    CoreError,
    CorePermanentError,
    CoreRetryableError,
    core_client,
)
from donations_sync.models import GiftItem, OutboxMessage, Shipment
from donations_sync.signals import outbox_message_queued

logger = logging.getLogger("donations_sync.outbox")

Status = OutboxMessage.Status
OPEN = (Status.PENDING, Status.DELIVERING)
AUDIT_RETRY = "outbox_retry"
AUDIT_CANCEL = "outbox_cancel"


# --- Writing a decision ----------------------------------------------------------------------


def outbox_enqueue(
    *,
    municipality_id: int,
    kind: str,
    payload: dict,
    idempotency_key: str,
    shipment_id: int | None = None,
    donation_id: int | None = None,
) -> OutboxMessage:
    """Record a decision for the core, in the caller's transaction (required: the decision and
    its message commit together). Delivery starts after the commit. The same key again returns
    the message already recorded (a double-clicked approval sends one request)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_enqueue must run inside the decision's transaction")
    if kind not in OutboxMessage.Kind.values:
        raise ValueError(f"unknown outbox kind {kind!r}")
    key = idempotency_key.strip()
    if not key or len(key) > 100:
        raise ValueError("idempotency_key must be 1–100 characters")
    existing = OutboxMessage.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.municipality_id != municipality_id or existing.kind != kind:
            raise ValueError(f"idempotency_key {key!r} is already used by another decision")
        return existing
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                municipality_id=municipality_id,
                kind=kind,
                payload=payload,
                idempotency_key=key,
                shipment_id=shipment_id,
                donation_id=donation_id,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        # The same key committed by a concurrent request a moment ago.
        return OutboxMessage.objects.get(idempotency_key=key)
    message_id = message.pk
    transaction.on_commit(
        lambda: outbox_message_queued.send(sender=OutboxMessage, message_id=message_id),
        robust=True,
    )
    return message


_SHIP_TO_FIELDS = {
    "name": ("ship_to_name", "送り先氏名", 80),
    "kana": ("ship_to_kana", "送り先フリガナ", 160),
    "postal_code": ("ship_to_postal_code", "送り先郵便番号", 7),
    "address": ("ship_to_address", "送り先住所", 300),
    "phone": ("ship_to_phone", "送り先電話番号", 16),
}


def _ship_to_values(original: Shipment, ship_to: dict) -> dict[str, str]:
    values = {column: getattr(original, column) for column, _, _ in _SHIP_TO_FIELDS.values()}
    errors: dict[str, str] = {}
    for key, raw in (ship_to or {}).items():
        if key not in _SHIP_TO_FIELDS:
            raise ValueError(f"unknown ship_to field {key!r}")
        column, label, limit = _SHIP_TO_FIELDS[key]
        text = normalize.nfkc(str(raw or "")).strip()
        if key == "postal_code":
            text = normalize.normalize_postal_code(text)
            if len(text) != 7:
                errors[key] = "送り先郵便番号は7桁で入力してください。"
                continue
        elif key == "phone" and text:
            phone = normalize.normalize_phone(text)
            if not phone:
                errors[key] = "送り先電話番号が電話番号として読めません。"
                continue
            text = phone
        elif key == "kana":
            text = normalize.normalize_kana(text)
        if key in ("name", "address") and not text:
            errors[key] = f"{label}を入力してください。"
            continue
        if len(text) > limit:
            errors[key] = f"{label}が長すぎます（{limit}文字まで）。"
            continue
        values[column] = text
    if errors:
        raise ValidationError(errors)
    return values


@transaction.atomic
def shipment_create_replacement(
    *,
    original_id: int,
    gift_item_id: int | None,
    ship_to: dict,
    desired_date: datetime.date | None,
    desired_time_slot: str,
) -> Shipment:
    """A new shipment row replacing ``original_id`` (再送・代品), status 出荷待ち until the core
    answers. ``gift_item_id`` None: the same gift; else a substitute of the same municipality.
    ``ship_to``: the fields to change (name, kana, postal_code, address, phone); the others are
    the original's. The caller enqueues the decision (``outbox_enqueue``) in the same
    transaction, with ``shipment_id`` of the row returned."""
    original = Shipment.objects.select_for_update().get(pk=original_id)
    gift_item_id = gift_item_id or original.gift_item_id
    if not GiftItem.objects.filter(pk=gift_item_id, municipality=original.municipality).exists():
        raise ValidationError({"gift_item": "この自治体の返礼品を選んでください。"})
    if desired_time_slot not in Shipment.TimeSlot.values:
        raise ValidationError({"desired_time_slot": "配達希望時間帯が不正です。"})
    return Shipment.objects.create(
        municipality_id=original.municipality_id,
        donation_id=original.donation_id,
        gift_item_id=gift_item_id,
        delivery_number=original.delivery_number,
        desired_date=desired_date,
        desired_time_slot=desired_time_slot,
        status=Shipment.Status.PENDING,
        replaces=original,
        **_ship_to_values(original, ship_to),
    )


# --- Delivering ------------------------------------------------------------------------------


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """The wait after the ``attempts``-th failed attempt: base × 2^(n−1), capped, with "equal
    jitter" (half fixed, half random: a recovering core is not hit by the whole backlog at the
    same second), and never shorter than the core's Retry-After (itself capped)."""
    cap = settings.CORE_OUTBOX_BACKOFF_MAX_SECONDS
    delay = min(settings.CORE_OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), cap)
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret
    if retry_after:
        delay = max(delay, min(retry_after, cap))
    return delay


def _lease() -> datetime.timedelta:
    # Longer than one request can take (connect + read timeouts), so a live worker's claim never
    # runs out under it.
    return datetime.timedelta(seconds=settings.CORE_OUTBOX_LEASE_SECONDS)


def _due(now: datetime.datetime) -> Q:
    return Q(status__in=OPEN, next_attempt_at__lte=now)


def claim_one(message_id: int, *, now: datetime.datetime | None = None) -> bool:
    """Claim one due message with a conditional UPDATE. PostgreSQL re-checks the condition on
    the row after a concurrent UPDATE commits, so of two workers only one gets a row."""
    now = now or timezone.now()
    return bool(
        OutboxMessage.objects.filter(_due(now), pk=message_id).update(
            status=Status.DELIVERING,
            next_attempt_at=now + _lease(),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )


def claim_batch(*, limit: int, now: datetime.datetime | None = None) -> list[int]:
    """Claim up to ``limit`` due messages, oldest due first, skipping rows another worker is
    claiming at this moment."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(_due(now))
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            OutboxMessage.objects.filter(pk__in=ids).update(
                status=Status.DELIVERING,
                next_attempt_at=now + _lease(),
                attempts=F("attempts") + 1,
                last_attempt_at=now,
            )
    return ids


def request_body(message: OutboxMessage) -> dict[str, Any]:
    """What the core receives (README: 「基幹システムへの送信（アウトボックス）」)."""
    body: dict[str, Any] = {
        "idempotency_key": message.idempotency_key,
        "kind": message.kind,
        "municipality_code": message.municipality.code,
        "created_at": message.created_at.isoformat(),
        "payload": message.payload,
    }
    donation = message.donation
    if donation is not None:
        body["donation"] = {
            "external_id": donation.external_id,
            "portal": donation.portal,
            "portal_order_number": donation.portal_order_number,
        }
    shipment = message.shipment
    if shipment is not None:
        core_ref = getattr(shipment, "core_ref", None)
        replaced = shipment.replaces
        body["shipment"] = {
            "id": shipment.pk,
            "core_id": core_ref.core_id if core_ref else None,
            "replaces_core_id": (
                replaced.core_ref.core_id
                if replaced is not None and hasattr(replaced, "core_ref")
                else None
            ),
            "gift_code": shipment.gift_item.code,
            "delivery_number": shipment.delivery_number,
            "ship_to": {
                "name": shipment.ship_to_name,
                "kana": shipment.ship_to_kana,
                "postal_code": shipment.ship_to_postal_code,
                "address": shipment.ship_to_address,
                "phone": shipment.ship_to_phone,
            },
            "desired_date": shipment.desired_date.isoformat() if shipment.desired_date else None,
            "desired_time_slot": shipment.desired_time_slot,
        }
    return body


def _load(ids: list[int]) -> dict[int, OutboxMessage]:
    rows = OutboxMessage.objects.select_related(
        "municipality",
        "donation",
        "shipment__gift_item",
        "shipment__core_ref",
        "shipment__replaces__core_ref",
    ).filter(pk__in=ids)
    return {row.pk: row for row in rows}


def _record_failure(message: OutboxMessage, error: CoreError, *, now: datetime.datetime) -> str:
    """Back to 送信待ち with a backoff, or 配信停止; only if our claim still stands (a supervisor
    may have cancelled it, or the core's answer arrived through the feed meanwhile)."""
    reason = str(error)[:500]
    if isinstance(error, CorePermanentError):
        status, next_at = Status.DEAD, None
        reason = f"基幹システムが受け付けませんでした: {reason}"[:500]
    elif message.attempts >= settings.CORE_OUTBOX_MAX_ATTEMPTS:
        status, next_at = Status.DEAD, None
        reason = f"{message.attempts}回送信できませんでした: {reason}"[:500]
    else:
        status = Status.PENDING
        next_at = now + datetime.timedelta(
            seconds=backoff_seconds(message.attempts, error.retry_after)
        )
    OutboxMessage.objects.filter(
        pk=message.pk, status=Status.DELIVERING, attempts=message.attempts
    ).update(status=status, next_attempt_at=next_at, last_error=reason)
    return status


def _answer_of(data: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(data, dict) or data.get("status") not in ("accepted", "refused"):
        raise CoreRetryableError(
            "基幹システムの応答に status（accepted・refused）がありません", status=200
        )
    return str(data["status"]), data


def deliver_claimed(
    message_id: int,
    *,
    client: CoreClient,
    now: datetime.datetime | None = None,
    message: OutboxMessage | None = None,
) -> str:
    """Send one claimed message (``message``: read with its batch); returns how it ended."""
    from donations_sync.feed import decision_answer_apply  # feed imports this module's models

    message = message or _load([message_id])[message_id]
    if message.status != Status.DELIVERING:
        return message.status
    try:
        response = client.post(
            settings.CORE_OUTBOX_PATH,
            json_body=request_body(message),
            idempotency_key=message.idempotency_key,
        )
        answer, data = _answer_of(response.data)
    except CoreError as error:
        logger.info("outbox %s attempt %s failed: %s", message.pk, message.attempts, error)
        return _record_failure(message, error, now=now or timezone.now())
    decision_answer_apply(
        message_id=message.pk,
        answer=answer,
        data=data,
        changed_at=None,
        shipment_id=message.shipment_id,
    )
    return Status.ACCEPTED if answer == "accepted" else Status.REFUSED


def outbox_deliver(message_id: int, *, client: CoreClient | None = None) -> str | None:
    """Deliver one message if it is due and nobody else is sending it (the task's work)."""
    if client is None:
        if not settings.CORE_API_URL:
            return None  # not configured: the message waits, the sweep tries later
        client = core_client()
    if not claim_one(message_id):
        return None
    return deliver_claimed(message_id, client=client)


def _send(client: CoreClient, message: OutboxMessage, body: dict[str, Any]) -> Any:
    """One POST (run in the sender threads: HTTP only, no database). Returns the answer
    (accepted or refused, and its data) or the CoreError."""
    try:
        response = client.post(
            settings.CORE_OUTBOX_PATH, json_body=body, idempotency_key=message.idempotency_key
        )
        return _answer_of(response.data)
    except CoreError as error:
        return error


@dataclass
class _Sending:
    """A claimed batch whose POSTs are in flight."""

    skipped: list[str]  # outcomes of rows no longer ours (cancelled or answered meanwhile)
    live: list[OutboxMessage]
    results: list[Future]


def _send_batch(ids: list[int], *, client: CoreClient, senders: ThreadPoolExecutor) -> _Sending:
    messages = _load(ids)
    live = [messages[i] for i in ids if messages[i].status == Status.DELIVERING]
    # The bodies are built here, from the rows read with the batch: the sender threads never
    # touch the database (no connection of theirs to close).
    return _Sending(
        skipped=[messages[i].status for i in ids if messages[i].status != Status.DELIVERING],
        live=live,
        results=[senders.submit(_send, client, m, request_body(m)) for m in live],
    )


def _record_batch(sending: _Sending, *, now: datetime.datetime | None) -> list[str]:
    """Record a sent batch's answers by batch: the same outcome, message by message, as
    ``deliver_claimed``."""
    from donations_sync.feed import FirstAnswer, decision_answer_apply, first_answers_apply

    outcomes = list(sending.skipped)
    results = [future.result() for future in sending.results]
    answered: list[FirstAnswer] = []
    failed_at = now or timezone.now()
    with transaction.atomic():
        for message, result in zip(sending.live, results, strict=True):
            if isinstance(result, CoreError):
                logger.info("outbox %s attempt %s failed: %s", message.pk, message.attempts, result)
                outcomes.append(_record_failure(message, result, now=failed_at))
            else:
                answer, data = result
                answered.append(FirstAnswer(message.pk, message.shipment_id, answer, data))
    applied = first_answers_apply(answered)
    for first in answered:
        if first.message_id not in applied:
            decision_answer_apply(
                message_id=first.message_id,
                answer=first.answer,
                data=first.data,
                changed_at=None,
                shipment_id=first.shipment_id,
            )
        outcomes.append(Status.ACCEPTED if first.answer == "accepted" else Status.REFUSED)
    return outcomes


@dataclass
class DrainResult:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def outbox_deliver_due(
    *,
    client: CoreClient | None = None,
    batch: int | None = None,
    max_seconds: float | None = None,
    now: datetime.datetime | None = None,
) -> DrainResult:
    """Send due messages batch by batch until none is due or ``max_seconds`` passed (the beat
    sweep's work: new messages whose task was lost, retries whose backoff ran out, and claims
    whose worker died). A batch's POSTs go out CORE_OUTBOX_CONCURRENCY at a time over the
    client's keep-alive connections; its answers are recorded set-wise while the next batch is
    being sent."""
    result = DrainResult()
    if client is None:
        if not settings.CORE_API_URL:
            return result
        client = core_client()
    batch = batch or settings.CORE_OUTBOX_BATCH
    budget = settings.CORE_OUTBOX_SWEEP_MAX_SECONDS if max_seconds is None else max_seconds
    started = time.monotonic()
    with ThreadPoolExecutor(
        max_workers=settings.CORE_OUTBOX_CONCURRENCY, thread_name_prefix="outbox-send"
    ) as senders:
        # Pipelined: a batch's answers are recorded while the next batch's POSTs are in flight.
        in_flight: _Sending | None = None
        while True:
            ids = claim_batch(limit=batch, now=now) if time.monotonic() - started < budget else []
            sending = _send_batch(ids, client=client, senders=senders) if ids else None
            result.claimed += len(ids)
            if in_flight is not None:
                for outcome in _record_batch(in_flight, now=now):
                    result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
            if sending is None:
                break
            in_flight = sending
    result.seconds = time.monotonic() - started
    return result


def outbox_due_count(*, now: datetime.datetime | None = None) -> int:
    return OutboxMessage.objects.filter(_due(now or timezone.now())).count()


# --- A supervisor's hand ---------------------------------------------------------------------


def _require_supervisor(actor: Any, message: OutboxMessage) -> None:
    if not (is_supervisor(actor) and can_write(actor, message.municipality_id)):
        raise PermissionDenied("この自治体の送信を操作する権限がありません。")


@transaction.atomic
def outbox_retry(*, actor: Any, message: OutboxMessage, request: Any = None) -> OutboxMessage:
    """A dead letter (or a message waiting its backoff) is sent again now, attempts from zero."""
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    _require_supervisor(actor, message)
    if message.status not in (Status.DEAD, Status.PENDING):
        raise ValidationError("配信停止または送信待ちの送信だけを再送できます。")
    previous = message.status
    message.status = Status.PENDING
    message.attempts = 0
    message.next_attempt_at = timezone.now()
    message.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    audit_record(
        action=AUDIT_RETRY,
        request=request,
        user=actor,
        outbox_message=message.pk,
        municipality=message.municipality_id,
        kind=message.kind,
        previous_status=previous,
        last_error=message.last_error,
    )
    message_id = message.pk
    transaction.on_commit(
        lambda: outbox_message_queued.send(sender=OutboxMessage, message_id=message_id),
        robust=True,
    )
    return message


@transaction.atomic
def outbox_cancel(
    *, actor: Any, message: OutboxMessage, reason: str = "", request: Any = None
) -> OutboxMessage:
    """Stop a message that has not been accepted: it is never sent (again)."""
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    _require_supervisor(actor, message)
    if message.status not in (Status.DEAD, Status.PENDING, Status.DELIVERING):
        raise ValidationError("受付済み・拒否・取消済みの送信は取り消せません。")
    previous = message.status
    message.status = Status.CANCELLED
    message.next_attempt_at = None
    note = reason.strip()[:200]
    if note:
        message.last_error = f"取消: {note}"[:500]
    message.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
    audit_record(
        action=AUDIT_CANCEL,
        request=request,
        user=actor,
        outbox_message=message.pk,
        municipality=message.municipality_id,
        kind=message.kind,
        previous_status=previous,
        reason=note,
    )
    return message
