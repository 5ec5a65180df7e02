"""Raw INSERT plumbing for the first webhook of a call, where ORM query building costs more CPU
than the statement itself."""

from __future__ import annotations

import functools
from typing import Any

from django.db import IntegrityError, connection, transaction

from telephony.models import Call, CallEvent


def _insert_fields(model: Any, *, skip: tuple[str, ...] = ()) -> list[Any]:
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in skip]


@functools.cache
def _insert_call_sql() -> str:
    # Columns come from the models, so a new field is written like Model.save would write it.
    call_columns = [f.column for f in _insert_fields(Call)]
    event_columns = [f.column for f in _insert_fields(CallEvent, skip=("call_id",))]
    call_table, event_table = Call._meta.db_table, CallEvent._meta.db_table
    # Table and column names come from the models; every value is a parameter.
    return (
        f"WITH c AS (INSERT INTO {call_table} ({', '.join(call_columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(call_columns))}) "
        "ON CONFLICT (call_sid) DO NOTHING RETURNING id), "
        f"e AS (INSERT INTO {event_table} (call_id, {', '.join(event_columns)}) "
        f"SELECT id, {', '.join(['%s'] * len(event_columns))} FROM c) "
        "SELECT id FROM c"
    )


def insert_call_with_event(call: Call, event: CallEvent) -> bool:
    """Insert the call and its first event in one statement; False if the CallSid exists."""
    if connection.vendor != "postgresql":
        # SQLite (the demo) has no INSERT inside WITH: two inserts in one transaction.
        try:
            with transaction.atomic():
                call.save(force_insert=True)
                event.call = call
                event.save(force_insert=True)
        except IntegrityError:
            return False
        return True
    values = [
        f.get_db_prep_save(f.pre_save(call, True), connection) for f in _insert_fields(Call)
    ] + [
        f.get_db_prep_save(f.pre_save(event, True), connection)
        for f in _insert_fields(CallEvent, skip=("call_id",))
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_call_sql(), values)
        row = cursor.fetchone()
    if row is None:
        return False
    call.pk = row[0]
    call._state.adding = False
    call._state.db = connection.alias
    return True
