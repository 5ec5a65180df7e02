"""Delete every row, file and Redis key of one municipality, in short resumable batches.

Rows go table by table in ``registry.deletion_order()`` (rows that refer to others first), a
batch of at most ``HANDOVER_DELETE_BATCH`` primary keys per transaction: each transaction takes row locks only,
for well under a second, so agents of other municipalities keep working. Each batch adds its
count to the run in the same transaction, so a run killed at any point resumes where it was
and its counts stay exact. Foreign keys from rows that are not the municipality's (an agent's
current call, another city's ticket dependency, the hand-over records) are cleared, or their
link rows deleted, in one statement per foreign key before the table's first batch (a link made
meanwhile makes that batch fail at commit; the run stops and resumes, clearing it then).

What is deleted and what is anonymised:
- every row of every table ``registry.owned_tables()`` finds, including helpdesk's Queue,
  Ticket, FollowUp, attachments and changes, and the personal-data access log
  (``crm.PersonalDataAccess``) rows about the municipality: deleted;
- ``crm.AuditLog`` rows whose detail names the municipality: anonymised (the row stays as
  evidence that something happened, its detail is replaced);
- city officials' accounts assigned to this municipality only: deactivated and anonymised;
- files of file columns (import files, helpdesk attachments) and the hand-over zips: removed;
- Redis keys of the municipality (console groups, ticket presence, mailbox poll locks): removed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from administration.handover import registry
from administration.handover.models import HandoverDeletion, HandoverExport, RunStatus

logger = logging.getLogger("administration.handover")


def _reverse_foreign_keys(model: type[models.Model]) -> list[tuple[type[models.Model], Any]]:
    from django.apps import apps

    result = []
    for other in apps.get_models(include_auto_created=True):
        if other is model:
            continue
        for f in other._meta.concrete_fields:
            if (f.many_to_one or f.one_to_one) and f.related_model is model:
                result.append((other, f))
    return result


def plan(*, municipality_id: int) -> dict[str, Any]:
    """What the deletion goes through: root ids and rows per table, taken before any batch."""
    from crm.models import User

    root_ids = {m._meta.label: fn(municipality_id) for m, fn in registry.roots().items()}
    counts = {}
    for table in registry.deletion_order():
        counts[table.label] = table.model._base_manager.filter(
            **table.filter_kwargs(municipality_id, root_ids)
        ).count()
    only_here = [
        user.pk
        for user in User.objects.filter(
            role=User.Role.CITY_OFFICIAL, municipalities=municipality_id
        ).prefetch_related("municipalities")
        if {m.pk for m in user.municipalities.all()} == {municipality_id}
    ]
    mailbox_ids = _mailbox_ids(municipality_id)
    return {
        "root_ids": root_ids,
        "counts": counts,
        "city_officials": only_here,
        "mailbox_ids": mailbox_ids,
    }


def _mailbox_ids(municipality_id: int) -> list[int]:
    from django.apps import apps

    mailbox = apps.get_model("ticketmail", "Mailbox")
    return list(
        mailbox.objects.filter(municipality_id=municipality_id).values_list("pk", flat=True)
    )


def _heartbeat(run_id: int, **fields: Any) -> None:
    HandoverDeletion.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **fields)


def _delete_files(model: type[models.Model], ids: list[Any]) -> int:
    file_fields = [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
    removed = 0
    for f in file_fields:
        for name in model._base_manager.filter(pk__in=ids).values_list(f.attname, flat=True):
            if name and default_storage.exists(name):
                default_storage.delete(name)
                removed += 1
    return removed


def _detach(table: registry.Table, municipality_id: int, root_ids: dict[str, list[int]]) -> None:
    """Clear what other rows point at this table's rows of the municipality, in one statement
    per foreign key: rows of other tables that are not the municipality's (an agent's current
    call), and cross-municipality links (a ticket dependency). The municipality's own rows of
    those tables are gone already (the deletion order puts them first)."""
    model = table.model
    target = table.filter_kwargs(municipality_id, root_ids)
    for other, f in _reverse_foreign_keys(model):
        rows = other._base_manager.filter(**{f"{f.name}__{k}": v for k, v in target.items()})
        if f.null:
            rows.update(**{f.attname: None})
        else:
            rows.delete()
    for f in registry.self_references(model):
        if f.null:
            model._base_manager.filter(**target).exclude(**{f.attname: None}).update(
                **{f.attname: None}
            )


def delete_rows(*, run: HandoverDeletion) -> None:
    municipality_id = run.plan["municipality_id"]
    root_ids = run.plan["root_ids"]
    for table in registry.deletion_order():
        model = table.model
        table_started = time.perf_counter()
        with transaction.atomic():
            _detach(table, municipality_id, root_ids)
        while True:
            started = time.perf_counter()
            with transaction.atomic():
                locked = (
                    HandoverDeletion.objects.select_for_update()
                    .defer("plan", "verification")
                    .get(pk=run.pk)
                )
                ids = list(
                    model._base_manager.filter(**table.filter_kwargs(municipality_id, root_ids))
                    .order_by()
                    .values_list("pk", flat=True)[: settings.HANDOVER_DELETE_BATCH]
                )
                if not ids:
                    logger.info(
                        "deletion %s: %s done in %.1f s",
                        run.pk,
                        table.label,
                        time.perf_counter() - table_started,
                    )
                    break
                files = _delete_files(model, ids)
                doomed = model._base_manager.filter(pk__in=ids)
                deleted = doomed._raw_delete(doomed.db)
                counts = dict(locked.deleted_counts)
                counts[table.label] = counts.get(table.label, 0) + deleted
                locked.deleted_counts = counts
                locked.files_removed += files
                locked.heartbeat_at = timezone.now()
                # The commit itself is not timed here; it is short next to the batch.
                elapsed = int((time.perf_counter() - started) * 1000)
                locked.longest_batch_ms = max(locked.longest_batch_ms, elapsed)
                locked.save(
                    update_fields=[
                        "deleted_counts",
                        "files_removed",
                        "heartbeat_at",
                        "longest_batch_ms",
                    ]
                )
            if settings.HANDOVER_DELETE_PAUSE_SECONDS:
                time.sleep(settings.HANDOVER_DELETE_PAUSE_SECONDS)


def anonymise_audit(*, run: HandoverDeletion) -> None:
    from crm.models import AuditLog, User

    municipality_id = run.plan["municipality_id"]
    code = run.municipality_code
    rows = AuditLog.objects.filter(
        Q(detail__municipality_id=municipality_id)
        | Q(detail__municipality=municipality_id)
        | Q(detail__municipality_code=code)
    )
    anonymised = rows.update(
        detail={"anonymised": "引継ぎ後の削除により匿名化", "deletion": run.pk}
    )
    officials = 0
    for user in User.objects.filter(pk__in=run.plan.get("city_officials", []), is_active=True):
        user.username = f"deleted-{user.pk}"
        user.first_name = user.last_name = user.email = ""
        user.display_name = "削除済み"
        user.is_active = False
        user.set_unusable_password()
        user.save()
        officials += 1
    HandoverDeletion.objects.filter(pk=run.pk).update(
        audit_rows_anonymised=models.F("audit_rows_anonymised") + anonymised,
        accounts_deactivated=models.F("accounts_deactivated") + officials,
    )


def handover_root():
    return settings.HANDOVER_ROOT


def remove_export_files(*, run: HandoverDeletion) -> int:
    """The municipality's hand-over zips, and whatever an export killed midway left."""
    import shutil

    removed = 0
    exports_dir = handover_root() / "exports"
    if exports_dir.exists():
        for leftover in exports_dir.glob(f"{run.municipality_code}-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover)
                removed += 1
            elif leftover.suffix == ".partial":
                leftover.unlink()
                removed += 1
    for export in HandoverExport.objects.filter(
        municipality_code=run.municipality_code, file_removed_at__isnull=True
    ).exclude(file_name=""):
        path = handover_root() / export.file_name
        if path.exists():
            path.unlink()
            removed += 1
        export.file_removed_at = timezone.now()
        export.save(update_fields=["file_removed_at"])
    HandoverDeletion.objects.filter(pk=run.pk).update(
        files_removed=models.F("files_removed") + removed
    )
    return removed


# --- Redis ---


def _redis():
    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def redis_patterns(municipality_id: int, mailbox_ids: list[int]) -> list[str]:
    """Keys naming the municipality: its console and ticket groups (Channels), its cache keys."""
    patterns = [f"*municipality.{municipality_id}.*", f"*municipality:{municipality_id}:*"]
    patterns += [f"*mail:poll:{pk}" for pk in mailbox_ids]
    return patterns


def ticket_keys_delete(client: Any, ticket_ids: list[int]) -> int:
    """The presence groups of the municipality's tickets (``ticket.<id>.presence``)."""
    removed = 0
    for start in range(0, len(ticket_ids), 1000):
        names = []
        for pk in ticket_ids[start : start + 1000]:
            names += [f"asgi:group:ticket.{pk}.presence", f"asgi:group:ticket.{pk}"]
        removed += client.delete(*names)
    return removed


def redis_keys(municipality_id: int, mailbox_ids: list[int]) -> list[bytes]:
    client = _redis()
    if client is None:
        return []
    found: list[bytes] = []
    for pattern in redis_patterns(municipality_id, mailbox_ids):
        found += list(client.scan_iter(match=pattern, count=1000))
    return found


def delete_redis(*, run: HandoverDeletion) -> int:
    client = _redis()
    if client is None:
        return 0
    municipality_id = run.plan["municipality_id"]
    removed = ticket_keys_delete(client, run.plan.get("ticket_ids", []))
    keys = redis_keys(municipality_id, run.plan.get("mailbox_ids", []))
    if keys:
        removed += client.delete(*keys)
    from django.core.cache import cache

    cache.delete_many([f"mail:poll:{pk}" for pk in run.plan.get("mailbox_ids", [])])
    HandoverDeletion.objects.filter(pk=run.pk).update(
        redis_keys_removed=models.F("redis_keys_removed") + removed
    )
    return removed


# --- Verification ---


def municipality_id_columns() -> list[tuple[str, str]]:
    """Every (table, column) of the database whose column is named municipality_id."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'municipality_id'"
            " ORDER BY table_name"
        )
        return list(cur.fetchall())


def remaining(
    *, municipality_id: int, root_ids: dict[str, list[int]], mailbox_ids: list[int]
) -> dict[str, Any]:
    """What is left of a municipality: rows per owned table, municipality_id columns, Redis."""
    rows = {}
    for table in registry.owned_tables():
        n = table.model._base_manager.filter(
            **table.filter_kwargs(municipality_id, root_ids)
        ).count()
        if n:
            rows[table.label] = n
    columns = {}
    catalogue = municipality_id_columns()
    with connection.cursor() as cur:
        for table_name, column in catalogue:
            cur.execute(
                f'SELECT count(*) FROM "{table_name}" WHERE "{column}" = %s',  # noqa: S608 - names from the catalogue
                [municipality_id],
            )
            n = cur.fetchone()[0]
            if n:
                columns[table_name] = n
    keys = [k.decode() for k in redis_keys(municipality_id, mailbox_ids)]
    return {
        "rows": rows,
        "municipality_id_columns": columns,
        "redis_keys": keys,
        "tables_checked": len(registry.owned_tables()),
        "column_tables": len(catalogue),
    }


def run_deletion(*, deletion_id: int) -> HandoverDeletion:
    """Carry a deletion through its stages from wherever it stopped."""
    from administration.handover import certificate

    run = HandoverDeletion.objects.get(pk=deletion_id)
    if run.status == RunStatus.DONE:
        return run
    HandoverDeletion.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        started_at=run.started_at or timezone.now(),
        heartbeat_at=timezone.now(),
        error="",
    )
    run.refresh_from_db()
    try:
        if not run.plan:
            from tickets.handover import municipality_ticket_ids, queue_permission_codenames

            municipality_id = run.municipality_id
            plan_data = plan(municipality_id=municipality_id)
            plan_data["municipality_id"] = municipality_id
            plan_data["ticket_ids"] = municipality_ticket_ids(municipality_id=municipality_id)
            plan_data["queue_permissions"] = queue_permission_codenames(
                queue_ids=plan_data["root_ids"].get("helpdesk.Queue", [])
            )
            HandoverDeletion.objects.filter(pk=run.pk).update(plan=plan_data)
            run.refresh_from_db()
        if run.stage == HandoverDeletion.Stage.ROWS:
            # Both are idempotent, so a run resumed in this stage does them again safely.
            anonymise_audit(run=run)
            delete_redis(run=run)
            delete_rows(run=run)
            _heartbeat(run.pk, stage=HandoverDeletion.Stage.FILES)
            run.refresh_from_db()
        if run.stage == HandoverDeletion.Stage.FILES:
            from tickets.handover import queue_permissions_delete

            # helpdesk's Queue.delete() would have removed its permission; the batches do not.
            queue_permissions_delete(codenames=run.plan.get("queue_permissions", []))
            remove_export_files(run=run)
            _heartbeat(run.pk, stage=HandoverDeletion.Stage.REDIS)
            run.refresh_from_db()
        if run.stage == HandoverDeletion.Stage.REDIS:
            delete_redis(run=run)
            _heartbeat(run.pk, stage=HandoverDeletion.Stage.VERIFY)
            run.refresh_from_db()
        if run.stage == HandoverDeletion.Stage.VERIFY:
            from tickets.handover import queue_permissions_left

            left = remaining(
                municipality_id=run.plan["municipality_id"],
                root_ids=run.plan["root_ids"],
                mailbox_ids=run.plan.get("mailbox_ids", []),
            )
            left["permissions"] = queue_permissions_left(
                codenames=run.plan.get("queue_permissions", [])
            )
            left["checked_at"] = timezone.localtime().isoformat()
            left["clean"] = not (
                left["rows"]
                or left["municipality_id_columns"]
                or left["redis_keys"]
                or left["permissions"]
            )
            _heartbeat(run.pk, verification=left)
            if not left["clean"]:
                raise RuntimeError(f"削除後に残っているものがあります: {left}")
            _heartbeat(run.pk, stage=HandoverDeletion.Stage.CERTIFICATE)
            run.refresh_from_db()
        if run.stage == HandoverDeletion.Stage.CERTIFICATE:
            name = certificate.write_certificate(run=run)
            _heartbeat(
                run.pk,
                certificate_name=name,
                stage=HandoverDeletion.Stage.DONE,
                status=RunStatus.DONE,
                finished_at=timezone.now(),
            )
    except Exception as exc:
        logger.exception("deletion %s failed", deletion_id)
        HandoverDeletion.objects.filter(pk=deletion_id).update(
            status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000]
        )
        raise
    run.refresh_from_db()
    return run
