"""The web console in a real browser: Debian's Chromium driven by Playwright against `hookd serve`
on 127.0.0.1, delivering to a real receiver on 127.0.0.1.

Skipped, with one line in the report, where Chromium or Playwright is missing. Screenshots of
every page at 1280 and 390 px go to `<pytest's basetemp>/console-screenshots` (or the folder in
HOOKD_CONSOLE_SCREENSHOTS).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOOKD,
    REQUIRE_CHROMIUM,
    ServedHookd,
    chromium_missing,
    environment,
    start_serve,
    stop_serve,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _chromium() -> None:
    missing = chromium_missing()
    if missing and REQUIRE_CHROMIUM:
        pytest.fail(f"HOOKD_REQUIRE_CHROMIUM=1 but {missing}")
    if missing:
        pytest.skip(f"browser tests skipped: {missing}")


ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"
VIEWER, VIEWER_PASSWORD = "viewer", "viewer-password-1"
SECRET = "console-secret-0123456789"
API_KEY = "repository-api-key-42"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


# --- a receiver the tests steer -------------------------------------------------------------


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 answering each path as `answers` says (200 by default)."""

    port: int = 0
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found.received.append((self.path, dict(self.headers), body))
            status, answer = found.answers.get(self.path, (200, b'{"thanks": "from the receiver"}'))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The default backlog of 5 drops connections when hookd sends a burst: their SYN is
        # sent again only after a second.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


# --- hookd and an API client ------------------------------------------------------------------


