"""A capture fuzzer: hypothesis breaks one random line of ``btcusdt_20240808.gz`` (issue 29).

Mutations: a number in the JSON replaced (huge, negative, zero, NaN, 1e400, random
digits), the receive time changed (shifted far, random, not a number), the JSON shape
changed (a key dropped, a value swapped for null / a list / a number / a string, the
line cut), the symbol changed, random bytes flipped or inserted.

Invariants, for every example:
* the run ends with a summary or an MmbotError whose exit status is <= 2 (no other
  exception: the CLI would print a traceback);
* it ends within a time bounded by the input (the clean run takes about 1.5 s);
* no fill reaches the engine while its book is known to be invalid;
* fills stay within 80-120 % of the clean run's 126, except when the broken line is the
  file's only REST snapshot (line 8): then either the snapshot survived and the bound
  holds, or the run says it never had a valid book and never trades.

Examples: ``CAPTURE_FUZZ_EXAMPLES`` (default 30, derandomized so ``make test`` is
reproducible, about a minute); ``.ci/run`` also runs ``make fuzz`` with 150 random ones.
SIGTERM and /healthz under bad data are tested on the real CLI in test_regressions.py.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.cli.backtest import run_l2_backtest
from mmbot.config.settings import load_settings
from mmbot.domain.orders import OrderFilled
from mmbot.errors import MmbotError
from tests.integrity.cases import CLEAN_FILLS, source_lines, write

EXAMPLES = int(os.environ.get("CAPTURE_FUZZ_EXAMPLES", "30"))
RANDOM = os.environ.get("CAPTURE_FUZZ_RANDOM", "") == "1"
SNAPSHOT_LINE = 7  # 0-based index of the REST snapshot in btcusdt_20240808.gz
MAX_SECONDS = 30.0  # the clean run takes ~1.5 s here; a hang is what this catches

NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")
NUMBERS = st.sampled_from([b"0", b"-1", b"-61000.00000000", b"1e400", b"NaN", b"Infinity", b"9" * 40, b"0.00000001",
                           b"61837.123456789", b"1" + b"0" * 30, b'"x"', b"null", b"[]", b"true"])
SHAPES = st.sampled_from([b"null", b"[]", b"{}", b"0", b'"7"', b"[[1]]", b'[["1","2","3"]]'])


@st.composite
def mutation(draw: st.DrawFn) -> tuple[int, str, bytes]:
    lines = source_lines()
    index = draw(st.one_of(st.just(SNAPSHOT_LINE), st.integers(0, len(lines) - 1)))
    line = lines[index]
    ts, _, body = line.rstrip(b"\n").partition(b" ")
    kind = draw(st.sampled_from(["number", "number_random", "timestamp", "shape", "drop_key", "cut", "symbol", "bytes"]))
    if kind in ("number", "number_random"):
        spans = [m.span() for m in NUMBER.finditer(body)]
        if not spans:
            return index, kind, line
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        new = draw(NUMBERS) if kind == "number" else str(draw(st.integers(-(10**25), 10**25))).encode()
        body = body[:a] + new + body[b:]
    elif kind == "timestamp":
        ts = draw(st.one_of(
            st.integers(0, 2**64).map(lambda v: str(v).encode()),
            st.integers(-(10**17), 10**17).map(lambda d: str(max(0, int(ts) + d)).encode()),
            st.sampled_from([b"", b"x", b"-5", b"1e18", b"9" * 60]),
        ))
    elif kind == "shape":
        keys = list(re.finditer(rb'"([A-Za-z]+)":', body))
        if keys:
            m = keys[draw(st.integers(0, len(keys) - 1))]
            end = m.end()
            # Replace the value that follows the key with another JSON value (to the next , or }).
            stop = min((i for i in (body.find(b",", end), body.find(b"}", end)) if i >= 0), default=len(body))
            body = body[:end] + draw(SHAPES) + body[stop:]
    elif kind == "drop_key":
        keys = list(re.finditer(rb'"([A-Za-z]+)":("[^"]*"|-?\d+|true|false|null),?', body))
        if keys:
            m = keys[draw(st.integers(0, len(keys) - 1))]
            body = body[: m.start()] + body[m.end():]
    elif kind == "cut":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif kind == "symbol":
        body = body.replace(b"BTCUSDT", draw(st.sampled_from([b"ETHUSDT", b"", b"btcusdt", b"BTC/USDT", b"BTCUSDT\\u0000"])))
    else:
        pos = draw(st.integers(0, max(0, len(body) - 1)))
        noise = draw(st.binary(min_size=1, max_size=8))
        body = body[:pos] + noise + body[pos + draw(st.integers(0, 2)):]
    return index, kind, ts + b" " + body + b"\n"


def _replay(path: Path) -> tuple[dict[str, Any] | None, int, list[str]]:
    """Run the backtest in process; (summary or None, exit status, invariant breaches)."""
    breaches: list[str] = []

    def on_built(built: Any) -> None:
        engine = built.engine

        def check(reports: list[Any]) -> None:
            for rep in reports:
                if isinstance(rep, OrderFilled) and not engine.book.is_synced:
                    breaches.append(f"fill {rep.client_order_id} at {rep.ts_ns} while the engine's book was invalid")

        built.session.on_reports = check

    env = {"MMBOT_AUDIT__ENABLED": "false", "MMBOT_RECORD__ENABLED": "false"}
    settings_ = load_settings(None, environ=env)
    try:
        summary, _ = run_l2_backtest(settings_, [str(path)], on_built=on_built)
    except MmbotError as exc:
        return None, exc.exit_code, breaches
    return summary, 0, breaches


@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(m=mutation())
def test_capture_when_one_random_line_is_broken_then_invariants_hold(m: tuple[int, str, bytes], tmp_path_factory: Any) -> None:
    index, kind, line = m
    lines = list(source_lines())
    lines[index] = line
    path = write(tmp_path_factory.mktemp("fuzz") / "broken.gz", lines)

    started = time.monotonic()
    summary, code, breaches = _replay(path)
    took = time.monotonic() - started

    assert code <= 2, (index, kind, line[:300])
    assert took < MAX_SECONDS, (index, kind, took)
    assert not breaches, (index, kind, breaches[:3])
    if summary is None:
        return
    fills = summary["fills"]
    in_bounds = 0.8 * CLEAN_FILLS <= fills <= 1.2 * CLEAN_FILLS
    if index == SNAPSHOT_LINE and not in_bounds:
        assert fills == 0 and not summary["book_ever_valid"], (kind, line[:300], fills)
    else:
        assert in_bounds, (index, kind, line[:300], fills, summary["market_data_rejections"])
