"""Health and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from hookd.http.auth import Hookd
from hookd.http.errors import STORE_RETRY_AFTER_SECONDS
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
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
