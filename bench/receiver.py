"""The receiving end: nginx (``return 200``) in a temp dir, or the Python sink as a fallback.

Both write one line per request — ``$msec $http_webhook_id $status $http_x_hookd_attempt $uri`` —
so arrivals can be matched to published event ids after (and during) a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procstat
from bench.console import say
from bench.procs import LOOPBACK, ProcessGroup, free_port, tail, wait_port

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 65536;

events {{
    worker_connections 8192;
}}

http {{
    log_format hookd '$msec $http_webhook_id $status $http_x_hookd_attempt $uri';
    access_log {tmp}/access.log hookd buffer=256k flush=100ms;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 16m;
    client_body_buffer_size 64k;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server_tokens off;

    server {{
        listen {host}:{port} backlog=4096;
        server_name bench;
        # A static location answers POST with 405; `return` answers every method 200.
        location / {{
            return 200;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def _apt(args: list[str], timeout: float) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(
            ["apt-get", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"apt-get {' '.join(args)}: {exc}")
        return False
    if done.returncode != 0:
        say(f"apt-get {' '.join(args)} failed: {done.stderr.decode(errors='replace')[-300:]}")
    return done.returncode == 0


def ensure_nginx(allow_install: bool) -> str | None:
    """nginx's path; installs Debian's nginx-light (or nginx) when root and allowed."""
    found = find_nginx()
    if found or not allow_install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    say("nginx not found: installing Debian's nginx-light (apt-get, bounded to a few minutes)")
    deadline = time.monotonic() + 300
    for attempt in range(2):
        for package in ("nginx-light", "nginx"):
            left = deadline - time.monotonic()
            if left <= 0:
                return find_nginx()
            if _apt(["install", "-y", "-q", "--no-install-recommends", package], left):
                return find_nginx()
        if attempt == 0 and not _apt(["update", "-q"], max(1.0, deadline - time.monotonic())):
            break
    return find_nginx()


@dataclass(frozen=True)
class Arrival:
    msec: float
    webhook_id: str
    status: int
    attempt: int | None
    path: str


def parse_line(line: str) -> Arrival | None:
    parts = line.rstrip("\n").split(" ", 4)
    if len(parts) != 5:
        return None
    try:
        status = int(parts[2])
        msec = float(parts[0])
    except ValueError:
        return None
    attempt = int(parts[3]) if parts[3].isdigit() else None
    return Arrival(msec, parts[1], status, attempt, parts[4])


class ArrivalLog:
    """Reads the receiver's log incrementally, from a mark on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = ""

    def mark(self) -> None:
        """Skip everything logged so far."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self._partial = ""

    def read_new(self) -> list[Arrival]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="latin-1") as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset = f.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next read
        return [a for a in map(parse_line, lines) if a is not None]


class Receiver:
    """A running receiver on 127.0.0.1:<port>; close() kills it."""

    def __init__(self, workdir: Path, prefer: str = "auto", allow_install: bool = True) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "access.log"
        self.group = ProcessGroup()
        self.kind = "python"
        nginx = ensure_nginx(allow_install) if prefer in ("auto", "nginx") else None
        if prefer == "nginx" and nginx is None:
            raise RuntimeError("--receiver nginx: nginx is not installed and could not be")
        if nginx is not None and self._start_nginx(nginx):
            self.kind = "nginx"
        else:
            if prefer != "python":
                say("nginx unavailable: falling back to the Python raw-protocol sink")
            self._start_sink()
        self.log = ArrivalLog(self.log_path)

    def _start_nginx(self, nginx: str) -> bool:
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / sub).mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.workdir, host=LOOPBACK, port=self.port))
        argv = [nginx, "-p", str(self.workdir), "-c", str(conf), "-e", str(self.workdir / "e.log")]
        proc = self.group.start("nginx", argv, log=self.workdir / "nginx.out")
        if wait_port(self.port, 10, proc):
            return True
        say(f"nginx did not start:\n{tail(self.workdir / 'nginx.out')}")
        say(tail(self.workdir / "error.log"))
        self.group.close()
        self.group = ProcessGroup()
        self.port = free_port()
        return False

    def _start_sink(self) -> None:
        argv = [sys.executable, "-m", "bench.sink", "--port", str(self.port)]
        argv += ["--log", str(self.log_path)]
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(root))
        proc = self.group.start("sink", argv, log=self.workdir / "sink.out", env=env, cwd=root)
        if not wait_port(self.port, 10, proc):
            self.group.close()
            raise RuntimeError(f"the Python sink did not start:\n{tail(self.workdir / 'sink.out')}")

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def pids(self) -> dict[int, str]:
        labels = {pid: self.kind for pid in self.group.pids()}
        return procstat.labelled_tree(labels)

    def close(self) -> None:
        self.group.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
