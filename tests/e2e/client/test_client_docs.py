"""docs/client.md stays true: its Python blocks run, in order, against a live `hookd serve`,
with the server's address, the admin's password and the receiver's address put in for the
walk-through's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Receiver, Server
from support import ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # subprocesses

DOC = Path(__file__).resolve().parents[3] / "docs" / "client.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)


def test_the_documents_examples_run(server: Server, receiver: Receiver, tmp_path: Path) -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 5
    for number, block in enumerate(blocks, 1):
        assert "http://127.0.0.1:8080" in block or "import" in block, number
        source = (
            block.replace("http://127.0.0.1:8080", server.base_url)
            .replace("<printed at start>", ADMIN_PASSWORD)
            .replace("http://127.0.0.1:9000", f"http://127.0.0.1:{receiver.port}")
        )
        script = tmp_path / f"example-{number}.py"
        script.write_text(source)
        ran = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, f"block {number} of docs/client.md:\n{ran.stderr}"
