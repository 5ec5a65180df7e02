"""Knowledge pages: operator staff search; supervisors edit their cities; nobody crosses cities."""

from __future__ import annotations

import pytest
from django.urls import reverse

from knowledge.models import CannedReply
from knowledge.services import knowledge_save

pytestmark = pytest.mark.django_db


def test_agent_searches_the_starter_set(login, agent_a):
    body = login(agent_a).get(reverse("knowledge_index"), {"q": "ワンストップ"}).content.decode()
    assert "ワンストップ特例の条件と申請期限（翌年1月10日必着）" in body
    assert "受領証明書の再発行のご案内" not in body


def test_hostile_text_is_shown_escaped(login, supervisor, city_a):
    knowledge_save(
        actor=supervisor,
        model=CannedReply,
        municipality=city_a,
        title="<img src=x onerror=alert(1)>",
        body="{{ settings.SECRET_KEY }}<script>x</script>",
    )
    body = login(supervisor).get(reverse("knowledge_index")).content.decode()
    assert "<img src=x" not in body and "&lt;img src=x" in body
    assert "<script>x</script>" not in body and "{{ settings.SECRET_KEY }}" in body


def test_supervisor_creates_for_own_city_only(login, supervisor, city_a, city_b, operator_admin):
    client = login(supervisor)
    response = client.post(
        reverse("knowledge_new", args=["canned"]),
        {
            "municipality": city_a.id,
            "title": "小樽の年末案内",
            "body": "{寄附者名} 様",
            "sort_order": 5,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    row = CannedReply.objects.get(title="小樽の年末案内")
    assert row.municipality == city_a and row.updated_by == supervisor
    # The operator-wide defaults are the admins' to edit.
    response = client.post(
        reverse("knowledge_new", args=["canned"]),
        {"municipality": "", "title": "共通", "body": "x", "sort_order": 5},
    )
    assert response.status_code == 200 and not CannedReply.objects.filter(title="共通").exists()
    default = CannedReply.objects.get(seed_key="canned-one-stop")
    assert client.get(reverse("knowledge_edit", args=["canned", default.id])).status_code == 403


def test_other_city_rows_do_not_exist_for_outsiders(
    login, operator_admin, agent_a, city_b, city_official_b
):
    row = knowledge_save(
        actor=operator_admin, model=CannedReply, municipality=city_b, title="福山の案内", body="x"
    )
    client = login(agent_a)
    assert client.get(reverse("knowledge_edit", args=["canned", row.id])).status_code == 404
    assert "福山の案内" not in client.get(reverse("knowledge_index")).content.decode()
    official = login(city_official_b)
    assert official.get(reverse("knowledge_index")).status_code == 403
    assert official.get(reverse("knowledge_edit", args=["canned", row.id])).status_code == 403


def test_agents_cannot_edit(login, agent_a, operator_admin, city_a):
    row = knowledge_save(
        actor=operator_admin, model=CannedReply, municipality=city_a, title="小樽", body="x"
    )
    client = login(agent_a)
    assert client.get(reverse("knowledge_edit", args=["canned", row.id])).status_code == 403
    response = client.post(
        reverse("knowledge_new", args=["faq"]),
        {"municipality": city_a.id, "title": "t", "body": "b", "sort_order": 1},
    )
    assert response.status_code == 200
    assert "権限がありません" in response.content.decode()
