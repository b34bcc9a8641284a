"""Console sessions: logging in and out with hookd's accounts, who is looking, and the form
checks every change goes through.

A session is a login token like the API's, kept in an `HttpOnly`, `SameSite=Lax` cookie
(`Secure` over https). Every form carries a token derived from the session's, so a page of
another site cannot post one; the login form, before there is a session, carries a random value
that must match a cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from hookd.console.render import page
from hookd.http.auth import authenticate, client, issue_token, revoke, user_for_token
from hookd.http.errors import ApiError, admin_required
from hookd.http.services import Services, services
from hookd.store.accounts import User

SESSION_COOKIE = "hookd_session"
LOGIN_COOKIE = "hookd_login"
FORM_LIMIT = 256 * 1024
MAX_FIELDS = 1000


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user of this console session."""

    user: User
    token: str

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return hmac.new(self.token.encode(), b"hookd console form", hashlib.sha256).hexdigest()


def login_needed() -> ApiError:
    return ApiError(401, "Log in to use the console")


async def session_viewer(request: Request, hookd: Services) -> Viewer | None:
    """Who this request's session cookie belongs to, if anyone."""
    token = request.cookies.get(SESSION_COOKIE)
    user = await user_for_token(hookd, token) if token else None
    return None if user is None or token is None else Viewer(user, token)


async def viewer(request: Request, hookd: Services = Depends(services)) -> Viewer:
    looking = await session_viewer(request, hookd)
    if looking is None:
        raise login_needed()
    return looking


async def admin(looking: Viewer = Depends(viewer)) -> Viewer:
    if not looking.is_admin:
        raise admin_required()
    return looking


AnyViewer = Annotated[Viewer, Depends(viewer)]
AdminViewer = Annotated[Viewer, Depends(admin)]
Hookd = Annotated[Services, Depends(services)]


class Form:
    """A posted form's fields (`application/x-www-form-urlencoded`)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, name: str) -> str:
        return next((value for key, value in self._pairs if key == name), "")

    def all(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self._pairs)


async def read_form(request: Request) -> Form:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not media_type and request.headers.get("content-length", "0") == "0":
        return Form([])  # a post without a body: an empty form
    if media_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "Forms are sent as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > FORM_LIMIT:
        raise ApiError(413, f"The form is larger than {FORM_LIMIT} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT:
            raise ApiError(413, f"The form is larger than {FORM_LIMIT} bytes")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(
            b"".join(chunks).decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise ApiError(400, f"The form has more than {MAX_FIELDS} fields") from None
    return Form([(key, value.replace("\r\n", "\n")) for key, value in pairs])


async def posted(request: Request, looking: Viewer) -> Form:
    """The form of a change, once its token shows it came from one of this session's pages."""
    form = await read_form(request)
    if not hmac.compare_digest(form.get("csrf").encode(), looking.csrf.encode()):
        raise ApiError(
            403, "This form did not come from this session's pages: reload the page and send again"
        )
    return form


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def back_to_login(request: Request) -> RedirectResponse:
    here = request.url.path
    if request.method == "GET" and request.url.query:
        here += "?" + request.url.query
    return see_other(f"/login?next={quote(here, safe='')}" if here != "/" else "/login")


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site, never another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


# --- logging in and out -----------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


def _login_page(
    request: Request,
    next_page: str,
    *,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status,
        viewer=None,
        nonce=nonce,
        next_page=next_page,
        error=error,
        username=username,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request, _safe_next(request.query_params.get("next", "/")))


@router.post("/login")
async def log_in(request: Request, hookd: Hookd) -> Response:
    form = await read_form(request)
    next_page = _safe_next(form.get("next") or "/")
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(form.get("nonce").encode(), nonce.encode()):
        return _login_page(
            request,
            next_page,
            username=form.get("username"),
            error="The login form had expired (or cookies are off): please log in again.",
            status=403,
        )
    user = await authenticate(hookd, form.get("username"), form.get("password"), client(request))
    if user is None:
        return _login_page(
            request,
            next_page,
            username=form.get("username"),
            error="Wrong username or password.",
            status=401,
        )
    response = see_other(next_page)
    response.set_cookie(
        SESSION_COOKIE,
        await issue_token(hookd, user),
        max_age=int(hookd.settings.token_ttl),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def log_out(request: Request, looking: AnyViewer, hookd: Hookd) -> Response:
    await posted(request, looking)
    await revoke(hookd, looking.token)
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response
