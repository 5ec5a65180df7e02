"""The personal-data access log: operator admins list and export it; the export is logged too."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from crm.models import PersonalDataAccess
from tests.asgi_stream import asgi_get, body_messages
from tests.conftest import login_as, response_bytes
from tests.factories import DonorFactory

pytestmark = pytest.mark.django_db


def test_admin_lists_and_exports_the_log(login, operator_admin, agent_a, city_a):
    donor = DonorFactory(municipality=city_a)
    login(agent_a).get(reverse("donor_detail", args=[donor.id]))
    client = login(operator_admin)
    page = client.get(reverse("access_log"), {"user": "agent_a"}).content.decode()
    assert "agent_a" in page and reverse("donor_detail", args=[donor.id]) in page

    response = client.get(reverse("access_log_export"), {"type": "donor"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    content = response_bytes(response).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:4] == ["日時", "利用者", "操作", "対象"]
    assert rows[1][1:5] == ["agent_a", "閲覧", "donor", str(donor.id)]
    export = PersonalDataAccess.objects.get(action="export")
    assert export.user == operator_admin and export.record_type == "access_log.csv"
    assert export.detail == {"filters": {"type": "donor"}}


@pytest.mark.parametrize("who", ["agent_a", "supervisor", "city_official_a", "city_official_b"])
def test_only_operator_admins(login, request, who):
    client = login(request.getfixturevalue(who))
    assert client.get(reverse("access_log")).status_code == 403
    assert client.get(reverse("access_log_export")).status_code == 403
    assert not PersonalDataAccess.objects.filter(action="export").exists()


def _open_cursors_elsewhere() -> list[str]:
    """Statements other connections to this database are in the middle of reading from."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT query FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query ILIKE 'FETCH%%'"
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_export_streams_through_the_asgi_app_before_the_last_row_is_read(
    operator_admin, city_a
):
    rows = 6000
    await database_sync_to_async(PersonalDataAccess.objects.bulk_create)(
        [
            PersonalDataAccess(
                user=operator_admin,
                municipality=city_a,
                action="view",
                record_type="donor",
                record_id=str(i),
            )
            for i in range(rows)
        ]
    )
    client = await database_sync_to_async(lambda: login_as(Client(), operator_admin))()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    reading_when_first_sent: list[list[str]] = []

    async def on_body(message, messages) -> None:
        if len(body_messages(messages)) == 1:
            # The server's connection is still fetching the log's rows from its cursor. (Looked
            # at from a thread of our own: send() runs in the request's context, whose thread
            # and database connection belong to the request.)
            loop = asyncio.get_running_loop()
            reading_when_first_sent.append(
                await loop.run_in_executor(None, _open_cursors_elsewhere)
            )

    messages = await asgi_get(reverse("access_log_export"), cookie=cookie, on_body=on_body)
    assert messages[0]["status"] == 200
    bodies = body_messages(messages)
    assert bodies[0]["body"].decode("utf-8-sig").startswith("日時,利用者")
    assert reading_when_first_sent[0], "the whole log was read before the first byte was sent"
    assert sum(1 for m in bodies if m.get("more_body")) > 1
    content = b"".join(m.get("body", b"") for m in bodies).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(content)))) == rows + 1 + 1  # header, the export's own
