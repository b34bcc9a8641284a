"""The interactive API documentation at /docs (Swagger UI) and /redoc (ReDoc).

Their scripts and styles come from the `fastapi-offline` package's files and are served by
hookd itself, so the pages show on a machine without a network.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

OPENAPI_URL = "/openapi.json"
ASSETS = "/docs/assets"
ASSET_FILES = files("fastapi_offline") / "static"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="hookd API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        # No badge from the online validator service.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title="hookd API",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def mount(app: FastAPI) -> None:
    """Serve the pages and their assets (the app is made with `docs_url=None, redoc_url=None`)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=str(ASSET_FILES)), name="docs-assets")
