"""Health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hookd.http.auth import Hookd
from hookd.http.responses import Json

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="200 when the store answers, 503 otherwise",
    responses={503: {"description": "The store does not answer"}},
)
async def healthz(hookd: Hookd) -> Json:
    if await hookd.db.ping():
        return Json({"status": "ok"})
    return Json({"status": "unavailable"}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
