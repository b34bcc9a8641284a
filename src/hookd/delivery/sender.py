"""One HTTP attempt: a delivery's request, signed, over a shared, pooled, SSRF-guarded client."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import aiohttp
import orjson
from yarl import URL

from hookd import __version__
from hookd.delivery.retry import parse_retry_after
from hookd.delivery.ssrf import GuardedResolver, TargetGuard, TargetRefused, check_literal_host
from hookd.domain.signing import SigningKeys, signature_headers, signing_keys

USER_AGENT = f"hookd/{__version__}"
# Only this much of a receiver's answer is kept, so a huge answer cannot exhaust memory.
RESPONSE_BODY_LIMIT = 4096
# The answer is read to its end within the webhook's timeout (an answer trickled out byte by
# byte is a timeout, not a success); past this much it is not read further, and the connection
# is closed rather than reused.
RESPONSE_READ_LIMIT = 1024 * 1024


@dataclass(slots=True)
class Attempt:
    """What an attempt needs to know."""

    url: str
    body: bytes
    event_id: str
    number: int
    timeout_ms: int
    secret: str | None = None
    headers: str = "{}"
    bearer_token: str | None = None
    # After a rotation, for its grace period: `webhook-signature` carries this one's too.
    previous_secret: str | None = None


@dataclass(slots=True)
class Result:
    """What came back from one attempt."""

    started_at: float
    duration_ms: float
    status_code: int | None = None
    body: str | None = None
    error: str | None = None
    retry_after: float | None = None
    # The error without the addresses and host names it may name (for callers who are not
    # administrators); None when `error` names none.
    error_summary: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @property
    def public_error(self) -> str | None:
        """The error as anyone may see it: what went wrong, not which address was involved."""
        return self.error_summary or self.error


def refused(reason: str) -> str:
    """A refusal of the SSRF guard as the delivery log shows it: why, and the setting that
    allows it."""
    return (
        f"refused by the SSRF guard: {reason}; to deliver there, list its network in "
        "HOOKD_ALLOW_TARGETS (127.0.0.0/8 for this machine) and restart hookd"
    )


@lru_cache(maxsize=4096)
def _custom_headers(text: str) -> dict[str, str]:
    return orjson.loads(text) if text and text != "{}" else {}


@lru_cache(maxsize=4096)
def _keys(secret: str) -> SigningKeys:
    return signing_keys(secret)


@lru_cache(maxsize=256)
def _timeout(timeout_ms: int) -> aiohttp.ClientTimeout:
    # aiohttp rounds a deadline of 5 s or more up to the next whole second of its clock (half a
    # second late on average, measured); a webhook's timeout is kept to the millisecond.
    return aiohttp.ClientTimeout(total=timeout_ms / 1000, ceil_threshold=math.inf)


def request_headers(attempt: Attempt, timestamp: int) -> dict[str, str]:
    headers = {
        **_custom_headers(attempt.headers),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": attempt.event_id,
        "webhook-timestamp": str(timestamp),
        "X-Hookd-Attempt": str(attempt.number),
    }
    if attempt.secret:
        previous = _keys(attempt.previous_secret) if attempt.previous_secret else None
        headers.update(
            signature_headers(
                _keys(attempt.secret),
                attempt.event_id,
                timestamp,
                attempt.body,
                previous=previous,
            )
        )
    if attempt.bearer_token:
        headers["Authorization"] = f"Bearer {attempt.bearer_token}"
    return headers


async def _read_answer(response: aiohttp.ClientResponse) -> bytes:
    """The first RESPONSE_BODY_LIMIT bytes of the answer, the rest read and dropped."""
    kept = bytearray()
    read = 0
    while read < RESPONSE_READ_LIMIT:
        chunk = await response.content.readany()
        if not chunk:
            break
        read += len(chunk)
        if len(kept) < RESPONSE_BODY_LIMIT:
            kept += chunk[: RESPONSE_BODY_LIMIT - len(kept)]
    else:
        response.close()
    return bytes(kept)


SSRF_REFUSAL = "refused by the SSRF guard"
CONNECTION_FAILED = "connection failed"
NOT_MADE = "the request could not be made"


def _failure(summary: str, detail: object) -> tuple[str, str]:
    """An error (the summary and what exactly happened) and its address-free summary."""
    return f"{summary}: {detail}", summary


class Sender:
    """Sends attempts from one pooled client session; open it inside the running event loop."""

    def __init__(
        self,
        guard: TargetGuard,
        *,
        connections: int = 256,
        connector: Callable[[], aiohttp.BaseConnector] | None = None,
    ) -> None:
        self.guard = guard
        self._connections = connections
        # How requests reach their targets: TCP through the guarded resolver, unless told.
        self._connector = connector or self._tcp_connector
        self._session: aiohttp.ClientSession | None = None
        self._literal_refusal = lru_cache(maxsize=4096)(self._check_literal)

    def _tcp_connector(self) -> aiohttp.BaseConnector:
        return aiohttp.TCPConnector(
            limit=self._connections,
            limit_per_host=0,
            resolver=GuardedResolver(self.guard),
            ttl_dns_cache=10,
            enable_cleanup_closed=True,
        )

    async def open(self) -> None:
        connector = self._connector()
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("Accept-Encoding",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_literal(self, url: str) -> str | None:
        # aiohttp connects to an IP literal without asking the resolver, so check those here.
        return check_literal_host(self.guard, URL(url).host or "")

    async def send(self, attempt: Attempt) -> Result:
        """Make one attempt. Whatever goes wrong, building the request included, is a failed
        attempt with its reason: an attempt never raises (but for cancellation)."""
        if self._session is None:
            raise RuntimeError("Sender.open() was not awaited")
        started_at = time.time()
        clock = time.perf_counter()
        try:
            refusal = self._literal_refusal(attempt.url)
            if refusal is not None:
                return Result(started_at, 0.0, error=refused(refusal), error_summary=SSRF_REFUSAL)
            async with self._session.post(
                attempt.url,
                data=attempt.body,
                headers=request_headers(attempt, int(started_at)),
                timeout=_timeout(attempt.timeout_ms),
                allow_redirects=False,
            ) as response:
                content = await _read_answer(response)
                retry_after = None
                if response.status in (429, 503):
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), time.time()
                    )
                return Result(
                    started_at,
                    (time.perf_counter() - clock) * 1000,
                    status_code=response.status,
                    body=content.decode("utf-8", "replace").replace("\x00", "\ufffd"),
                    retry_after=retry_after,
                )
        except TimeoutError:
            error = summary = f"timed out after {attempt.timeout_ms} ms"
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            if isinstance(cause, TargetRefused):
                error, summary = refused(cause.reason), SSRF_REFUSAL
            else:
                error, summary = _failure(CONNECTION_FAILED, cause.strerror or cause)
        except (aiohttp.ClientError, OSError) as exc:
            error, summary = _failure(type(exc).__name__, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a request that cannot even be built (URL, headers…)
            error, summary = _failure(NOT_MADE, f"{type(exc).__name__}: {exc}")
        return Result(
            started_at,
            (time.perf_counter() - clock) * 1000,
            error=error,
            error_summary=summary,
        )
