"""Enrolment with an operator admin's link, lock-out and unlock, through the real server."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _submit_login(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("main button[type=submit]")


def test_enrol_with_a_link_then_lock_and_unlock(
    page, browser, browser_login, live_server_url, operator_admin, agent_a
):
    browser_login(page, operator_admin)
    page.goto("/staff/")
    row = page.locator(f"#user-{agent_a.pk}")
    expect(row).to_contain_text("未登録")
    row.get_by_role("button", name="登録リンク発行").click()
    link = page.locator("#enrolment-link").input_value()
    assert re.fullmatch(rf"{live_server_url}/2fa/enrol/[\w-]+/", link), link

    context = browser.new_context(base_url=live_server_url, locale="ja-JP")
    agent = context.new_page()
    # The password alone shows no key …
    agent.goto("/login/")
    _submit_login(agent, "agent_a", PASSWORD)
    expect(agent.locator("main")).to_contain_text("登録用リンクを管理者に発行してもらってください")
    expect(agent.locator("main code")).to_have_count(0)
    # … the link does.
    agent.goto(link)
    secret = agent.locator("main code").inner_text()
    code = TOTP(base64.b32decode(secret)).token()
    agent.fill("input[name=token]", f"{code:06d}")
    with agent.expect_navigation():
        agent.click("main button[type=submit]")
    agent.wait_for_url("**/console/")
    context.close()

    # Ten wrong passwords lock the account; then the right one is refused too.
    context = browser.new_context(base_url=live_server_url, locale="ja-JP")
    intruder = context.new_page()
    intruder.goto("/login/")
    for _ in range(10):
        _submit_login(intruder, "agent_a", "Wrong#Pass1")
    _submit_login(intruder, "agent_a", PASSWORD)
    expect(intruder.locator("main")).to_contain_text("ログインの失敗が続いたため")
    assert "/login/" in intruder.url

    page.goto("/staff/")
    expect(row).to_contain_text("ロック中")
    row.get_by_role("button", name="ロック解除").click()
    expect(page.locator(".messages")).to_contain_text("ロックを解除しました")

    intruder.goto("/login/")
    _submit_login(intruder, "agent_a", PASSWORD)
    intruder.wait_for_url("**/2fa/**")
    context.close()
