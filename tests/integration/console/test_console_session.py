"""Console sessions: logging in and out with hookd's accounts, the cookie's flags, form tokens,
and what a `user` account may not do or see."""

from __future__ import annotations

import re

import httpx
import pytest

from support import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Api,
    console_client,
    console_login,
    form_token,
)

pytestmark = pytest.mark.parametrize("run_worker", [False])


async def test_pages_lead_to_the_login_until_logged_in(api: Api) -> None:
    for path in ("/", "/webhooks", "/deliveries?state=failed", "/repositories"):
        answer = await api.client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
    answer = await api.client.get("/deliveries?state=failed")
    assert answer.headers["location"] == "/login?next=%2Fdeliveries%3Fstate%3Dfailed"


async def test_logging_in_sets_a_session_cookie_and_follows_next(api: Api) -> None:
    answer = await console_login(api.client, "admin", ADMIN_PASSWORD, next_page="/webhooks")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/webhooks"
    cookie = next(
        value for name, value in answer.headers.multi_items() if value.startswith("hookd_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    overview = await api.client.get("/")
    assert overview.status_code == 200 and "<h1>Overview</h1>" in overview.text
    assert "admin" in overview.text


async def test_over_https_the_cookie_is_secure(api: Api) -> None:
    transport = api.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="https://hookd.test") as client:
        answer = await console_login(client, "admin", ADMIN_PASSWORD)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("hookd_session=") and "Secure" in cookie


async def test_next_never_leaves_the_site(api: Api) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = await console_login(api.client, "admin", ADMIN_PASSWORD, next_page=target)
        assert answer.headers["location"] == "/", target


async def test_wrong_credentials_are_refused_with_the_form_again(api: Api) -> None:
    for username, password in (("admin", "wrong"), ("nobody", ADMIN_PASSWORD), ("admin", "")):
        answer = await console_login(api.client, username, password)
        assert answer.status_code == 401
        assert "Wrong username or password" in answer.text
        assert "hookd_session" not in answer.headers.get("set-cookie", "")
    assert (await api.client.get("/")).status_code == 303


async def test_the_login_form_needs_its_own_nonce(api: Api) -> None:
    """A login posted from another site (no nonce cookie, or another nonce) is refused."""
    await api.client.get("/login")
    answer = await api.client.post(
        "/login", data={"nonce": "made-up", "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert answer.status_code == 403
    assert "hookd_session" not in answer.headers.get("set-cookie", "")


async def test_logging_out_revokes_the_session(api: Api) -> None:
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    token = api.client.cookies["hookd_session"]
    page = await api.client.get("/")
    answer = await api.client.post("/logout", data={"csrf": form_token(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert (await api.client.get("/")).status_code == 303
    # The token itself is revoked: the API refuses it too.
    refused = await api.client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401


async def test_a_form_without_its_token_changes_nothing(api: Api) -> None:
    webhook = await api.create_webhook(url="http://127.0.0.1:9/hook")
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    page = await api.client.get(f"/webhooks/{webhook['uid']}")
    token = form_token(page.text)
    async with console_client(api, "admin", ADMIN_PASSWORD) as other:
        other_token = form_token((await other.get("/")).text)
    assert other_token != token
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": other_token}):
        for path in ("disable", "delete", "test"):
            answer = await api.client.post(f"/webhooks/{webhook['uid']}/{path}", data=data)
            assert answer.status_code == 403, (path, data)
            assert "did not come from this session" in answer.text
    answer = await api.client.post("/logout", data={})
    assert answer.status_code == 403
    entity = await api.client.get(f"/api/v1/webhooks/{webhook['uid']}", headers=api.admin)
    assert entity.json()["status"] == "active"
    assert (await api.client.get("/")).status_code == 200  # still logged in


async def test_a_user_gets_403_for_every_admin_action(api: Api) -> None:
    webhook = await api.create_webhook(url="http://127.0.0.1:9/hook")
    uid = webhook["uid"]
    await console_login(api.client, "user", USER_PASSWORD)
    token = form_token((await api.client.get("/")).text)
    for path in (
        f"/webhooks/{uid}/edit",
        f"/webhooks/{uid}/delete",
        "/webhooks/new/device",
        "/webhooks/new/repository",
    ):
        answer = await api.client.get(path)
        assert answer.status_code == 403, path
        assert "Administrator rights required" in answer.text
    for path in (
        f"/webhooks/{uid}/edit",
        f"/webhooks/{uid}/disable",
        f"/webhooks/{uid}/enable",
        f"/webhooks/{uid}/delete",
        f"/webhooks/{uid}/test",
        f"/webhooks/{uid}/recover",
        "/webhooks/new/device",
        "/webhooks/new/repository",
        "/deliveries/1/retry",
    ):
        answer = await api.client.post(path, data={"csrf": token, "since": "2026-01-01T00:00"})
        assert answer.status_code == 403, path
    entity = await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)
    assert entity.json() == webhook


async def test_a_user_sees_no_secret_api_key_or_header_value(api: Api) -> None:
    secret, header_value = "a-secret-of-sixteen+", "token-in-a-header-123"
    webhook = await api.create_webhook(
        url="http://127.0.0.1:9/hook",
        secret=secret,
        headers=f'{{"X-Api-Token": "{header_value}"}}',
    )
    await api.client.put("/r/docs", json={"name": "Docs"}, headers=api.admin)
    made = await api.client.post(
        "/r/docs/events/document.created",
        json={
            "uri": "http://127.0.0.1:9/r",
            "description": "d",
            "handleResponse": "NONE",
            "apiKey": "the-api-key-77",
        },
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    await api.publish({"type": "log.door_was_opened"})
    pages = ["/", "/webhooks", f"/webhooks/{webhook['uid']}", "/deliveries", "/repositories"]
    pages += ["/repositories/docs", f"/webhooks/{webhook['uid'] + 1}", "/deliveries/1"]

    await console_login(api.client, "admin", ADMIN_PASSWORD)
    shown_to_admin = "".join([(await api.client.get(path)).text for path in pages])
    assert secret in shown_to_admin and "the-api-key-77" in shown_to_admin  # on request

    async with console_client(api, "user", USER_PASSWORD) as client:
        for path in pages:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            for hidden in (secret, "the-api-key-77", header_value):
                assert hidden not in answer.text, (path, hidden)
            for action in (">Edit<", "Delete…", "Send test event", "Send them again", "New device"):
                assert action not in answer.text, (path, action)


async def test_pages_carry_a_strict_content_security_policy(api: Api) -> None:
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    for path in ("/", "/login", "/webhooks", "/no-such-webhook-page/webhooks/x"):
        answer = await api.client.get(path)
        if answer.status_code == 404:
            continue
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"


async def test_static_files_are_cacheable_and_local(api: Api) -> None:
    page = await api.client.get("/login")
    for asset in ("console.css", "console.js"):
        found = re.search(rf'"(/static/[0-9a-f]+/{asset})"', page.text)
        assert found, asset
        answer = await api.client.get(found.group(1))
        assert answer.status_code == 200
        assert "immutable" in answer.headers["cache-control"]
        assert "http://" not in answer.text and "https://" not in answer.text
    assert (await api.client.get("/static/0/nothing.js")).status_code == 404


async def test_errors_under_console_paths_are_pages_and_the_api_keeps_its_shape(api: Api) -> None:
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    page = await api.client.get("/webhooks/12345")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert (await api.client.get("/deliveries/abc")).status_code == 404
    wrong = await api.client.post("/webhooks/new/device", content=b"{}", headers={})
    assert wrong.status_code == 415
    api_error = await api.client.get("/api/v1/webhooks/12345", headers=api.admin)
    assert api_error.json() == {"error": "Wrong webhook uid"}
    assert (await api.client.get("/r/nope/events", headers=api.admin)).json()["code"] == 240300
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/openapi.json")).status_code == 200
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    api_paths = ("/api/v1", "/r/", "/healthz", "/metrics")
    assert [path for path in paths if not path.startswith(api_paths)] == []
