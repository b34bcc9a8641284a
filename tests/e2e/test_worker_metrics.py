"""A separate `hookd worker` process serves its own metrics on `--metrics-port`, under the same
access rule as /metrics, and logs JSON lines with the ids of each delivery."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from hookd.config import load_settings
from support import Receiver, environment, free_port, hookd, running_api, start_worker

pytestmark = pytest.mark.slow

TOKEN = "worker-metrics-token-0123456789"
SECRET = "worker-webhook-secret-4242"


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{sample} not in the worker's metrics")


async def scrape_until(
    client: httpx.AsyncClient, url: str, sample: str, wanted: float, timeout: float = 30
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        if response.status_code == 200 and f"{sample} {wanted}" in response.text:
            return response.text
        if time.monotonic() > deadline:
            return response.text
        await asyncio.sleep(0.2)


async def test_a_worker_process_is_scraped_on_its_metrics_port(
    database_url: str,
    receiver: Receiver,
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    settings = load_settings(database_url=database_url, admin_password="x")
    async with running_api(settings, run_worker=False) as api:
        ok = await api.create_webhook(url=receiver.url("/ok"), secret=SECRET)
        gone = await api.create_webhook(
            url=receiver.url("/gone"), event_types=["log.tamper_event"], secret=SECRET
        )
        # Failing once, then waiting an hour for its retry: the sampled queue holds it.
        await api.create_webhook(
            url=receiver.url("/fail"), event_types=["log.tamper_event"], max_retries=1
        )
        receiver.answer("/gone", 410)
        receiver.answer("/fail", 500)
        await api.publish([{"type": "log.door_was_opened"} for _ in range(3)])
        await api.publish({"type": "log.tamper_event"})
        port = free_port()
        worker = start_worker(
            workers,
            database_url,
            tmp_path,
            "--metrics-port",
            str(port),
            HOOKD_METRICS_TOKEN=TOKEN,
            HOOKD_LOG_FORMAT="json",
            HOOKD_RETRY_SCHEDULE="1h",
        )
        await receiver.wait_for(5, timeout=30)
        url = f"http://127.0.0.1:{port}/metrics"
        async with httpx.AsyncClient(timeout=10) as client:
            attempts = 'hookd_delivery_attempts_total{dialect="device",outcome="succeeded"}'
            text = await scrape_until(client, url, attempts, 3.0)
            depth = 'hookd_queue_deliveries{state="retrying"}'
            sampled = await scrape_until(client, url, depth, 1.0)  # sampled every few seconds

            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers=api.user)).status_code == 403
            assert (await client.get(url, headers=api.admin)).status_code == 200
        await api.wait_for_deliveries(gone["uid"], 1, states=("failed",))
        assert len(await api.wait_for_deliveries(ok["uid"], 3)) == 3

    assert value(text, attempts) == 3
    assert value(text, 'hookd_delivery_attempts_total{dialect="device",outcome="failed"}') == 1
    assert value(text, 'hookd_deliveries_total{dialect="device",outcome="succeeded"}') == 3
    assert value(text, 'hookd_webhooks_disabled_total{reason="gone"}') == 1
    assert value(text, "hookd_worker_claim_batch_size_sum") == 5
    assert value(text, "hookd_delivery_first_attempt_delay_seconds_count") == 5
    assert value(sampled, depth) == 1
    assert value(sampled, 'hookd_queue_deliveries{state="pending"}') == 0
    assert value(text, 'hookd_delivery_attempts_total{dialect="device",outcome="retrying"}') == 1
    worker.terminate()
    assert worker.wait(timeout=40) == 0

    lines = [
        orjson.loads(line)
        for line in (tmp_path / "worker-0.log").read_bytes().splitlines()
        if line.startswith(b"{")
    ]
    outcomes = [line for line in lines if line["logger"] == "hookd.delivery"]
    assert sorted(line["outcome"] for line in outcomes) == ["failed", "retrying"]  # INFO only
    [failure] = [line for line in outcomes if line["outcome"] == "failed"]
    assert failure["attempt"] == 1
    assert failure["webhook_id"] == gone["uid"] and failure["status_code"] == 410
    assert {"event_id", "delivery_id"} <= set(failure)
    [disabled] = [line for line in lines if line["message"].startswith("webhook ")]
    assert disabled["reason"] == "gone" and disabled["level"] == "warning"
    log = (tmp_path / "worker-0.log").read_text()
    assert SECRET not in log and TOKEN not in log


def test_a_metrics_port_in_use_is_one_line(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = hookd(
            tmp_path,
            "worker",
            "--metrics-port",
            str(port),
            env=environment(HOOKD_DATABASE_URL=database_url),
        )
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "another --metrics-port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_log_format_names_the_variable(tmp_path: Path) -> None:
    done = hookd(tmp_path, "worker", env=environment(HOOKD_LOG_FORMAT="xml"))
    assert done.returncode == 2
    assert done.stderr.strip() == "hookd: HOOKD_LOG_FORMAT: must be text or json"
