"""Knowledge base: the starter set, scoping of municipal and operator-wide rows, who may edit."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from knowledge.models import Article, CannedReply
from knowledge.services import knowledge_save, seed_starter_content

pytestmark = pytest.mark.django_db


def test_starter_set_is_there_and_reseeding_does_not_duplicate():
    before = CannedReply.objects.count()
    one_stop = Article.objects.get(seed_key="faq-one-stop-rules")
    assert "1月10日" in one_stop.body and "5自治体" in one_stop.body
    assert "確定申告" in one_stop.body and "変更届出書" in one_stop.body
    for key in (
        "canned-one-stop",
        "canned-receipt-reissue",
        "canned-address-change",
        "canned-damaged-gift",
    ):
        assert CannedReply.objects.filter(seed_key=key, municipality=None).exists()
    seed_starter_content()
    assert CannedReply.objects.count() == before


def test_city_rows_are_only_seen_by_that_citys_staff(
    city_a, city_b, agent_a, city_official_b, operator_admin
):
    own = knowledge_save(
        actor=operator_admin, model=CannedReply, municipality=city_a, title="小樽の案内", body="x"
    )
    other = knowledge_save(
        actor=operator_admin, model=CannedReply, municipality=city_b, title="福山の案内", body="y"
    )
    visible = set(CannedReply.objects.visible_to(agent_a).values_list("id", flat=True))
    assert own.id in visible and other.id not in visible
    assert CannedReply.objects.filter(seed_key="canned-one-stop").first().id in visible
    # A city official sees neither another city's rows nor the operator's working defaults.
    official = set(CannedReply.objects.visible_to(city_official_b).values_list("id", flat=True))
    assert official == {other.id}


def test_agents_cannot_edit_and_supervisors_cannot_touch_operator_defaults(
    city_a, agent_a, supervisor
):
    with pytest.raises(PermissionDenied):
        knowledge_save(actor=agent_a, model=Article, municipality=city_a, title="t", body="b")
    with pytest.raises(PermissionDenied):
        knowledge_save(actor=supervisor, model=Article, municipality=None, title="t", body="b")
    row = knowledge_save(actor=supervisor, model=Article, municipality=city_a, title="t", body="b")
    assert row.updated_by == supervisor
