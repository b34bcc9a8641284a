"""`hookd listen`: a local receiver that prints each delivery and checks its signature."""

import asyncio
import contextlib
import re
from collections.abc import Mapping
from datetime import datetime

import orjson
from aiohttp import web
from rich.console import Console
from rich.text import Text

from hookd.domain.signing import signing_keys, verify
from hookd.listening import CannotListen, cannot_listen

BODY_PREVIEW_CHARS = 2048
# Above hookd's 1 MiB event limit, so the envelope around a maximal event still fits.
MAX_BODY_BYTES = 16 * 1024 * 1024


# Control characters but line breaks and tabs: C0, DEL and C1 (ESC starts terminal escape
# sequences; C1's CSI does on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def neutralised(text: str) -> str:
    """`text` with every control character that a terminal could act on shown as `\\xNN`:
    what a sender puts in a delivery must not move the cursor, retitle or clear the terminal."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def signature_status(key: bytes | None, headers: Mapping[str, str], body: bytes) -> str:
    """`valid`, `INVALID …` or `not checked …` for one request."""
    if key is None:
        return "not checked (no --secret)"
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (msg_id and timestamp and signature):
        return "INVALID (webhook-id, webhook-timestamp or webhook-signature missing)"
    if not (timestamp.isascii() and timestamp.isdigit()):
        return "INVALID (webhook-timestamp is not Unix seconds)"
    return "valid" if verify(key, msg_id, int(timestamp), body, signature) else "INVALID"


def _preview(body: bytes) -> tuple[str, str | None]:
    """The body pretty-printed and truncated, and the event type when it is a JSON object."""
    if not body:
        return "(empty body)", None
    event_type: str | None = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace")
    else:
        text = orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()
        if isinstance(parsed, dict) and parsed.get("type") is not None:
            event_type = str(parsed["type"])
    if len(text) > BODY_PREVIEW_CHARS:
        hidden = len(text) - BODY_PREVIEW_CHARS
        text = f"{text[:BODY_PREVIEW_CHARS]}\n… ({hidden} more characters)"
    return text, event_type


def _field(name: str, value: str | None, style: str = "") -> Text:
    shown = neutralised(value) if value is not None else "-"
    return Text.assemble((f"{name}: ", "bold"), (shown, style))


def print_delivery(
    console: Console, path: str, headers: Mapping[str, str], body: bytes, status: str
) -> None:
    """Print one block describing a received delivery and its signature `status`."""
    preview, event_type = _preview(body)
    status_style = "green" if status == "valid" else "red" if status.startswith("INVALID") else ""
    console.rule(Text(f"{datetime.now():%H:%M:%S}  POST {neutralised(path)}"), align="left")
    console.print(_field("webhook-id", headers.get("webhook-id")))
    console.print(_field("attempt", headers.get("X-Hookd-Attempt")))
    console.print(_field("type", event_type))
    console.print(_field("signature", status, status_style))
    console.print(neutralised(preview), markup=False, highlight=True)


def make_app(secret: str | None, console: Console) -> web.Application:
    """An app that prints each POST on any path to `console` and answers 200 `{"ok": true}`,
    or 401 when the signature does not verify, so that hookd records a failed attempt.

    Raises ValueError for a malformed `whsec_` secret.
    """
    key = None if secret is None else signing_keys(secret).standard

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        status = signature_status(key, request.headers, body)
        print_delivery(console, request.path_qs, request.headers, body, status)
        if status.startswith("INVALID"):
            return web.json_response({"ok": False, "signature": status}, status=401)
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/{path:.*}", receive)
    return app


def _url(address: tuple[str, int]) -> str:
    host, port = address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def serve_listener(host: str, port: int, secret: str | None, console: Console) -> None:
    """Serve the listener until cancelled; CannotListen when it cannot listen."""
    runner = web.AppRunner(make_app(secret, console), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise CannotListen(cannot_listen(host, port, exc, "another --port")) from None
        urls = ", ".join(_url(address) for address in runner.addresses)
        checking = "checking signatures" if secret is not None else "not checking signatures"
        console.print(f"hookd listen: receiving on {urls} ({checking}); Ctrl-C stops", markup=False)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_listener(host: str = "127.0.0.1", port: int = 9000, secret: str | None = None) -> None:
    """Run the listener until Ctrl-C; CannotListen when it cannot listen."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_listener(host, port, secret, Console()))
