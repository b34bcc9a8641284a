"""Health and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from hookd.delivery.scrape import ALLOWED, LOG_IN, scrape_access
from hookd.http.auth import Hookd, user_for_token
from hookd.http.errors import STORE_RETRY_AFTER_SECONDS, Error, admin_required, login_required
from hookd.http.openapi import errors, operation
from hookd.http.responses import Json

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "unavailable"]
    reason: str | None = Field(None, description="Why the store cannot be used (503 only)")


@router.get(
    "/healthz",
    summary="200 when the store answers and takes writes, 503 otherwise",
    response_model=Health,
    responses={
        503: {
            "description": "The store cannot be used: `reason` says why; `Retry-After` is set",
            "model": Health,
        }
    },
)
async def healthz(hookd: Hookd) -> Json:
    problem = await hookd.db.problem()
    if problem is None:
        return Json({"status": "ok"})
    return Json(
        {"status": "unavailable", "reason": problem},
        status_code=503,
        headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Open to anyone when `HOOKD_METRICS=open`; otherwise it needs "
    "`Authorization: Bearer <HOOKD_METRICS_TOKEN>` or an admin's token.",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **errors(Error, (401, 403)),
    },
    openapi_extra=operation(),
)
async def metrics(request: Request, hookd: Hookd) -> Response:
    async def role_of(token: str) -> str | None:
        user = await user_for_token(hookd, token)
        return None if user is None else user.role

    access = await scrape_access(hookd.settings, request.headers.get("authorization"), role_of)
    if access != ALLOWED:
        raise login_required() if access == LOG_IN else admin_required()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
