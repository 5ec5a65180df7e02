"""Each list has one filter definition behind its page, API and CSV; counts stop at a limit;
pages follow a cursor through every row exactly once and never out of the user's scope."""

from __future__ import annotations

import base64
import csv
import datetime
import io
import re
from html import unescape
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import PersonalDataAccess
from crm.pagination import encode_cursor
from tests.conftest import response_bytes
from tests.factories import UserFactory
from tickets.models import Inquiry, Status

pytestmark = pytest.mark.django_db

_NEXT = re.compile(r'href="\?([^"]*after=[^"]*)">次へ')
_PREVIOUS = re.compile(r'href="\?([^"]*before=[^"]*)">前へ')


def _page_ids(response) -> list[int]:
    assert response.status_code == 200
    return [i.pk for i in response.context["page"]]


def _api_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def many(open_inquiry, agent_a, city_a, city_b, supervisor):
    """110 tickets of city A and 5 of city B; created_at ties straddle the page boundaries."""
    mine = [open_inquiry(title=f"返礼品が破損していた {n}") for n in range(110)]
    theirs = [
        open_inquiry(actor=supervisor, municipality=city_b, title=f"破損 福山 {n}")
        for n in range(5)
    ]
    base = timezone.now() - datetime.timedelta(days=1)
    for n, inquiry in enumerate(mine + theirs):
        # Groups of seven share a timestamp, so a page often ends inside a group.
        Inquiry.objects.filter(pk=inquiry.pk).update(
            created_at=base - datetime.timedelta(minutes=n // 7)
        )
    for inquiry in mine[::3]:
        Inquiry.objects.filter(pk=inquiry.pk).update(status=Status.CLOSED)
    return mine, theirs


def _newest_first(inquiries) -> list[int]:
    rows = Inquiry.objects.filter(pk__in=[i.pk for i in inquiries])
    return list(rows.order_by("-created_at", "-pk").values_list("pk", flat=True))


def test_page_and_api_return_the_same_rows_for_the_same_filters(
    login, agent_a, supervisor, city_a, many
):
    mine, _ = many
    Inquiry.objects.filter(pk__in=[i.pk for i in mine[:20]]).update(severity="urgent")
    for user in (agent_a, supervisor):
        client = login(user)
        for filters in (
            {"status": "open"},
            {"status": "all", "q": "破損"},
            {"status": "done", "severity": "urgent"},
            {"status": "all", "municipality": city_a.pk, "q": "破損 返礼品"},
            {"status": str(Status.CLOSED.value)},
        ):
            page = _page_ids(client.get(reverse("ticket_list"), filters))
            api = _api_ids(client.get("/api/tickets/", filters))
            assert page == api, filters
            assert page, filters
    # The page's old parameter names keep working, with the same meaning.
    client = login(supervisor)
    old = _page_ids(client.get(reverse("ticket_list"), {"state": "open", "m": city_a.pk}))
    new = _page_ids(
        client.get(reverse("ticket_list"), {"status": "open", "municipality": city_a.pk})
    )
    assert old == new and old
    # Without a status the page lists every state and the API open tickets, as before.
    assert len(_page_ids(client.get(reverse("ticket_list"), {"m": city_a.pk}))) == 50
    assert _api_ids(client.get("/api/tickets/", {"municipality": city_a.pk})) == new[:50]


def test_api_refuses_parameters_the_page_definition_rejects(login, agent_a, many):
    client = login(agent_a)
    assert client.get("/api/tickets/", {"status": "sometimes"}).status_code == 400
    assert client.get("/api/tickets/", {"municipality": "x"}).status_code == 400


def test_counts_stop_at_the_limit(login, agent_a, open_inquiry, settings):
    for n in range(5):
        open_inquiry(title=f"寄附金受領証明書が届かない {n}")
    settings.LIST_COUNT_LIMIT = 3
    client = login(agent_a)
    assert "3件以上" in client.get(reverse("ticket_list"), {"q": "受領証明"}).content.decode()
    settings.LIST_COUNT_LIMIT = 5
    body = client.get(reverse("ticket_list"), {"q": "受領証明"}).content.decode()
    assert "5件" in body and "5件以上" not in body
    settings.LIST_COUNT_LIMIT = 1000
    assert "5件" in client.get(reverse("ticket_list")).content.decode()


def _walk_page(client, url: str, params: dict) -> tuple[list[int], str]:
    """Follow 次へ to the end; returns the ids in order and the last page's query string."""
    response = client.get(url, params)
    seen = _page_ids(response)
    query = ""
    while match := _NEXT.search(response.content.decode()):
        query = unescape(match.group(1))
        response = client.get(f"{url}?{query}")
        seen += _page_ids(response)
    return seen, query


def test_the_page_cursor_walks_every_row_once_in_order_and_back(login, supervisor, many):
    mine, theirs = many
    client = login(supervisor)
    url = reverse("ticket_list")
    seen, last_query = _walk_page(client, url, {"status": "all"})
    assert seen == _newest_first(mine + theirs)
    # And back again with 前へ, page by page.
    response = client.get(f"{url}?{last_query}")
    back = _page_ids(response)
    while match := _PREVIOUS.search(response.content.decode()):
        response = client.get(f"{url}?{unescape(match.group(1))}")
        back = _page_ids(response) + back
    assert back == seen
    # The filters travel with the cursor.
    found, _ = _walk_page(client, url, {"status": "all", "q": "福山"})
    assert found == _newest_first(theirs)


def test_the_api_cursor_walks_every_row_once_in_order(login, supervisor, many):
    mine, theirs = many
    client = login(supervisor)
    response = client.get("/api/tickets/", {"status": "all"})
    assert "count" not in response.json()  # no full count behind each page
    seen = _api_ids(response)
    while url := response.json()["next"]:
        response = client.get(url)
        seen += _api_ids(response)
    assert seen == _newest_first(mine + theirs)


def test_a_cursor_never_leaves_the_city(login, city_official_a, many):
    mine, theirs = many
    client = login(city_official_a)
    url = reverse("ticket_list")
    seen, _ = _walk_page(client, url, {"status": "all"})
    assert seen == _newest_first(mine)
    # A cursor made from the other city's row (just above its newest) moves within our rows.
    newest_b = Inquiry.objects.get(pk=_newest_first(theirs)[0])
    forged = encode_cursor(newest_b.created_at + datetime.timedelta(days=1), newest_b.pk + 1)
    for name in ("after", "before"):
        ids = _page_ids(client.get(url, {"status": "all", name: forged}))
        assert not set(ids) & {i.pk for i in theirs}
    # Nonsense is the first page.
    naive = base64.urlsafe_b64encode(b'["2024-01-01T00:00:00", 1]').decode()
    text_id = base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+09:00", "1"]').decode()
    for junk in ("x", "eyJhIjoxfQ", "!!!!", "W10", naive, text_id):
        assert _page_ids(client.get(url, {"status": "all", "after": junk})) == seen[:50]
    # The API: a tampered cursor is 404, a forged position still only this city's rows.
    api = client.get("/api/tickets/", {"status": "all", "cursor": base64.b64encode(b"o=x")})
    assert api.status_code == 404
    api = client.get("/api/tickets/", {"status": "all", "cursor": base64.b64encode(b"nope")})
    assert _api_ids(api) == seen[:50]
    position = newest_b.created_at + datetime.timedelta(days=1)
    forged = base64.b64encode(urlencode({"p": str(position)}).encode())
    assert _api_ids(client.get("/api/tickets/", {"status": "all", "cursor": forged})) == seen[:50]
    # A position that is not a time is refused, not a server error.
    garbled = base64.b64encode(f"p={position}".encode())  # "+09:00" read back as " 09:00"
    assert client.get("/api/tickets/", {"status": "all", "cursor": garbled}).status_code == 404
    walked = []
    response = client.get(
        "/api/tickets/", {"status": "all", "municipality": theirs[0].municipality_id}
    )
    assert _api_ids(response) == []
    response = client.get("/api/tickets/", {"status": "all"})
    while True:
        walked += _api_ids(response)
        if not response.json()["next"]:
            break
        response = client.get(response.json()["next"])
    assert walked == _newest_first(mine)


def test_the_scope_is_applied_once(login, agent_a, supervisor, many):
    """A second ``municipality_id IN (…)`` made PostgreSQL square its selectivity and choose a
    bitmap scan with a sort over every match instead of walking the newest-first index."""
    for user, path in (
        (agent_a, reverse("ticket_list") + "?q=破損"),
        (supervisor, reverse("ticket_list") + "?q=破損"),
        (supervisor, reverse("console_search") + "?q=破損"),
        (supervisor, "/api/tickets/?q=破損"),
    ):
        client = login(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        searches = [q["sql"] for q in queries.captured_queries if "search_text" in q["sql"]]
        assert searches, path
        for sql in searches:
            assert sql.count('"municipality_id" IN') == 1, (path, sql)


def test_a_list_page_takes_a_fixed_number_of_queries(login, supervisor, many):
    client = login(supervisor)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("ticket_list"), {"q": "福山", "status": "all"})
    with CaptureQueriesContext(connection) as full:
        client.get(reverse("ticket_list"), {"status": "all"})
    # The search adds its identifier probes (number, phone, reading, name …), a fixed few;
    # the views, saved views and bulk form add theirs. Neither grows with the rows shown.
    assert len(full) <= 15
    assert len(few) - len(full) <= 3
    with CaptureQueriesContext(connection) as api:
        client.get("/api/tickets/", {"status": "all"})
    assert len(api) <= 14


# --- the access log -------------------------------------------------------------------------


def _csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response_bytes(response).decode("utf-8-sig"))))


