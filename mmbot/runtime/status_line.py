"""One status line for every mode (replay, paper on a live feed, sandbox/live).

Per symbol: ``SYMBOL mid M quotes BID / ASK pos P BASE pnl N QUOTE fills Bb/Aa state S
[REASONS] [KILL SWITCH] open N``; several symbols are joined with `` | ``. Prices in the
quote currency, the position in the base currency as a plain decimal (``0``, never
``0E-8``), PnL net of fees marked at the engine's mark (mmbot.engine.engine).
"""

from __future__ import annotations

from collections.abc import Iterable

from mmbot.engine.engine import Engine


def _plain(value: object) -> str:
    text = f"{value:f}" if not isinstance(value, str) else value
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def engine_status(engine: Engine) -> str:
    inst = engine.instrument

    def price(ticks: float | None) -> str:
        return "-" if ticks is None else _plain(inst.price(int(ticks)))

    gate = engine.gate
    reasons = "" if not gate.reasons else " " + ",".join(gate.reasons)
    return (
        f"{inst.symbol} mid {price(engine.mid_ticks)} quotes {price(engine.quoted_bid)} / {price(engine.quoted_ask)} "
        f"pos {_plain(inst.qty(engine.ledger.position_lots))} {inst.base} pnl {engine.net_pnl():.2f} {inst.quote_ccy} "
        f"fills {engine.ledger.bid_fills}b/{engine.ledger.ask_fills}a state {gate.state.name}{reasons}"
        f"{' KILL SWITCH' if gate.kill_switch_engaged else ''} open {engine.om.open_count()}"
    )


def status_line(engines: Iterable[Engine]) -> str:
    return " | ".join(engine_status(e) for e in engines)
