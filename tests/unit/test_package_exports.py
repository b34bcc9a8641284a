"""`import hookd` stays light; `hookd.publish` loads the transactional API when first used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hookd


def test_import_hookd_loads_nothing_heavy() -> None:
    probe = (
        "import sys, hookd; "
        "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'asyncpg') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_publish_is_the_transactional_api() -> None:
    from hookd.transactional import publish

    assert hookd.publish is publish
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hookd.nothing  # type: ignore[attr-defined]  # noqa: B018