def test_access_log_page_api_and_csv_agree(login, operator_admin, agent_a, city_a, city_b):
    other = UserFactory(username="other_agent", role="agent", municipalities=[city_b])
    old = timezone.now() - datetime.timedelta(days=10)
    for n in range(4):
        PersonalDataAccess.objects.create(
            user=agent_a, municipality=city_a, action="view", record_type="donor", record_id=n
        )
    PersonalDataAccess.objects.create(
        user=other, municipality=city_b, action="view", record_type="ticket", record_id="9"
    )
    early = PersonalDataAccess.objects.create(
        user=agent_a, municipality=city_a, action="api", record_type="ticket", record_id="7"
    )
    PersonalDataAccess.objects.filter(pk=early.pk).update(at=old)
    client = login(operator_admin)
    day = timezone.localdate(old).isoformat()
    for filters in (
        {"user": str(agent_a.pk)},
        {"user": "agent_a"},
        {"type": "ticket"},
        {"municipality": city_b.pk},
        {"m": city_a.pk, "action": "view"},
        {"since": day, "until": day},
        {"until": day},
    ):
        listed = list(client.get(reverse("access_log"), filters).context["page"])
        page = [r.pk for r in listed]
        api = _api_ids(client.get("/api/personal-data-access/", filters))
        # One CSV: the page's download and the API's are the same file of the same rows.
        for csv_url in (reverse("access_log_export"), "/api/personal-data-access/export/"):
            rows = _csv_rows(client.get(csv_url, filters))
            assert rows[0][:5] == ["日時", "利用者", "操作", "対象", "対象ID"]
            in_file = [(row[3], row[4]) for row in rows[1:] if row[3] != "access_log.csv"]
            assert in_file == [(r.record_type, r.record_id) for r in listed], (csv_url, filters)
        assert page == api and page, filters
    listed = {r.pk for r in client.get(reverse("access_log"), {"until": day}).context["page"]}
    assert listed == {early.pk}


