"""``mmbot run --mode sandbox`` against the emulator with real ccxt (subprocess daemon, loopback)."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiohttp

from mmbot.emulator.server import RunningEmulator
from tests.conftest import MMBOT
from tests.sandbox.conftest import (
    API_KEY,
    SECRET,
    base_total,
    files_containing,
    open_orders,
    sandbox_env,
    scrape,
    start_daemon,
    wait_for,
)


async def test_sandbox_run_when_emulator_then_orders_fill_via_user_stream_balances_reconcile_and_no_secret_leaks(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url)
    btc_before = base_total(emu)
    daemon = await start_daemon(env, tmp_path, "run", "--duration", "25")
    port = await daemon.metrics_port()
    await wait_for(lambda: len(emu.emulator.account.orders) > 0, 30, "an order reached the emulator")
    metrics_text = await scrape(port)
    code = await daemon.wait(60)
    summary = daemon.result()
    account = emu.emulator.account
    our_orders = [r for r in account.orders.values() if r.client_order_id.startswith(summary["venue"]["order_prefix"])]
    btc_after = base_total(emu)
    leaks = files_containing(tmp_path, SECRET) + files_containing(tmp_path, API_KEY)
    journal_files = [p for p in (tmp_path / "journal").rglob("*") if p.is_file()]

    assert code == 0, daemon.err.read_text()[-2000:]
    # Orders reached the emulator (so the secret signed them) and fills came back.
    assert len(our_orders) >= 2 and summary["venue"]["orders_sent"] >= 2
    assert summary["fills"] >= 1 and summary["venue"]["fill_sources"].get("stream", 0) >= 1, summary["venue"]["fill_sources"]
    # Balances reconcile: the ledger's position is the venue's balance change.
    assert Decimal(summary["venue"]["position"]) == btc_after - btc_before == Decimal(summary["final_inventory"])
    assert summary["venue"]["position_matches_venue"] is True
    assert summary["venue"]["open_orders"] == 0 and open_orders(emu) == []
    # No key anywhere: stdout, stderr (logs), summary, journal + baseline (audit dir), /metrics.
    assert leaks == []
    assert SECRET not in metrics_text and API_KEY not in metrics_text and "mmbot_" in metrics_text
    assert len(journal_files) >= 2  # journal segment(s) + manifest were written and grepped


async def test_sandbox_when_venue_cancels_orders_on_its_own_then_user_stream_reports_them_and_quotes_return(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """watch_orders: a cancel the venue makes by itself reaches the engine at once, not at the next reconciliation."""
    # Reconciliation every 60 s: within this test only the order stream can tell the daemon.
    env = sandbox_env(clean_env, emu.base_url, MMBOT_EXCHANGE__RECONCILE_INTERVAL_S="60")
    daemon = await start_daemon(env, tmp_path, "venuecancel")
    port = await daemon.metrics_port()
    await wait_for(lambda: len(open_orders(emu)) >= 2, 40, "both quotes resting")
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{emu.base_url}/admin/pause") as r:  # the market stops: no re-quote falls due by itself
            assert r.status == 200
        await asyncio.sleep(1.0)  # replaces in flight settle
        async with s.post(f"{emu.base_url}/admin/cancel-orders") as r:
            cancelled = set((await r.json())["cancelled"])
        t0 = time.monotonic()
        await wait_for(lambda: len(open_orders(emu)) >= 2 and not {o.client_order_id for o in open_orders(emu)} & cancelled, 3.5,
                       "quotes replaced after the venue's own cancels (before the book goes stale at 5 s)")  # fmt: skip
        replaced_after_s = time.monotonic() - t0
        metrics_text = await scrape(port)
        async with s.post(f"{emu.base_url}/admin/resume") as r:
            assert r.status == 200
    daemon.terminate()
    code = await daemon.wait(40)
    summary = daemon.result()

    assert code == 0, daemon.err.read_text()[-2000:]
    print(f"replaced {len(cancelled)} venue-cancelled quotes after {replaced_after_s:.3f} s")
    assert len(cancelled) >= 2 and replaced_after_s < 3.5
    assert summary["venue"]["cancel_sources"].get("stream", 0) >= len(cancelled), summary["venue"]["cancel_sources"]
    assert summary["venue"]["reconciliations"] == 0  # the periodic one never ran: the stream told the daemon
    # watch_balance: the pushes after each order event, exported for operators.
    assert summary["venue"]["balance_updates"] >= 1 and Decimal(summary["venue"]["stream_balances"]["BTC"]) > 0
    assert 'mmbot_venue_balance{asset="BTC"}' in metrics_text and 'mmbot_venue_balance{asset="USDT"}' in metrics_text
    # The journal carries what the paper journal does: decisions, acks, signals (SIGTERM here).
    kinds = Counter(json.loads(line)["type"] for seg in (tmp_path / "journal").rglob("seg-*.jsonl") for line in seg.read_text().splitlines())
    assert kinds["decision"] >= 1 and kinds["ack"] >= 2 and kinds["signal"] == 1 and kinds["cancelled"] >= 2, kinds
    # Metrics the sandbox path fills too: tick-to-quote, journal records.
    assert metric_value(metrics_text, 'mmbot_tick_to_quote_seconds_count{symbol="BTC/USDT"}') >= 1
    assert metric_value(metrics_text, "mmbot_journal_records_total") >= 1


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_sandbox_restart_when_sigkilled_then_orphans_cancelled_no_duplicates_position_matches(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url)
    btc_before = base_total(emu)
    first = await start_daemon(env, tmp_path, "first")
    await wait_for(lambda: len(open_orders(emu)) > 0, 40, "the first daemon rests orders")
    await asyncio.sleep(4)  # trade for a while: fills move the balance
    await wait_for(lambda: len(open_orders(emu)) > 0, 20, "orders resting at the kill")
    first.kill()
    await first.wait(10)
    left_behind = {r.client_order_id for r in open_orders(emu)}
    second = await start_daemon(env, tmp_path, "second", "--duration", "12")
    code = await second.wait(60)
    summary = second.result()
    orders = list(emu.emulator.account.orders.values())
    per_id = Counter(r.client_order_id for r in orders)
    cancelled_orphans = {r.client_order_id for r in orders if r.client_order_id in left_behind and r.status == "CANCELED"}
    filled_orphans = {r.client_order_id for r in orders if r.client_order_id in left_behind and r.status == "FILLED"}

    assert code == 0, second.err.read_text()[-2000:]
    assert left_behind, "SIGKILL left orders at the venue"
    assert summary["venue"]["orphans_cancelled_at_start"] + summary["venue"]["orphans_cancelled"] >= 1
    assert cancelled_orphans | filled_orphans == left_behind
    assert max(per_id.values()) == 1  # no client order id was ever sent twice
    assert summary["venue"]["baseline_created"] is False
    assert Decimal(summary["final_inventory"]) == base_total(emu) - btc_before == Decimal(summary["venue"]["position"])
    assert open_orders(emu) == [] and summary["venue"]["open_orders"] == 0


def test_live_mode_when_not_allowed_then_refused_with_exit_2(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_EXCHANGE__API_KEY=API_KEY, MMBOT_EXCHANGE__SECRET=SECRET)
    refused = subprocess.run([*MMBOT, "run", "--mode", "live", "--duration", "1"], env=env, capture_output=True, text=True, timeout=60)
    env["MMBOT_ALLOW_LIVE"] = "no"
    still_refused = subprocess.run([*MMBOT, "run", "--mode", "live", "--duration", "1"], env=env, capture_output=True, text=True, timeout=60)

    assert refused.returncode == 2 and "MMBOT_ALLOW_LIVE=yes" in refused.stderr
    assert still_refused.returncode == 2 and "MMBOT_ALLOW_LIVE=yes" in still_refused.stderr
    assert SECRET not in refused.stderr + refused.stdout + still_refused.stderr


def test_sandbox_mode_when_no_keys_then_exit_2_naming_the_variables(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_EXCHANGE__BASE_URL="http://127.0.0.1:9")  # nothing listens: never reached
    result = subprocess.run([*MMBOT, "run", "--mode", "sandbox", "--duration", "1"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "MMBOT_EXCHANGE__API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_compare_when_run_then_reports_paper_and_sandbox_divergence(clean_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    result = subprocess.run(
        [*MMBOT, "compare", "--duration", "10", "--speed", "3", "--out", str(out)],
        env=clean_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    report = json.loads(out.read_text()) if out.exists() else {}

    assert result.returncode == 0, result.stderr[-2000:]
    assert "fill_rate" in result.stdout and "markout_5s_bps" in result.stdout
    assert report["paper"]["orders_placed"] > 0 and report["sandbox"]["venue"]["orders_sent"] > 0
    assert report["sandbox"]["venue"]["open_orders"] == 0 and report["emulator"]["open_orders"] == 0
    row = report["divergence"]["fills"]
    assert row["difference"] == row["sandbox"] - row["paper"]


def _limit_file_size() -> None:
    # Files beyond 16 KiB fail with EFBIG even for root (Python ignores SIGXFSZ): the journal
    # fills up first; logs go to a pipe, which the limit does not touch.
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


async def test_sandbox_when_journal_write_fails_then_halted_orders_cancelled_at_venue_exit_3(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url)
    summary_path = tmp_path / "s.json"
    proc = await asyncio.create_subprocess_exec(
        *MMBOT, "run", "--mode", "sandbox", "--no-status", "--summary-json", str(summary_path),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(tmp_path), preexec_fn=_limit_file_size,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            _, err_bytes = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
    err = err_bytes.decode(errors="replace")
    summary = json.loads(summary_path.read_text())

    assert proc.returncode == 3, err[-3000:]
    assert "journal_write_failed" in err and "File too large" in err
    assert summary["stop_reason"] == "journal_failure" and "JOURNAL_FAILURE" in summary["risk_reasons"]
    assert summary["venue"]["orders_sent"] >= 1  # it was trading when the journal failed
    assert summary["venue"]["open_orders"] == 0 and open_orders(emu) == []  # cancelled at the venue on the way out
