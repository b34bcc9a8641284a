"""What a dialect hands the app: its routes, and the shape of its errors under its paths."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from hookd.http.errors import ErrorShape


@dataclass(frozen=True, slots=True)
class Dialect:
    # Stored with each webhook the dialect creates: it lists and changes only its own.
    name: str
    # Its routes; a start-up task of its own goes in the router's lifespan.
    router: APIRouter
    # Errors under `path_prefix` take `error_shape`; without one, hookd's own shape.
    path_prefix: str = ""
    error_shape: ErrorShape | None = None
