"""hookd: a self-hosted webhook service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "publish"]

if TYPE_CHECKING:
    from hookd.transactional import publish


def __getattr__(name: str) -> Any:
    # `import hookd` stays light: the transactional API loads when first used.
    if name == "publish":
        from hookd.transactional import publish

        return publish
    raise AttributeError(f"module 'hookd' has no attribute {name!r}")
