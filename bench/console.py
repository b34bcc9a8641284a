"""Progress messages go to stderr; the result tables go to stdout."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)
