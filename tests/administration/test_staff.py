"""Staff in the operator admin area: create/invite, role and assignments, deactivate (sessions
and sockets end), password reset, CSV bulk creation (all or nothing), who sees which city."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog, EnrolmentLink, User
from telephony.models import AgentPresence
from tests.conftest import PASSWORD, login_as
from tests.crm.test_session_sockets import closed_for_session, open_socket, signed_in
from tests.factories import UserFactory

HEADER = "username,display_name,role,municipalities,email\n"


def _url(name: str, *args) -> str:
    return reverse(f"administration:{name}", args=args)


def _sessions_of(user: User) -> int:
    return sum(
        1
        for s in Session.objects.all()
        if str(s.get_decoded().get("_auth_user_id")) == str(user.pk)
    )


@pytest.mark.django_db
def test_create_an_agent_with_an_enrolment_link_then_they_log_in(admin, city_a, operator_admin):
    response = admin.post(
        _url("staff_create"),
        {
            "username": "new_agent",
            "display_name": "新人 一郎",
            "role": "agent",
            "municipalities": [city_a.pk],
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    user = User.objects.get(username="new_agent")
    assert list(user.municipalities.all()) == [city_a]
    link = EnrolmentLink.objects.get(user=user, used_at__isnull=True)
    assert link.issued_by == operator_admin
    assert "/2fa/enrol/" in page
    password = page.split('class="password"')[0].rsplit('value="', 1)[1].split('"')[0]
    # The temporary password shown once works, and two-factor enrolment follows.
    client = Client()
    assert (
        client.post(reverse("login"), {"username": "new_agent", "password": password}).status_code
        == 302
    )
    assert client.get(reverse("console"))["Location"].startswith(reverse("two_factor"))
    created = AuditLog.objects.get(detail__what="staff.create")
    assert created.detail["target"] == "new_agent" and created.detail["municipalities"] == [
        "012033"
    ]


@pytest.mark.django_db
def test_city_official_needs_exactly_one_city(admin, city_a, city_b):
    response = admin.post(
        _url("staff_create"),
        {"username": "city_x", "role": "city_official", "municipalities": [city_a.pk, city_b.pk]},
    )
    assert "1つだけ" in response.content.decode()
    assert not User.objects.filter(username="city_x").exists()
    response = admin.post(
        _url("staff_create"),
        {"username": "city_x", "role": "city_official", "municipalities": [city_a.pk]},
    )
    assert response.status_code == 200 and "自治体職員はパスワードのみ" in response.content.decode()


@pytest.mark.django_db
def test_username_taken_regardless_of_case(admin, agent_a):
    response = admin.post(_url("staff_create"), {"username": "AGENT_A", "role": "agent"})
    assert "すでに使われています" in response.content.decode()


@pytest.mark.django_db
def test_edit_role_and_assignments(admin, agent_a, city_a, city_b):
    admin.post(
        _url("staff_edit", agent_a.pk),
        {"role": "supervisor", "display_name": "昇格", "municipalities": [city_a.pk, city_b.pk]},
    )
    agent_a.refresh_from_db()
    assert agent_a.role == "supervisor"
    assert set(agent_a.municipalities.all()) == {city_a, city_b}
    change = AuditLog.objects.get(detail__what="staff.update")
    assert change.detail["before"] == {"role": "agent", "municipalities": ["012033"]}
    assert change.detail["after"]["role"] == "supervisor"


@pytest.mark.django_db
def test_admin_cannot_demote_or_deactivate_themselves(admin, operator_admin):
    admin.post(_url("staff_edit", operator_admin.pk), {"role": "agent"})
    operator_admin.refresh_from_db()
    assert operator_admin.role == "operator_admin"
    admin.post(_url("staff_deactivate", operator_admin.pk))
    operator_admin.refresh_from_db()
    assert operator_admin.is_active


@pytest.mark.django_db
def test_password_reset_shows_a_temporary_password_and_ends_sessions(admin, agent_a):
    login_as(Client(), agent_a)
    assert _sessions_of(agent_a) == 1
    response = admin.post(_url("staff_password_reset", agent_a.pk))
    page = response.content.decode()
    temporary = page.split('id="temporary-password"')[0].rsplit('value="', 1)[1].split('"')[0]
    agent_a.refresh_from_db()
    assert agent_a.check_password(temporary) and not agent_a.check_password(PASSWORD)
    assert _sessions_of(agent_a) == 0
    assert AuditLog.objects.filter(detail__what="staff.password_reset").exists()


@pytest.mark.django_db
def test_reactivate(admin, agent_a):
    admin.post(_url("staff_deactivate", agent_a.pk))
    agent_a.refresh_from_db()
    assert not agent_a.is_active
    admin.post(_url("staff_reactivate", agent_a.pk))
    agent_a.refresh_from_db()
    assert agent_a.is_active


@pytest.mark.django_db
def test_staff_list_folds_in_two_factor_and_unlock(admin, agent_a):
    page = admin.get(_url("staff_list")).content.decode()
    assert reverse("staff_enrolment_link", args=[agent_a.pk]) in page
    assert reverse("staff_two_factor_reset", args=[agent_a.pk]) in page
    # Acting from the admin area returns to it.
    response = admin.post(
        reverse("staff_two_factor_reset", args=[agent_a.pk]) + "?next=" + _url("staff_list")
    )
    assert response["Location"] == _url("staff_list")
    response = admin.post(
        reverse("staff_two_factor_reset", args=[agent_a.pk]) + "?next=https://evil.example/"
    )
    assert response["Location"] == reverse("staff_list")
    assert admin.get(reverse("staff_list")).status_code == 200  # /staff/ still works


@pytest.mark.django_db
def test_access_matrix(admin, agent_a, supervisor, city_official_b, operator_admin, city_a, city_b):
    inactive = UserFactory(username="gone", role="agent", municipalities=[city_a])
    inactive.is_active = False
    inactive.save()
    page = admin.get(_url("access_matrix")).content.decode()

    def marks(user):
        cells = page.split(f'id="access-{user.pk}"')[1].split("</tr>")[0]
        return [cell.split(">", 1)[1].split("<", 1)[0] for cell in cells.split("<td")[3:]]

    # Columns in code order: 小樽市 012033, 福山市 342076.
    assert marks(agent_a) == ["○", "—"]
    assert marks(supervisor) == ["○", "○"]
    assert marks(city_official_b) == ["—", "○"]
    assert marks(operator_admin) == ["○", "○"]
    assert marks(inactive) == ["—", "—"]


# --- CSV ------------------------------------------------------------------------------------


def _upload(admin, text: str, encoding: str = "utf-8"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return admin.post(
        _url("staff_import"),
        {"file": SimpleUploadedFile("staff.csv", text.encode(encoding), content_type="text/csv")},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_bulk_creation(admin, city_a, city_b, encoding):
    text = (
        HEADER
        + "otaru1,小樽 一郎,オペレーター,012033,\r\n"
        + "sv1,監督 花子,スーパーバイザー,012033 342076,sv1@example.jp\r\n"
        + "fukuyama_city,福山 次郎,自治体職員,342076,\r\n"
    )
    response = _upload(admin, text, encoding)
    assert response.status_code == 200, response.content.decode()
    users = {
        u.username: u for u in User.objects.filter(username__in=["otaru1", "sv1", "fukuyama_city"])
    }
    assert users["otaru1"].display_name == "小樽 一郎" and users["otaru1"].role == "agent"
    assert set(users["sv1"].municipalities.all()) == {city_a, city_b}
    assert users["fukuyama_city"].role == "city_official"
    assert response.content.decode().count("/2fa/enrol/") == 2
    assert AuditLog.objects.get(detail__what="staff.bulk_create").detail["count"] == 3


@pytest.mark.django_db
def test_csv_with_bad_rows_creates_nothing_and_names_each_line(admin, city_a, agent_a):
    text = (
        HEADER
        + "good1,良い 一郎,オペレーター,012033,\n"
        + "agent_a,重複,オペレーター,012033,\n"  # 3: taken
        + "bad_role,役割違い,社長,012033,\n"  # 4
        + "no_city,自治体なし,オペレーター,999999,\n"  # 5
        + "good1,同じ名前,オペレーター,012033,\n"  # 6: twice in the file
        + ",名前なし,オペレーター,012033,\n"  # 7
        + "two_cities,二市,自治体職員,012033 342076,\n"  # 8: 342076 unknown here
        + "bad_mail,メール違い,オペレーター,012033,not-an-address\n"  # 9
    )
    response = _upload(admin, text)
    assert response.status_code == 400
    page = response.content.decode()
    errors = page.split('id="csv-errors"')[1].split("</div>")[0]
    for line in (3, 4, 5, 6, 7, 8, 9):
        assert f"{line}行目" in errors, line
    assert "2行目" not in errors
    assert "社長" in errors and "999999" in errors
    assert not User.objects.filter(username__in=["good1", "bad_role", "bad_mail"]).exists()
    assert not AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).exists()


@pytest.mark.django_db
def test_csv_header_and_encoding_checked(admin):
    response = _upload(admin, "name,role\nx,agent\n")
    assert "1行目の見出し" in response.content.decode()
    response = admin.post(
        _url("staff_import"),
        {"file": __import__("io").BytesIO(b"\xff\xfe\x00\x00bad")},
    )
    assert response.status_code == 400


# --- Deactivation ends sessions and closes sockets ------------------------------------------


@pytest.fixture
def ticket_a(city_a, agent_a):
    from tickets import services as ticket_services

    return ticket_services.inquiry_open(
        actor=agent_a, municipality=city_a, channel="phone", title="配送の確認", description=""
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_deactivation_closes_every_session_and_socket(operator_admin, agent_a, ticket_a):
    first = await signed_in(agent_a)
    second = await signed_in(agent_a)
    await AgentPresence.objects.acreate(user=agent_a, state="available", since=timezone.now())
    sockets = [
        await open_socket(first, "/ws/telephony/agent/"),
        await open_socket(first, "/ws/console/"),
        await open_socket(second, f"/ws/tickets/{ticket_a.pk}/presence/"),
    ]
    admin = await sync_to_async(login_as)(Client(), operator_admin)
    response = await sync_to_async(admin.post)(_url("staff_deactivate", agent_a.pk))
    assert response.status_code == 302
    assert [await closed_for_session(comm) for comm in sockets] == [True, True, True]
    assert await sync_to_async(_sessions_of)(agent_a) == 0
    page = await sync_to_async(first.get)(reverse("console"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    audit = await AuditLog.objects.aget(detail__what="staff.deactivate")
    assert audit.detail["sessions"] == 2
    assert (await AgentPresence.objects.aget(user=agent_a)).state == "offline"
    for comm in sockets:
        await comm.disconnect()


@pytest.mark.django_db
def test_the_sample_csv_imports_as_it_is(admin, city_a, city_b):
    sample = admin.get(_url("staff_import_sample"))
    assert sample["Content-Type"].startswith("text/csv")
    response = _upload(admin, sample.content.decode("utf-8"), "utf-8")
    assert response.status_code == 200
    assert set(
        User.objects.filter(username__in=["yamada_t", "suzuki_h", "city_tanaka"]).values_list(
            "role", flat=True
        )
    ) == {"agent", "supervisor", "city_official"}
