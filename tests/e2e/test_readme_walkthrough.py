"""The README's walk-through, run as a new user would type it, against a fresh `hookd serve`.

The shell blocks of the walk-through and of the repository example are taken from README.md
as they are written; only the admin password printed at the first start is put in for
`<printed at start>`, and `make run` stands for what it runs once installed,
`.venv/bin/hookd serve`. Between blocks the test waits as a person would (for hookd to answer,
for a delivery to arrive). Everything runs in a network namespace of its own, so the README's
ports (8080, 9000, 9001) are free whatever else runs on this machine and nothing leaves
loopback; where no namespace can be made, it runs here if those ports are free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import environment

pytestmark = pytest.mark.slow  # subprocesses: seconds

README = Path(__file__).resolve().parents[2] / "README.md"
VENV = Path(sys.executable).parent.parent
SECTIONS = ("## Walk-through", "## Producers", "## The repository dialect")
PASSWORD = "<printed at start>"
PORTS = (8080, 9000, 9001)
RUN_SECONDS = 120


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block, in order."""
    return [(m[0], m[1]) for m in re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def walkthrough() -> tuple[list[str], str]:
    """The shell blocks in order, and the invoice check's Python source."""
    text = README.read_text()
    shell: list[str] = []
    python = ""
    for heading in SECTIONS:
        for language, body in fenced_blocks(section(text, heading)):
            if language == "sh":
                shell.append(body)
            elif language == "python" and body.startswith("# invoice_check.py"):
                python = body
    return shell, python


WAIT = """wait_for() {  # until "$@" succeeds, at most 30 s
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "gave up waiting for: $*" >&2; return 1
}
"""


def driver(shell: list[str], in_namespace: bool) -> str:
    """A bash script that runs the blocks in order, each one's output to block-N.out."""
    lines = ["set -euo pipefail", WAIT]
    if in_namespace:
        lines.append("ip link set lo up")
    lines.append("trap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT")
    for number, block in enumerate(shell, 1):
        command = block.strip()
        if command.endswith("make run"):
            # `make run` installs, then runs `hookd serve`: the test's hookd is installed.
            serve = command.removesuffix("make run") + ".venv/bin/hookd serve"
            lines += [
                f"{serve} > serve.out 2> serve.err &",
                "wait_for curl -sf http://127.0.0.1:8080/healthz",
                "PASSWORD=$(sed -n 's/.* with the password \\([^ ]*\\) .*/\\1/p' serve.out)",
                '[ -n "$PASSWORD" ] || { echo "no password printed" >&2; exit 1; }',
            ]
            continue
        if "hookd listen" in command or command == "python3 invoice_check.py":
            port = 9000 if "hookd listen" in command else 9001
            lines += [
                f"{command} > block-{number}.out 2>&1 &",
                f"wait_for bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'",
            ]
            continue
        if "/deliveries" in command:  # a moment later, as a person reads the receiver's output
            lines.append("wait_for grep -q 'signature: valid' block-2.out")
        script = Path(f"block-{number}.sh")
        if "/api/v1/login" in command:  # first as a user who mistyped the password
            lines += [
                f'sed "s/{PASSWORD}/not-the-password/" {script} > wrong-login.sh',
                '( set +e; . ./wrong-login.sh; echo "TOKEN=$TOKEN" ) > wrong-login.out'
                " 2> wrong-login.err || true",
            ]
        lines += [
            f'sed "s/{PASSWORD}/$PASSWORD/" {script} > run-{number}.sh',
            f"echo '--- block {number}' >&2",
            f". ./run-{number}.sh > block-{number}.out",
            f"echo >> block-{number}.out",
        ]
    lines.append('echo "TOKEN=$TOKEN" > token.out')
    return "\n".join(lines) + "\n"


def ports_free() -> bool:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def namespace_prefix() -> list[str] | None:
    """`unshare` into a network namespace of its own, if this machine allows one."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return None
    prefix = ["unshare", "--net", "--map-root-user"]
    probe = subprocess.run(
        [*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30, check=False
    )
    return prefix if probe.returncode == 0 else None


def json_values(text: str) -> list[object]:
    """The JSON values curl printed one after another (a `# →` comment is no output)."""
    decoder, values, index = json.JSONDecoder(), [], 0
    text = text.strip()
    while index < len(text):
        value, index = decoder.raw_decode(text, index)
        values.append(value)
        while index < len(text) and text[index].isspace():
            index += 1
    return values


def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the README's walk-through uses it")
    shell, invoice_check = walkthrough()
    assert len(shell) >= 6 and invoice_check, "the walk-through was not found in README.md"
    assert shell[0].strip().endswith("make run")
    assert any(PASSWORD in block for block in shell)
    for number, block in enumerate(shell, 1):
        (tmp_path / f"block-{number}.sh").write_text(block)
    (tmp_path / "invoice_check.py").write_text(invoice_check)
    (tmp_path / ".venv").symlink_to(VENV)
    prefix = namespace_prefix()
    if prefix is None and not ports_free():
        pytest.skip(f"no network namespace can be made here and ports {PORTS} are in use")
    (tmp_path / "driver.sh").write_text(driver(shell, in_namespace=prefix is not None))
    env = environment(PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen(
        [*(prefix or []), "bash", "driver.sh"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=RUN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    logs = "\n".join(
        f"== {path.name}\n{path.read_text()}" for path in sorted(tmp_path.glob("*.out"))
    )
    assert process.returncode == 0, f"{out}\n{err}\n{logs}"

    def output(fragment: str) -> str:
        [number] = [n for n, block in enumerate(shell, 1) if fragment in block]
        return (tmp_path / f"block-{number}.out").read_text()

    assert re.fullmatch(r"TOKEN=\S{20,}\n", (tmp_path / "token.out").read_text())
    [catalogue] = json_values(output('event-types -H "$AUTH"\n'))
    assert isinstance(catalogue, dict) and catalogue["total"] == len(catalogue["items"]) == 44
    assert catalogue["items"][-3:] == [
        "hookd.webhook.disabled",
        "hookd.webhook.recovered",
        "hookd.delivery.exhausted",
    ]
    created, listed, published = json_values(output('"event_types": ["log.door_was_opened"]'))
    assert isinstance(created, dict) and created["uid"] == 1, created
    assert created["headers"] == '{"X-Tenant": "acme"}'
    assert isinstance(listed, dict) and listed["total"] == 1
    assert isinstance(published, dict) and published["deliveries"] == 1
    added, subscribed, keys = json_values(output('"name": "shop"'))
    assert isinstance(added, dict) and added["name"] == "order.created", added
    assert isinstance(subscribed, dict) and subscribed["event_types"] == ["order.*"], subscribed
    assert isinstance(keys, dict) and keys["total"] == 1 and "key" not in keys["items"][0]
    by_key, refused, revoked = json_values(output("/api/v1/api-keys/1"))
    assert isinstance(by_key, dict) and by_key["deliveries"] == 1, by_key
    assert refused == {"error": "This API key may not publish 'log.door_was_opened'"}
    assert revoked == {"error": "Log In"}
    received = output("hookd listen")
    assert "order.created" in received, received
    assert "signature: valid" in received and "INVALID" not in received, received
    [log] = json_values(output("/deliveries"))
    assert isinstance(log, dict) and log["items"][0]["status"] in ("succeeded", "delivering")
    *_, verdict = json_values(output("/r/invoices"))
    assert isinstance(verdict, dict) and verdict["allowed"] is False, verdict
    assert verdict["results"][0]["status_code"] == 422
    assert verdict["results"][0]["body"] == {"reason": "no VAT id"}
    # A mistyped password: one line saying so, and no token (not the text "null").
    assert (tmp_path / "wrong-login.err").read_text() == (
        "login failed: is hookd running, and is that the password it printed?\n"
    )
    assert (tmp_path / "wrong-login.out").read_text().endswith("TOKEN=\n")
