"""The sample alert rules: `promtool check rules` accepts them (when promtool is installed), and
the operations guide names every alert they define."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hookd-alerts.yml"
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian: apt-get install prometheus); rules not checked",
)
def test_promtool_accepts_the_rules() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_guide_names_every_alert() -> None:
    alerts = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M)
    assert alerts
    guide = (ROOT / "docs" / "operations.md").read_text()
    missing = [alert for alert in alerts if f"`{alert}`" not in guide]
    assert not missing, f"docs/operations.md does not explain {missing}"
