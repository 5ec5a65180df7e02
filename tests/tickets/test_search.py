"""Japanese substring search: what an agent types finds what was written, only in their cities."""

from __future__ import annotations

import pytest

from tickets import services
from tickets.models import Inquiry
from tickets.search import normalize_for_search, search_inquiries

pytestmark = pytest.mark.django_db


def found(user, query: str) -> set[int]:
    return set(search_inquiries(Inquiry.objects.all(), user, query).values_list("pk", flat=True))


@pytest.fixture
def receipt(open_inquiry):
    return open_inquiry(title="寄附金受領証明書が届かない", description="再発行を希望")


@pytest.fixture
def damaged(open_inquiry):
    return open_inquiry(
        title="いくらの容器が破損", description="ｶﾆも傷んでいた。注文番号ＡＢＣ１２３"
    )


def test_kanji_substring_finds_longer_word(agent_a, receipt, damaged):
    assert found(agent_a, "受領証明") == {receipt.pk}


def test_two_character_query(agent_a, receipt, damaged):
    assert found(agent_a, "破損") == {damaged.pk}
    assert found(agent_a, "受領") == {receipt.pk}
    assert found(agent_a, "損傷") == set()


def test_full_and_half_width_match_each_other(agent_a, receipt, damaged):
    assert found(agent_a, "abc123") == {damaged.pk}
    assert found(agent_a, "ＡＢＣ") == {damaged.pk}
    assert found(agent_a, "カニ") == {damaged.pk}  # written in half-width ｶﾆ


def test_hiragana_and_katakana_match_each_other(agent_a, receipt, damaged):
    assert found(agent_a, "イクラ") == {damaged.pk}
    assert found(agent_a, "いくら") == {damaged.pk}
    assert found(agent_a, "かに") == {damaged.pk}


def test_all_words_must_match(agent_a, receipt, damaged):
    assert found(agent_a, "受領 再発行") == {receipt.pk}
    assert found(agent_a, "受領 破損") == set()
    assert found(agent_a, "   ") == set()


def test_follow_ups_are_searchable(agent_a, receipt):
    services.inquiry_reply(actor=agent_a, inquiry=receipt, body="再送の手配をいたしました")
    services.inquiry_add_customer_message(
        inquiry=receipt, body="ヤマト運輸で届きました", channel="email"
    )
    assert found(agent_a, "手配") == {receipt.pk}
    assert found(agent_a, "やまと運輸") == {receipt.pk}


def test_search_is_scoped_to_the_users_municipalities(
    agent_a, city_b, supervisor, city_official_b, open_inquiry, receipt
):
    other = open_inquiry(actor=supervisor, municipality=city_b, title="受領証明書の宛名")
    assert found(agent_a, "受領証明") == {receipt.pk}
    assert found(supervisor, "受領証明") == {receipt.pk, other.pk}
    assert found(city_official_b, "受領証明") == {other.pk}
    assert found(city_official_b, "届かない") == set()


def test_operator_only_notes_are_not_searchable_by_city_officials(
    agent_a, city_official_a, receipt
):
    services.inquiry_add_note(actor=agent_a, inquiry=receipt, body="過去にクレーム多数")
    services.inquiry_add_note(
        actor=agent_a, inquiry=receipt, body="市の担当者へ連絡済", operator_only=False
    )
    assert found(agent_a, "クレーム") == {receipt.pk}
    assert found(agent_a, "くれ") == {receipt.pk}
    assert found(city_official_a, "クレーム") == set()
    assert found(city_official_a, "くれ") == set()
    assert found(city_official_a, "連絡済") == {receipt.pk}


def test_merge_carries_the_duplicates_text(agent_a, open_inquiry, receipt):
    duplicate = open_inquiry(title="ワンストップ申請書の件")
    services.inquiry_merge(actor=agent_a, duplicate=duplicate, into=receipt)
    assert receipt.pk in found(agent_a, "ワンストップ")


def test_normalization():
    # Kana fold as donors' readings do (crm.normalize.fold_kana): to katakana.
    assert normalize_for_search("ｶﾞｲﾄﾞ ＡＢＣ かたかな") == "ガイド abc カタカナ"


def test_a_reading_typed_in_hiragana_finds_katakana_and_back(agent_a, open_inquiry):
    written = open_inquiry(title="ヤマダ様より", description="ゆうぱっく の件")
    assert written.pk in found(agent_a, "やまだ")
    assert written.pk in found(agent_a, "ﾕｳﾊﾟｯｸ")


def test_search_text_stored_by_the_old_fold_is_folded_again(open_inquiry):
    import importlib

    from django.apps import apps
    from django.db import connection

    inquiry = open_inquiry(title="x")
    # As the hiragana fold stored it before migration 0008.
    Inquiry.objects.filter(pk=inquiry.pk).update(
        search_text="やまだ ゆうぱっく", search_text_internal="めも"
    )
    migration = importlib.import_module("tickets.migrations.0008_search_text_katakana")
    with connection.schema_editor() as editor:
        migration.to_katakana(apps, editor)
    inquiry.refresh_from_db()
    assert (inquiry.search_text, inquiry.search_text_internal) == ("ヤマダ ユウパック", "メモ")
