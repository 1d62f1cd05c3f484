"""One status line for every mode (backtest summary aside: replay, paper on a live feed, sandbox/live).

Format (one line, never wrapped by us; a terminal folds it, a pipe or a log keeps it whole)::

    2026-12-07T22:52:50Z BTC/USDT mid 61780 quotes 61768.88 / 61781.25 pos 0.02 BTC
    pnl -1.07 USDT fills 11b/10a state ACTIVE open 2 | replay 37% at 2024-08-08T23:12:01Z eta 3m12s

- the leading timestamp is the wall clock (UTC, seconds) when the line was written;
- per symbol (several joined with `` | ``): the mid and our resting quotes in the quote
  currency (``-`` when there is none), the position in the base currency as a plain
  decimal (``0``, never ``0E-8``), PnL net of fees marked at the engine's mark
  (:mod:`mmbot.engine.engine`) in the quote currency, fills on the bid/ask side, the
  risk state with its reasons and ``KILL SWITCH`` when engaged, our open orders;
- replays only: how far through the capture (compressed bytes read / total, so it moves
  in steps of the gzip reader's 128 KiB reads), the capture time reached, and the ETA
  = wall time so far x (1 - done) / done (``eta -`` below 1 % done; ``pass N`` instead of
  an ETA when looping, which never ends);
- the last line of a run (``final``) says ``stopped <reason>`` and, per symbol with a
  position, ``inventory left at stop <qty> <base>``: a run that ends not flat says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mmbot.domain.instrument import plain, price_text
from mmbot.engine.engine import Engine


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayProgress:
    fraction: float  # 0..1 of the current pass over the capture
    data_ts_ns: int  # capture time reached (0: nothing read yet)
    eta_s: float | None  # None: unknown (too early) or never (looping)
    passes: int  # completed passes of a looped capture (0 without --loop)
    looping: bool


def iso_utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: float) -> str:
    """``3m12s``, ``1h02m``, ``45s``."""
    s = max(round(seconds), 0)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def engine_status(engine: Engine, *, final: bool = False) -> str:
    inst = engine.instrument

    def price(ticks: float | None) -> str:
        return "-" if ticks is None else price_text(inst, ticks)

    gate = engine.gate
    reasons = "" if not gate.reasons else " " + ",".join(gate.reasons)
    position = inst.qty(engine.ledger.position_lots)
    text = (
        f"{inst.symbol} mid {price(engine.mid_ticks)} quotes {price(engine.quoted_bid)} / {price(engine.quoted_ask)} "
        f"pos {plain(position)} {inst.base} pnl {engine.net_pnl():.2f} {inst.quote_ccy} "
        f"fills {engine.ledger.bid_fills}b/{engine.ledger.ask_fills}a state {gate.state.name}{reasons}"
        f"{' KILL SWITCH' if gate.kill_switch_engaged else ''} open {engine.om.open_count()}"
    )
    if final and engine.ledger.position_lots:
        text += f" inventory left at stop {plain(position)} {inst.base}"
    return text


def progress_text(progress: ReplayProgress) -> str:
    text = f"replay {progress.fraction * 100:.0f}%"
    if progress.data_ts_ns:
        text += f" at {iso_utc(progress.data_ts_ns)}"
    if progress.looping:
        return text + f" pass {progress.passes + 1}"
    return text + (f" eta {duration_text(progress.eta_s)}" if progress.eta_s is not None else " eta -")


def status_line(
    engines: Iterable[Engine],
    *,
    wall_ns: int | None = None,
    progress: ReplayProgress | None = None,
    stopped: str | None = None,
) -> str:
    """The whole line; ``wall_ns`` None leaves out the timestamp (tests, the summary)."""
    final = stopped is not None
    parts = [engine_status(e, final=final) for e in engines]
    if progress is not None:
        parts.append(progress_text(progress))
    if final:
        parts.append(f"stopped {stopped}")
    line = " | ".join(parts)
    return line if wall_ns is None else f"{iso_utc(wall_ns)} {line}"