@dataclass
class Hookd:
    served: ServedHookd
    api: httpx.Client
    admin: dict[str, str]

    @property
    def base(self) -> str:
        return self.served.base

    def create_device_webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        body = {"url": url, "event_types": ["log.door_was_opened"], "secret": SECRET, **fields}
        answer = self.api.post("/api/v1/webhooks", json=body, headers=self.admin)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def publish(self, count: int = 1, event_type: str = "log.door_was_opened") -> list[str]:
        events = [{"type": event_type, "data": {"door": n}} for n in range(count)]
        answer = self.api.post("/api/v1/events", json=events, headers=self.admin)
        assert answer.status_code == 202, answer.text
        return answer.json()["ids"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def hookd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hookd]:
    import subprocess

    cwd = tmp_path_factory.mktemp("console")
    settings = {
        "HOOKD_DATABASE_URL": f"sqlite:///{cwd}/hookd.db",
        "HOOKD_ALLOW_TARGETS": "127.0.0.0/8",
        "HOOKD_RETRY_SCHEDULE": "100ms",
        "HOOKD_POLL_INTERVAL": "200ms",
    }
    env = environment(**settings)
    for command in (
        ["migrate"],
        ["user", "add", ADMIN, "--role", "admin", "--password", ADMIN_PASSWORD],
        ["user", "add", VIEWER, "--role", "user", "--password", VIEWER_PASSWORD],
    ):
        done = subprocess.run(
            [HOOKD, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    served = start_serve(cwd, **settings)
    try:
        with httpx.Client(base_url=served.base, timeout=10) as api:
            login = api.post("/api/v1/login", json={"username": ADMIN, "password": ADMIN_PASSWORD})
            token = login.json()["token"]
            yield Hookd(served, api, {"Authorization": f"Bearer {token}"})
    finally:
        stop_serve(served)


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Visit:
    """A browser context (its own cookies) that records every request it makes."""

    page: Any
    requests: list[str]


@pytest.fixture
def visit(browser: Any, hookd: Hookd) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []

    def route(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith(hookd.base + "/"):
            route.continue_()
        else:
            route.abort()  # recorded, and never let out

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Visit(page, requests)
    context.close()


def log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def csrf_of(page: Any) -> str:
    return str(page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value"))


# --- the tests --------------------------------------------------------------------------------


def test_log_in_and_out(visit: Visit, hookd: Hookd) -> None:
    page = visit.page
    page.goto(f"{hookd.base}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect()(page.get_by_role("alert")).to_contain_text("Wrong username or password")

    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    expect()(page.get_by_role("heading", level=1)).to_have_text("Overview")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hookd_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{hookd.base}/login")
    page.goto(f"{hookd.base}/webhooks")
    assert page.url.startswith(f"{hookd.base}/login?next=")
    # The old session's token is revoked, not only forgotten by the browser.
    answer = hookd.api.get(
        "/api/v1/webhooks", headers={"Authorization": f"Bearer {cookie['value']}"}
    )
    assert answer.status_code == 401


def test_create_a_device_webhook_with_a_validation_error_first(
    visit: Visit, hookd: Hookd, receiver: Receiver
) -> None:
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.get_by_role("link", name="Webhooks", exact=True).click()
    page.get_by_role("link", name="New device webhook").click()
    page.get_by_label("URL", exact=True).fill("ftp://127.0.0.1/hook")
    page.get_by_label("log.door_was_opened", exact=True).check()
    page.get_by_label("Timeout").fill("500")
    page.get_by_role("button", name="Create webhook").click()

    # The dialect's own message, next to the field it is about.
    url_field = page.locator(".field", has=page.locator("#f-url"))
    expect()(url_field.locator(".error")).to_contain_text("must be an absolute http(s) URL")
    expect()(page.locator("#f-url")).to_have_attribute("aria-invalid", "true")
    expect()(page.locator("#f-url")).to_have_value("ftp://127.0.0.1/hook")  # kept as typed

    page.get_by_label("URL", exact=True).fill(receiver.url("/device"))
    page.get_by_role("button", name="Create webhook").click()
    timeout_field = page.locator(".field", has=page.locator("#f-timeout"))
    expect()(timeout_field.locator(".error")).to_contain_text("must be between 1000 and 30000")
    assert page.locator(".field.invalid").count() == 1

    page.get_by_label("Timeout").fill("2000")
    page.get_by_role("button", name="Create webhook").click()
    expect()(page.get_by_role("status")).to_contain_text("The webhook was created")
    expect()(page.get_by_role("heading", level=1)).to_contain_text("Webhook uid")
    uid = int(page.url.rsplit("/", 1)[1].split("?")[0])
    entity = hookd.api.get(f"/api/v1/webhooks/{uid}", headers=hookd.admin).json()
    assert entity["url"] == receiver.url("/device") and entity["timeout"] == 2000
    assert entity["secret"].startswith("whsec_")  # generated


def test_create_a_repository_webhook(visit: Visit, hookd: Hookd, receiver: Receiver) -> None:
    made = hookd.api.put("/r/docs", json={"name": "Documents"}, headers=hookd.admin)
    assert made.status_code in (200, 201), made.text
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{hookd.base}/webhooks/new/repository")
    page.get_by_label("Event", exact=True).select_option("docs/document.created")
    page.get_by_label("URI").fill(receiver.url("/repository"))
    page.get_by_role("button", name="Create webhook").click()
    description = page.locator(".field", has=page.locator("#f-description"))
    expect()(description.locator(".error")).to_contain_text("must not be empty")
    # What was chosen stays chosen.
    expect()(page.get_by_label("Event", exact=True)).to_have_value("docs/document.created")

    page.get_by_label("Description").fill("Indexes new documents")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("Categories").fill("invoice, letter")
    page.get_by_role("button", name="Create webhook").click()
    expect()(page.get_by_role("status")).to_contain_text("The webhook was created")
    public_id = page.get_by_role("heading", level=1).inner_text().split()[-1]
    entity = hookd.api.get(
        f"/r/docs/events/document.created/{public_id}", headers=hookd.admin
    ).json()
    assert entity["description"] == "Indexes new documents"
    assert entity["apiKey"] == API_KEY
    assert entity["restrictions"] == [
        {"key": "CATEGORY", "value": "invoice"},
        {"key": "CATEGORY", "value": "letter"},
    ]


def test_watch_a_delivery_arrive_with_the_answer(
    visit: Visit, hookd: Hookd, receiver: Receiver
) -> None:
    receiver.answers["/watched"] = (200, b'{"stored": "yes, thank you"}')
    webhook = hookd.create_device_webhook(receiver.url("/watched"))
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{hookd.base}/deliveries?webhook={webhook['uid']}")
    expect()(page.locator("#delivery-rows")).to_contain_text("No delivery matches")
    expect()(page.get_by_label("Show new deliveries as they happen")).to_be_checked()

    [event_id] = hookd.publish()
    # The live view brings the row in without a reload, and follows it to its end.
    row = page.locator("#delivery-rows tr", has_text=event_id)
    expect()(row).to_contain_text("succeeded", timeout=15_000)
    expect()(row).to_contain_text("HTTP 200")
    row.get_by_role("link").first.click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text("Delivery #")
    expect()(page.locator("pre.body").nth(1)).to_contain_text('"stored": "yes, thank you"')
    page.get_by_text("Request headers").first.click()
    headers = page.locator("table.headers").first
    expect()(headers).to_contain_text("webhook-signature")
    expect()(headers).to_contain_text(event_id)
    assert "v1,••••••••" in headers.inner_text()


def test_a_failing_receiver_then_bulk_recovery(
    visit: Visit, hookd: Hookd, receiver: Receiver
) -> None:
    receiver.answers["/flaky"] = (503, b"down for maintenance until noon")
    webhook = hookd.create_device_webhook(receiver.url("/flaky"), max_retries=0)
    uid = webhook["uid"]
    hookd.publish(3)
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{hookd.base}/deliveries?webhook={uid}&state=failed")
    rows = page.locator("#delivery-rows tr[data-id]")
    expect()(rows).to_have_count(3, timeout=15_000)
    expect()(rows.first).to_contain_text("HTTP 503")
    rows.first.get_by_role("link").first.click()
    expect()(page.locator("article.attempt")).to_contain_text("down for maintenance until noon")

    receiver.answers["/flaky"] = (204, b"")  # fixed
    page.goto(f"{hookd.base}/webhooks/{uid}")
    page.get_by_role("button", name="Send them again").click()
    expect()(page.get_by_role("status")).to_contain_text("Queued 3 failed deliveries")
    page.goto(f"{hookd.base}/deliveries?webhook={uid}&state=succeeded")
    expect()(page.locator("#delivery-rows tr[data-id]")).to_have_count(3, timeout=15_000)


def test_a_user_sees_no_admin_action_and_no_secret(
    visit: Visit, hookd: Hookd, receiver: Receiver
) -> None:
    webhook = hookd.create_device_webhook(
        receiver.url("/for-users"), headers='{"X-Api-Token": "header-token-77"}'
    )
    hookd.publish()
    page = visit.page
    log_in(page, hookd.base, VIEWER, VIEWER_PASSWORD)
    for path in ("/", "/webhooks", f"/webhooks/{webhook['uid']}", "/deliveries"):
        page.goto(f"{hookd.base}{path}")
        html = page.content()
        assert SECRET not in html and "header-token-77" not in html and API_KEY not in html
        for action in ("Edit", "Delete…", "Send test event", "Disable", "Send them again"):
            assert page.get_by_role("button", name=action).count() == 0, (path, action)
            assert page.get_by_role("link", name=action).count() == 0, (path, action)
        assert page.get_by_role("link", name="New device webhook").count() == 0
    expect()(page.locator("#delivery-rows tr[data-id]").first).to_be_visible(timeout=15_000)
    page.locator("#delivery-rows tr[data-id] a").first.click()
    page.get_by_text("Request headers").first.click()
    assert "header-token-77" not in page.content()

    # Posting an admin action anyway, with a valid form token, is refused.
    token = csrf_of(page)
    for path in (
        f"/webhooks/{webhook['uid']}/disable",
        f"/webhooks/{webhook['uid']}/delete",
        "/webhooks/new/device",
        f"/webhooks/{webhook['uid']}/recover",
    ):
        answer = page.request.post(f"{hookd.base}{path}", form={"csrf": token})
        assert answer.status == 403, path
    for path in (f"/webhooks/{webhook['uid']}/edit", "/webhooks/new/device"):
        assert page.goto(f"{hookd.base}{path}").status == 403
    entity = hookd.api.get(f"/api/v1/webhooks/{webhook['uid']}", headers=hookd.admin).json()
    assert entity["status"] == "active"


def test_a_form_without_its_token_is_refused(
    visit: Visit, hookd: Hookd, receiver: Receiver
) -> None:
    webhook = hookd.create_device_webhook(receiver.url("/csrf"))
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{hookd.base}/webhooks/{webhook['uid']}")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(input => input.remove())")
    page.get_by_role("button", name="Disable").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect()(page.get_by_role("alert")).to_contain_text("did not come from this session")
    answer = page.request.post(
        f"{hookd.base}/webhooks/{webhook['uid']}/disable", form={"csrf": "forged"}
    )
    assert answer.status == 403
    entity = hookd.api.get(f"/api/v1/webhooks/{webhook['uid']}", headers=hookd.admin).json()
    assert entity["status"] == "active"


def test_keyboard_only(visit: Visit, hookd: Hookd) -> None:
    page = visit.page
    page.goto(f"{hookd.base}/login")
    # The username field takes the focus by itself; Chromium applies autofocus at its next
    # rendering update, which can come after the load event, so wait for it before typing.
    expect()(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{hookd.base}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Webhooks"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{hookd.base}/webhooks")


# --- every page, at both widths ----------------------------------------------------------------

# Checked on every page: each control has a label, and there is one h1.
UNLABELLED = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
               && !c.getAttribute('aria-labelledby')
               && !(c.tagName === 'BUTTON' && c.innerText.trim()))
  .map(c => c.outerHTML)
"""


# WCAG contrast of every piece of visible text against the background it is drawn on: 4.5:1,
# or 3:1 for large text (24 px, or 18.66 px bold).
LOW_CONTRAST = """
(() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('[aria-hidden=true] svg')) continue;
    const [l1, l2] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) found.push(`${node.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return found;
})()
"""


def screenshots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("HOOKD_CONSOLE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_page_at_both_widths_stays_on_hookd(
    visit: Visit, hookd: Hookd, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Something on every page: webhooks of both dialects, deliveries that succeeded and failed,
    # a blocking event with a webhook that vetoes.
    receiver.answers["/veto"] = (422, b'{"reason": "no VAT id"}')
    receiver.answers["/broken"] = (500, b"<html><body>Internal Server Error</body></html>")
    device = hookd.create_device_webhook(receiver.url("/shown"), description="Door events")
    broken = hookd.create_device_webhook(receiver.url("/broken"), max_retries=0)
    assert hookd.api.put("/r/invoices", json={"name": "Invoices"}, headers=hookd.admin).is_success
    made = hookd.api.post(
        "/r/invoices/events/document.beforecreate",
        json={
            "uri": receiver.url("/veto"),
            "description": "Checks the VAT id",
            "enabled": True,
            "handleResponse": "STATUS_AND_BODY",
        },
        headers=hookd.admin,
    )
    assert made.status_code == 201, made.text
    hook_id = made.json()["id"]
    for _ in range(2):
        hookd.api.post(
            "/r/invoices/events/document.beforecreate/trigger",
            json={"data": {"invoice": 1}},
            headers=hookd.admin,
        )
    hookd.publish(5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log = hookd.api.get(
            f"/api/v1/webhooks/{broken['uid']}/deliveries", headers=hookd.admin
        ).json()
        if log["items"] and log["items"][0]["status"] == "failed":
            break
        time.sleep(0.2)
    failed_delivery = log["items"][0]["id"]
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{hookd.base}/webhooks?q={hook_id}")
    repository_webhook = page.locator("table.webhooks a").first.get_attribute("href")

    pages = {
        "overview": "/",
        "webhooks": "/webhooks",
        "webhook-device": f"/webhooks/{device['uid']}",
        "webhook-repository": str(repository_webhook),
        "new-device": "/webhooks/new/device",
        "new-repository": "/webhooks/new/repository",
        "edit-device": f"/webhooks/{device['uid']}/edit",
        "delete": f"/webhooks/{device['uid']}/delete",
        "deliveries": "/deliveries",
        "deliveries-failed": f"/deliveries?webhook={broken['uid']}&state=failed",
        "delivery-failed": f"/deliveries/{failed_delivery}",
        "repositories": "/repositories",
        "repository": "/repositories/invoices",
        "not-found": "/webhooks/999999",
    }
    folder = screenshots_folder(tmp_path_factory)
    problems = []
    for name, path in pages.items():
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            answer = page.goto(f"{hookd.base}{path}")
            assert answer is not None
            assert answer.status == (404 if name == "not-found" else 200), (name, answer.status)
            unlabelled = page.evaluate(UNLABELLED)
            if unlabelled:
                problems.append(f"{name}: controls without a label: {unlabelled}")
            if page.locator("h1").count() != 1:
                problems.append(f"{name}: {page.locator('h1').count()} h1 headings")
            low = page.evaluate(LOW_CONTRAST)
            if low:
                problems.append(f"{name}: text below WCAG AA contrast: {low}")
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > width:
                problems.append(f"{name} is {wide} px wide at {width} px")
            page.screenshot(path=str(folder / f"{name}-{width_name}.png"), full_page=True)
    # A form with its errors, and the same pages as a user sees them.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{hookd.base}/webhooks/new/device")
    page.get_by_role("button", name="Create webhook").click()
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(folder / f"form-errors-{width_name}.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()
    log_in(page, hookd.base, VIEWER, VIEWER_PASSWORD)
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{hookd.base}/webhooks/{device['uid']}")
        page.screenshot(path=str(folder / f"webhook-as-user-{width_name}.png"), full_page=True)
    page.goto(f"{hookd.base}/login")
    outside = [url for url in visit.requests if not url.startswith(hookd.base + "/")]
    assert outside == []
    assert problems == []
    assert len(visit.requests) > 2 * len(pages)
    print(f"screenshots: {folder}")


def test_the_console_works_without_javascript(browser: Any, hookd: Hookd) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
        page.goto(f"{hookd.base}/deliveries")
        expect()(page.get_by_role("heading", level=1)).to_have_text("Deliveries")
        expect()(page.get_by_label("Show new deliveries as they happen")).to_be_hidden()
        page.get_by_label("State").select_option("succeeded")
        page.get_by_role("button", name="Search").click()
        assert "state=succeeded" in page.url
        page.goto(f"{hookd.base}/webhooks/new/device")
        page.get_by_role("button", name="Create webhook").click()
        expect()(page.get_by_role("alert")).to_contain_text("hookd did not create the webhook")
    finally:
        context.close()


def test_a_request_to_another_origin_would_be_seen(visit: Visit, hookd: Hookd) -> None:
    """The recording above sees a request that leaves hookd's origin (a check that can fail).
    The other origin is on loopback too, and the request is stopped before it is sent."""
    page = visit.page
    log_in(page, hookd.base, ADMIN, ADMIN_PASSWORD)
    elsewhere = hookd.base.replace("127.0.0.1", "localhost") + "/elsewhere"
    with contextlib.suppress(Exception):
        page.goto(elsewhere)
    assert elsewhere in visit.requests
