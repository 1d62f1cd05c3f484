"""The example strategy plugin (examples/microprice, installed as a package) on the sandbox
path: ``mmbot run --mode sandbox --config <its profile>`` through real ccxt to the emulator
on 127.0.0.1. The plugin runs unchanged: its quotes reach the venue, fill, and the gate
refuses none of its decisions."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from mmbot.emulator.server import RunningEmulator
from mmbot.research.record import iso_ns, parse_iso_ns
from tests.sandbox.conftest import base_total, open_orders, sandbox_env, start_daemon, wait_for
from tests.strategy.example_plugin import PROFILE, install_example, plugin_env


async def test_sandbox_run_when_microprice_plugin_profile_then_it_trades_against_the_emulator_with_no_refusals(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    target = install_example(tmp_path)  # its entry point "microprice" is what the profile names
    env = sandbox_env(plugin_env(clean_env, str(target)), emu.base_url)
    btc_before = base_total(emu)
    daemon = await start_daemon(env, tmp_path, "microprice", "--config", str(PROFILE), "--duration", "25")
    await wait_for(lambda: len(emu.emulator.account.orders) > 0, 40, "an order of the plugin reached the emulator")
    code = await daemon.wait(90)
    summary = daemon.result()
    prefix = summary["venue"]["order_prefix"]
    ours = [r for r in emu.emulator.account.orders.values() if r.client_order_id.startswith(prefix)]
    denials = summary["risk_denials_by_reason"]
    with Path(summary["record_dir"], "fills.csv").open(newline="") as fh:
        recorded = list(csv.DictReader(fh))

    assert code == 0, daemon.err.read_text()[-3000:]
    assert summary["mode"] == "sandbox" and summary["parameters"]["model"] == "microprice"
    assert len(ours) >= 2 and {r.side for r in ours} == {"BUY", "SELL"}, [(r.side, r.price) for r in ours]
    assert summary["fills"] >= 1 and summary["venue"]["fill_sources"].get("stream", 0) >= 1, summary["venue"]["fill_sources"]
    assert [r for r in denials if r.startswith("MODEL_")] == [], denials  # refusals of the plugin's decisions: 0
    assert Decimal(summary["venue"]["position"]) == base_total(emu) - btc_before == Decimal(summary["final_inventory"])
    assert summary["venue"]["open_orders"] == 0 and open_orders(emu) == []
    # the run record names each fill's order, and says the venue filled it (queue ahead unknown there)
    assert len(recorded) == summary["fills"] and {r["order_id"] for r in recorded} <= {r.client_order_id for r in ours}
    assert {r["reason"] for r in recorded} == {"venue"} and {r["queue_ahead"] for r in recorded} == {""}
    assert all(iso_ns(parse_iso_ns(r["time"])) == r["time"] for r in recorded)  # ISO 8601 UTC, ns
