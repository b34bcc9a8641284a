"""Health and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from hookd.http.auth import Hookd
from hookd.http.responses import Json

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "unavailable"]


@router.get(
    "/healthz",
    summary="200 when the store answers, 503 otherwise",
    response_model=Health,
    responses={503: {"description": "The store does not answer", "model": Health}},
)
async def healthz(hookd: Hookd) -> Json:
    if await hookd.db.ping():
        return Json({"status": "ok"})
    return Json({"status": "unavailable"}, status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
