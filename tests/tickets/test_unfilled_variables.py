"""A 定型文 whose placeholders the ticket could not fill is refused, text kept, until edited."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from tickets.models import InquiryEvent

pytestmark = pytest.mark.django_db

CANNED = (
    "鈴木 一郎 様\n{返礼品名}は{発送日}に{配送業者}にて発送いたしました。伝票番号は{伝票番号}です。"
)
MESSAGE = (
    "未入力の変数があります: {返礼品名} {発送日} {配送業者} {伝票番号}。"
    "実際の内容に書き換えるか削除してから登録してください。"
)


def _textarea(page: str) -> str:
    match = re.search(r'<textarea name="body" id="reply-body"[^>]*>\n?(.*?)</textarea>', page, re.S)
    assert match, "no reply box"
    return html.unescape(match.group(1))


@pytest.mark.parametrize("kind", ["reply", "note"])
def test_unfilled_placeholders_are_refused_and_the_text_is_kept(login, agent_a, open_inquiry, kind):
    inquiry = open_inquiry()
    client = login(agent_a)
    response = client.post(
        reverse("ticket_followup", args=[inquiry.pk]), {"kind": kind, "body": CANNED}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert html.escape(MESSAGE, quote=False) in page
    assert _textarea(page) == CANNED
    assert re.search(rf'name="kind" value="{kind}" checked', page)
    assert InquiryEvent.objects.filter(inquiry=inquiry).count() == 1  # only the opening row


def test_the_edited_text_goes_through(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    edited = (
        "鈴木 一郎 様\nいくらは12月20日にヤマト運輸にて発送いたしました。"
        "伝票番号は 4000-0000-0013 です。{ご参考}"  # braces around an unknown name are text
    )
    response = client.post(
        reverse("ticket_followup", args=[inquiry.pk]), {"kind": "reply", "body": edited}
    )
    assert response.status_code == 302
    event = InquiryEvent.objects.get(inquiry=inquiry, kind="reply")
    assert event.followup.comment == edited


def test_the_page_hands_the_variable_list_and_message_to_the_reply_box(
    login, agent_a, open_inquiry
):
    page = login(agent_a).get(reverse("ticket_detail", args=[open_inquiry().pk])).content.decode()
    config = re.search(r'<script id="composer-config" type="application/json">(.*?)</script>', page)
    assert config and "伝票番号" in config.group(1).encode().decode("unicode_escape")


def test_the_api_refuses_the_same(login, agent_a, open_inquiry):
    inquiry = open_inquiry()
    client = login(agent_a)
    for path in ("reply", "notes"):
        response = client.post(
            f"/api/tickets/{inquiry.pk}/{path}/", {"body": CANNED}, content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["body"] == [MESSAGE]
    assert InquiryEvent.objects.filter(inquiry=inquiry).count() == 1