def test_web_connections_plan_without_parallel_workers_or_jit():
    """On a busy host a 1M-ticket search took 5 ms alone and 20–80 ms with parallel workers."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_the_schema_documents_the_one_definition_and_the_cursor(login, agent_a):
    schema = login(agent_a).get("/api/schema/", {"format": "json"}).json()

    def names(path: str) -> set[str]:
        return {p["name"] for p in schema["paths"][path]["get"].get("parameters", [])}

    assert {"q", "status", "municipality", "category", "cursor"} <= names("/api/tickets/")
    log = {"user", "type", "action", "municipality", "since", "until"}
    assert log | {"cursor"} <= names("/api/personal-data-access/")
    assert log <= names("/api/personal-data-access/export/")
    page = schema["components"]["schemas"]["PaginatedInquiryList"]["properties"]
    assert set(page) == {"next", "previous", "results"}


def test_every_api_list_pages_by_cursor_without_a_full_count(login, agent_a, city_a):
    from tests.factories import ShipmentFactory

    for _ in range(2):
        ShipmentFactory(donation__donor__municipality=city_a)
    client = login(agent_a)
    for path in ("/api/donors/", "/api/donations/", "/api/shipments/", "/api/tickets/"):
        body = client.get(path).json()
        assert set(body) == {"next", "previous", "results"}, path
