"""The shape of the code: which packages may import which, and where state names are written.

    domain      imports no other part of hookd (pure rules)
    store       imports domain only
    delivery    imports domain, store and config
    client      imports domain only (it talks to the server over HTTP)
    http        imports the core, never a dialect
    dialects/X  imports the core and http, never another dialect
    console     imports the core, http and the dialects; only app.py imports it
Only app.py (which mounts the dialects and the console), the console, the command line and
transactional.py (`hookd.publish`, which publishes by the device dialect's rules) name a dialect.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookd.domain.states import DeliveryState, WebhookStatus

SOURCE = Path(__file__).resolve().parents[2] / "src" / "hookd"

# package → the hookd packages (and top-level modules) it may import besides itself
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "store": {"domain"},
    "delivery": {"domain", "store", "config"},
    "publishing": {"domain", "store", "delivery"},
    "http": {"domain", "store", "delivery", "config", "publishing"},
    # The HTTP client runs in producers' programs: it knows the API, never the server.
    "client": {"domain"},
}
CORE = ("config", "domain", "store", "delivery", "publishing", "http")
# What sits above the console and may not be imported by it.
ABOVE_CONSOLE = ("app", "cli", "startup", "listen")


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).with_suffix("")
        yield ".".join(("hookd", *relative.parts)), path


def hookd_imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names[:1] if node.module != "hookd" else names[1:]:
                if name.startswith("hookd."):
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hookd."):
                    yield node.lineno, alias.name


def part(module: str) -> str:
    """`hookd.store.queue` → `store`; `hookd.dialects.device.routes` → `dialects.device`."""
    pieces = module.split(".")[1:]
    if pieces[:1] == ["dialects"] and len(pieces) > 1:
        return "dialects." + pieces[1]
    return pieces[0] if pieces else ""


def broken_rules() -> list[str]:
    found = []
    for module, path in modules():
        if "migrations" in module.split("."):
            continue
        here = part(module)
        for line, imported in hookd_imports(path):
            there = part(imported)
            if there in (here, "", "__version__"):
                continue
            where = f"{path.relative_to(SOURCE)}:{line} imports {imported}"
            if here in ALLOWED and there not in ALLOWED[here]:
                found.append(f"{where} ({here} may import {sorted(ALLOWED[here]) or 'nothing'})")
            elif here.startswith("dialects.") and there.startswith("dialects."):
                found.append(f"{where} (a dialect imports another)")
            elif here in CORE and there.startswith("dialects"):
                found.append(f"{where} (the core names a dialect)")
            elif there == "console" and here != "app":
                found.append(f"{where} (only app.py mounts the console)")
            elif here == "console" and there in ABOVE_CONSOLE:
                found.append(f"{where} (the console imports what mounts it)")
    return found


def test_imports_point_one_way() -> None:
    assert broken_rules() == []


def test_the_rules_see_a_broken_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself catches what it must (a rule that cannot fail proves nothing)."""
    for package, body in {
        "domain": "from hookd.store import schema\n",
        "store": "from hookd.dialects.device import fields\n",
        "dialects/one": "from hookd.dialects.two import routes\n",
        "delivery": "import hookd.http.errors\n",
        "http": "from hookd.console import routes\n",
        "dialects/three": "from hookd.console.render import page\n",
        "console": "from hookd.app import create_app\n",
    }.items():
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "x.py").write_text(body)
    monkeypatch.setattr(__import__(__name__, fromlist=["SOURCE"]), "SOURCE", tmp_path)
    assert len(broken_rules()) == 7


STATE_NAMES = {state.value for state in (*DeliveryState, *WebhookStatus)}


def state_literals(path: Path) -> Iterator[int]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and node.value in STATE_NAMES:
            yield node.lineno


def misplaced_state_names() -> list[str]:
    return [
        f"{path.relative_to(SOURCE)}:{line}"
        for module, path in modules()
        if module != "hookd.domain.states" and "migrations" not in module.split(".")
        for line in state_literals(path)
    ]


def test_state_names_are_written_only_in_domain_states() -> None:
    assert misplaced_state_names() == []


def test_a_state_name_elsewhere_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "x.py").write_text('DONE = "succeeded"\n')
    monkeypatch.setattr(__import__(__name__, fromlist=["SOURCE"]), "SOURCE", tmp_path)
    assert misplaced_state_names() == ["store/x.py:1"]
