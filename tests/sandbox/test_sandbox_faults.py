"""Every emulator fault against a running sandbox daemon: handled as mapped, zero orphans after SIGTERM.

Order path (REST orders, ws-api user stream): reject (-2010), http429, http418 (ban
with retry-after), http5xx (-1001), slow REST (> exchange.timeout_s: RequestTimeout,
lookup by client id), clock skew (-1021: time resync), dropped connections, a
malformed frame on the ws-api socket (and, with ws orders, a hung create_order_ws).
Market data: gap, garbage, malformed, freeze, drop.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.adapters.ccxt.exchange import ExchangeParams, build_exchange, market_instrument
from mmbot.domain.orders import OrderAccepted, PlaceOrder, Side
from mmbot.emulator.server import RunningEmulator
from mmbot.execution.ccxt_executor import CcxtExecutor, account_prefix
from tests.sandbox.conftest import API_KEY, SECRET, base_total, inject, open_orders, sandbox_env, start_daemon, wait_for


def transition_reasons(summary: dict[str, Any]) -> set[str]:
    reasons: set[str] = set()
    for t in summary["risk_transitions"]:
        reasons.update(t.get("reasons") or [])
        cause = str(t.get("cause") or "")
        reasons.update(word for word in cause.replace(":", " ").replace("(", " ").split() if word.isupper())
    return reasons


def malformed_on_ws_api(emu: RunningEmulator) -> int:
    """A frame starting with '{' that is not JSON, on every ws-api socket (stops ccxt's receive loop)."""
    sent = 0
    for conn in list(emu.emulator.conns):
        if conn.kind == "api":
            sent += conn.send("{this is not json")
    return sent


async def test_sandbox_when_order_path_faults_then_mapped_outcomes_and_zero_orphans_after_sigterm(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url)
    btc_before = base_total(emu)
    daemon = await start_daemon(env, tmp_path, "faults")
    await wait_for(lambda: len(open_orders(emu)) > 0, 40, "orders resting before the faults")
    for kind, duration_s, pause_s in (
        ("reject", 3, 3), ("http429", 2, 4), ("http418", 2, 5), ("http5xx", 3, 5), ("slow", 3, 5), ("skew", 4, 6), ("drop", 0, 4),
    ):  # fmt: skip
        await inject(emu, kind, duration_s=duration_s)
        await asyncio.sleep(duration_s + pause_s)
    api_sockets = malformed_on_ws_api(emu)
    await asyncio.sleep(10)
    await wait_for(lambda: len(open_orders(emu)) > 0, 20, "quoting again after the faults")
    daemon.terminate()
    code = await daemon.wait(40)
    summary = daemon.result()
    outcomes = summary["venue"]["outcomes"]
    reasons = transition_reasons(summary)

    assert code == 0, daemon.err.read_text()[-3000:]
    assert open_orders(emu) == [] and summary["venue"]["open_orders"] == 0
    assert outcomes.get("rejected", 0) >= 1  # reject fault: -2010 -> reject
    assert outcomes.get("rate_limited", 0) >= 1 and outcomes.get("ip_banned", 0) >= 1  # 429 / 418 told apart
    assert "ORDER_RATE" in reasons
    assert outcomes.get("venue_down", 0) >= 1 and "EXCHANGE_DOWN" in reasons  # 5xx past the grace period
    assert outcomes.get("timeout", 0) >= 1  # slow REST
    assert outcomes.get("clock_skew", 0) >= 1 and summary["venue"]["time_resyncs"] >= 2  # -1021 -> time resync
    assert api_sockets >= 1 and summary["venue"]["connection_resets"] >= 1 and summary["venue"]["user_stream_reconnects"] >= 1
    assert Decimal(summary["final_inventory"]) == base_total(emu) - btc_before
    assert summary["risk_state"] == "ACTIVE" or set(summary["risk_reasons"]) <= {"REJECT_STORM", "ORDER_RATE"}


async def test_sandbox_when_ws_orders_and_ws_api_hangs_then_connections_reset_no_duplicates(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url, MMBOT_EXCHANGE__WS_ORDERS="true")
    daemon = await start_daemon(env, tmp_path, "wsorders", "--duration", "22")
    await wait_for(lambda: len(emu.emulator.account.orders) > 2, 40, "ws-api orders reach the emulator")
    # Orders keep arriving on the ws-api socket after the malformed frame; ccxt no longer
    # reads the replies, so create_order_ws / cancel_order_ws hang until the order timeout.
    malformed_on_ws_api(emu)
    code = await daemon.wait(60)
    summary = daemon.result()
    ids = [r.client_order_id for r in emu.emulator.account.orders.values()]

    assert code == 0, daemon.err.read_text()[-3000:]
    # A hung order call (create: looked up by client id; cancel: retried, idempotent) and the
    # silent user stream both end in a connection reset; nothing is sent twice.
    assert summary["venue"]["outcomes"].get("timeout", 0) >= 1
    assert summary["venue"]["connection_resets"] >= 1 and summary["venue"]["user_stream_reconnects"] >= 1
    assert len(ids) == len(set(ids))
    assert open_orders(emu) == [] and summary["venue"]["open_orders"] == 0
    assert summary["venue"]["position_matches_venue"] is True


async def test_sandbox_when_market_data_faults_then_halts_resyncs_and_zero_orphans_after_sigterm(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url)
    daemon = await start_daemon(env, tmp_path, "mdfaults")
    await wait_for(lambda: len(open_orders(emu)) > 0, 40, "orders resting before the faults")
    for kind, duration_s, pause_s in (("gap", 0, 3), ("garbage", 0, 2), ("freeze", 4, 4), ("malformed", 0, 6), ("drop", 0, 4)):
        await inject(emu, kind, duration_s=duration_s)
        await asyncio.sleep(duration_s + pause_s)
    daemon.terminate()
    code = await daemon.wait(40)
    summary = daemon.result()
    reasons = transition_reasons(summary)

    assert code == 0, daemon.err.read_text()[-3000:]
    assert open_orders(emu) == [] and summary["venue"]["open_orders"] == 0
    assert summary["feed_gaps"] >= 1 and "BOOK_GAP" in reasons
    assert summary["feed_silences"] + summary["feed_disconnects"] >= 2 and "STALE_BOOK" in reasons
    assert summary["feed_resyncs"] >= 2
    assert summary["venue"]["position_matches_venue"] is True



async def test_executor_when_rest_slower_than_timeout_then_create_looked_up_by_client_id_not_resent(emu: RunningEmulator) -> None:
    """Real ccxt against the emulator: a create slower than the timeout is looked up, not re-sent.

    The emulator's slow fault carries the request out and answers late, so the order
    rests at the venue while the client has timed out. The first lookup is slow too;
    the next one (after the slow window) finds the order, which is then tracked as
    accepted and cancelled normally. (A create that never reached the venue is
    reported rejected: test_executor_errors.py.)
    """
    exchange = build_exchange(ExchangeParams(
        id="binance", sandbox=True, base_url=emu.base_url, api_key=API_KEY, secret=SECRET, timeout_s=2.0, enable_rate_limit=False,
    ))  # fmt: skip
    try:
        await exchange.load_markets()
        inst = market_instrument(exchange, "BTC/USDT")
        ex = CcxtExecutor(exchange, {"BTC/USDT": inst}, account_prefix=account_prefix("slow"), order_timeout_s=2.0)
        best_bid = emu.emulator.markets["BTCUSDT"].book.best_bid()
        assert best_bid is not None
        await inject(emu, "slow", duration_s=3.5)  # 3 s per REST answer > 2 s timeout; the first lookup also times out
        coid = account_prefix("slow") + "000001-1"
        await ex.submit([PlaceOrder(client_order_id=coid, symbol="BTC/USDT", side=Side.BUY, price_ticks=best_bid - 5_000, qty_lots=100_000)], 0)
        reports = ex.pending_reports()
        at_venue = [r for r in emu.emulator.account.orders.values() if r.client_order_id == coid]
        await ex.cancel_all("BTC/USDT", 0)
    finally:
        await exchange.close()

    assert ex.outcomes.get("timeout", 0) >= 2 and ex.lookups_after_timeout == 1  # the create and the first lookup
    assert ex.orders_sent == 1 and len(at_venue) == 1  # one create, never re-sent
    assert [type(r) for r in reports] == [OrderAccepted] and reports[0].venue_order_id == str(at_venue[0].order_id)
    assert open_orders(emu) == []
