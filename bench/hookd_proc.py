"""hookd's processes for one run: ``migrate``, ``serve`` (+ ``worker`` × N-1), killed at exit."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import procstat
from bench.console import say
from bench.procs import LOOPBACK, ProcessGroup, free_port, tail

MIGRATE_TIMEOUT_S = 120
HEALTH_TIMEOUT_S = 60


class HarnessError(RuntimeError):
    """hookd (or the bench) could not do what the run needs; the message says what and where."""


def hookd_binary(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    sibling = Path(sys.executable).parent / "hookd"
    if sibling.exists():
        return str(sibling)
    found = shutil.which("hookd")
    if found is None:
        raise HarnessError("no `hookd` console script next to this Python or on PATH")
    return found


class HookdProcesses:
    """``hookd serve`` (embedded worker) plus ``workers - 1`` × ``hookd worker`` on one store."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        workers: int,
        binary: str | None = None,
        settings: dict[str, str] | None = None,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.workers = workers
        self.serve_args = serve_args
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.binary = hookd_binary(binary)
        self.group = ProcessGroup()
        self.startup_s: dict[str, float] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKD_")}
        self.env.update(
            HOOKD_DATABASE_URL=database_url,
            HOOKD_ADMIN_USERNAME="admin",
            HOOKD_ADMIN_PASSWORD=self.password,
            HOOKD_ALLOW_TARGETS="127.0.0.0/8",
            HOOKD_HOST=LOOPBACK,
            HOOKD_PORT=str(self.port),
        )
        self.env.update(settings or {})

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def migrate(self) -> None:
        log = self.workdir / "migrate.log"
        with open(log, "wb") as out:
            try:
                done = subprocess.run(
                    [self.binary, "migrate"],
                    cwd=self.workdir,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=MIGRATE_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise HarnessError(f"`hookd migrate` took over {MIGRATE_TIMEOUT_S}s") from exc
        if done.returncode != 0:
            raise HarnessError(f"`hookd migrate` exited {done.returncode}:\n{tail(log)}")

    def start(self) -> None:
        t0 = time.monotonic()
        self.migrate()
        t1 = time.monotonic()
        self.group.start(
            "serve",
            [self.binary, "serve", *self.serve_args],
            log=self.workdir / "serve.log",
            cwd=self.workdir,
            env=self.env,
        )
        self.wait_healthy()
        t2 = time.monotonic()
        for n in range(1, self.workers):
            self.start_worker(n)
        self.wait_settled()
        self.check_alive()
        self.startup_s = {
            "migrate": round(t1 - t0, 2),
            "serve_healthy": round(t2 - t1, 2),
            "workers_settled": round(time.monotonic() - t2, 2),
        }
        say(
            f"hookd: serve on {self.base_url} + {self.workers - 1} worker process(es); "
            f"migrate {t1 - t0:.1f}s, serve healthy after {t2 - t1:.1f}s"
        )

    def start_worker(self, n: int) -> int:
        """Starts `hookd worker` number ``n``; returns its pid."""
        proc = self.group.start(
            f"worker-{n}",
            [self.binary, "worker"],
            log=self.workdir / f"worker-{n}.log",
            cwd=self.workdir,
            env=self.env,
        )
        return proc.pid

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise HarnessError(
            f"`hookd serve` not healthy after {HEALTH_TIMEOUT_S}s ({last}):\n"
            f"{tail(self.workdir / 'serve.log')}"
        )

    def wait_settled(self, limit_s: float = 30.0) -> None:
        """Waits until the worker processes are done starting up (CPU quiet for 0.5 s)."""
        deadline = time.monotonic() + limit_s
        workers = [pid for pid, label in self.group.pids().items() if label != "serve"]
        if not workers:
            return
        before = sum(procstat.cpu_seconds(pid) or 0.0 for pid in workers)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            self.check_alive()
            now = sum(procstat.cpu_seconds(pid) or 0.0 for pid in workers)
            if now - before < 0.05 * len(workers):
                return
            before = now
        say(f"hookd: worker processes still busy after {limit_s:.0f}s of starting up")

    def check_alive(self) -> None:
        dead = self.group.dead()
        if dead:
            label, code, log = dead[0]
            raise HarnessError(f"`hookd {label}` exited with {code}:\n{tail(log)}")

    def pids(self) -> dict[int, str]:
        """serve and workers, plus anything they started (labelled after their parent)."""
        return procstat.labelled_tree(self.group.pids())

    def close(self) -> None:
        self.group.close()

    def __enter__(self) -> HookdProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
