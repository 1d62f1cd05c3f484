"""The runner's wall-clock side: kill switch sources, dead-man, loop lag, reload (fake clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmbot.config.settings import load_settings
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.runtime.controls import Controls, wall_watchdogs_enabled
from tests.conftest import CAPTURE, live_node, replay_node

MS = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.ns = 10**12

    def __call__(self) -> int:
        return self.ns

    def advance_ms(self, ms: float) -> None:
        self.ns += int(ms * MS)


def quoting_runner(tmp_path: Path, *, overrides: dict[str, object] | None = None, config: str | None = None,
                   events: int = 3000) -> tuple[Any, FakeClock]:
    settings = load_settings(config, environ={}, overrides=overrides or {})
    runner: Any = replay_node(settings, "20260101T000000Z-test0000", CAPTURE, config_path=config)
    clock = FakeClock()
    runner.controls = Controls(runner.target, clock=clock)
    session = kernel(runner).session
    parser = CaptureParser([kernel(runner).instrument])
    for i, event in enumerate(read_events(CAPTURE, parser, ReadStats())):
        session.step(event)
        if i >= events:
            break
    runner.publish()
    return runner, clock


def kernel(node: Any) -> Any:
    return next(iter(node.lanes.values())).kernel


def test_set_kill_switch_when_engaged_then_halted_zero_orders_and_confirmed(tmp_path: Path) -> None:
    runner, _ = quoting_runner(tmp_path)
    controls = runner.controls
    before = controls.open_orders()
    seen: list[str] = []
    runner.buses["BTC/USDT"].subscribe_batch(lambda evs: seen.extend(e.kind for e in evs))

    status = controls.set_kill_switch(True, "test")
    released = controls.set_kill_switch(False, "test")

    assert before > 0
    assert status["risk_state"] == "HALTED" and status["open_orders"] == 0 and status["confirmed"] is True
    assert released["risk_state"] == "ACTIVE" and released["kill_switch_engaged"] is False
    assert "kill_switch" in seen and "kill_switch_confirmed" in seen and "cancel_all" in seen


def test_poll_kill_file_when_file_appears_then_engaged_and_release_elsewhere_refused(tmp_path: Path) -> None:
    flag = tmp_path / "KILL"
    runner, clock = quoting_runner(tmp_path, overrides={"risk": {"kill_switch_file": str(flag)}})
    controls = runner.controls

    flag.write_text("")
    clock.advance_ms(300)
    controls.on_tick(0.0)
    engaged = controls.kill_status()
    refused = controls.set_kill_switch(False, "SIGUSR1")
    flag.unlink()
    clock.advance_ms(300)
    controls.on_tick(0.0)

    assert engaged["kill_switch_engaged"] is True and engaged["open_orders"] == 0
    assert refused["refused"] == "kill switch file exists" and refused["kill_switch_engaged"] is True
    assert controls.kill_status()["kill_switch_engaged"] is False


def test_deadman_when_quoting_loop_silent_but_event_loop_healthy_then_cancels_all(tmp_path: Path) -> None:
    runner, clock = quoting_runner(tmp_path, overrides={"risk": {"wall_clock_watchdogs": "on", "deadman_ms": 1000}})
    controls = runner.controls
    controls.beat()
    before = controls.open_orders()

    for _ in range(30):  # 1.5 s of healthy 50 ms ticks without a beat
        clock.advance_ms(50)
        controls.on_tick(0.5)

    assert before > 0
    assert kernel(runner).engine.gate.reasons == ("DEAD_MAN",)
    assert controls.open_orders() == 0
    assert controls.deadman.trips == 1


def test_deadman_when_whole_event_loop_blocked_then_not_blamed_on_quoting_loop(tmp_path: Path) -> None:
    runner, clock = quoting_runner(tmp_path, overrides={"risk": {"wall_clock_watchdogs": "on", "deadman_ms": 1000,
                                                                 "loop_lag_ms": 100_000}})
    controls = runner.controls
    controls.beat()

    clock.advance_ms(3000)
    controls.on_tick(2950.0)  # the loop itself was blocked for 2.95 s

    assert not kernel(runner).engine.gate.has(RiskReason.DEAD_MAN)


def test_loop_lag_when_watchdogs_on_then_halts_and_clears_after_calm(tmp_path: Path) -> None:
    runner, _ = quoting_runner(tmp_path, overrides={"risk": {"wall_clock_watchdogs": "on", "loop_lag_ms": 200,
                                                                 "calm_period_ms": 0}})
    controls = runner.controls
    controls.beat()

    controls.on_tick(350.0)
    halted = kernel(runner).engine.gate.state
    controls.beat()
    controls.on_tick(1.0)

    assert halted is TradingState.HALTED
    assert kernel(runner).engine.gate.state is TradingState.ACTIVE
    assert controls.loop_lag.trips == 1


def test_loop_lag_when_replay_with_auto_then_measured_but_never_acts(tmp_path: Path) -> None:
    runner, _ = quoting_runner(tmp_path)
    controls = runner.controls

    controls.on_tick(5000.0)

    assert wall_watchdogs_enabled(runner.settings) is False
    assert kernel(runner).engine.gate.state is TradingState.ACTIVE
    assert controls.status()["watchdogs"]["loop_lag_worst_ms"] == 5000.0


def test_reload_when_file_invalid_then_refused_and_old_parameters_stay(tmp_path: Path) -> None:
    path = tmp_path / "mmbot.yaml"
    path.write_text("strategy:\n  spread_bps: 3.0\n  order_size: 0.01\n  max_inventory: 0.05\n")
    runner, _ = quoting_runner(tmp_path, config=str(path))
    controls = runner.controls
    old_hash = controls.config_hash

    path.write_text("strategy:\n  spread_bps: -1\n")
    refused = controls.reload()
    error = controls.last_reload_error
    kept = controls.status()["params"]["spread_bps"]
    path.write_text("strategy:\n  spread_bps: 4.0\n  order_size: 0.01\n  max_inventory: 0.04\n")
    applied = controls.reload()

    assert refused is False and controls.reload_failures == 1 and "spread_bps" in error and kept == 3.0
    assert applied is True and controls.reloads == 1 and controls.config_hash != old_hash
    status = controls.status()
    assert status["params"]["spread_bps"] == 4.0 and status["params"]["max_inventory"] == "0.04"


def test_clear_reason_when_sticky_manual_then_operator_clear_resumes(tmp_path: Path) -> None:
    runner, _ = quoting_runner(tmp_path)
    engine = kernel(runner).engine
    engine.raise_reason(RiskReason.MANUAL, kernel(runner).session.now_ns, "test")

    result = runner.controls.clear_reason(RiskReason.MANUAL, "test")

    assert result == {"cleared": True, "reason": "MANUAL", "risk_state": "ACTIVE", "risk_reasons": []}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, False),
    ({"risk": {"wall_clock_watchdogs": "on"}}, True),
    ({"mode": "sandbox"}, True),
    ({"mode": "sandbox", "risk": {"wall_clock_watchdogs": "off"}}, False),
])
def test_wall_watchdogs_enabled_when_auto_then_on_only_off_replay(overrides: dict[str, object], expected: bool) -> None:
    assert wall_watchdogs_enabled(load_settings(None, environ={}, overrides=overrides)) is expected


def test_status_text_when_kill_switch_engaged_then_shows_state_reasons_switch_and_open_orders(tmp_path: Path) -> None:
    runner, _ = quoting_runner(tmp_path)
    before = runner.status_text()

    runner.controls.set_kill_switch(True, "test")
    engine = kernel(runner).engine
    engine.raise_reason(RiskReason.STALE_BOOK, kernel(runner).session.now_ns, "test")
    after = runner.status_text()

    assert "state ACTIVE" in before and "KILL SWITCH" not in before
    assert "state HALTED KILL_SWITCH,STALE_BOOK" in after
    assert "KILL SWITCH" in after and "open 0" in after


async def test_run_paper_when_hook_task_hangs_on_shutdown_then_cancelled_at_deadline_and_summary_returned(tmp_path: Path) -> None:
    import asyncio
    import time

    settings = load_settings(None, environ={}, overrides={"risk": {"shutdown_deadline_s": 0.5}, "audit": {"enabled": False},
                                                          "metrics": {"enabled": False}})
    runner: Any = replay_node(settings, "20260101T000000Z-test0000", CAPTURE, max_events=3000)
    cancelled: list[bool] = []

    async def stuck(state: object) -> None:
        try:
            await asyncio.Event().wait()  # ignores state.stop: a hook that never flushes
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    started = time.monotonic()
    runner.services.append(stuck)
    summary = await runner.run()
    elapsed = time.monotonic() - started

    assert cancelled == [True]
    assert summary["open_orders"] == 0 and summary["stop_reason"] == "max_events"
    assert summary["run_id"] == "20260101T000000Z-test0000"
    assert elapsed < 10


@pytest.mark.parametrize(("admin", "count"), [({}, 0), ({"token": "t0ken-abc"}, 1), ({"token": "t0ken-abc", "enabled": False}, 0)])
def test_hooks_admin_tasks_when_token_configured_then_endpoint_task_else_none(admin: dict[str, object], count: int) -> None:
    from mmbot.wiring import admin_services

    settings = load_settings(None, environ={}, overrides={"admin": admin})
    runner = replay_node(settings, "20260101T000000Z-test0000", CAPTURE)

    assert len(admin_services(runner)) == count  # type: ignore[arg-type]


def _live_runner(tmp_path: Path, config: str | None = None) -> object:
    from mmbot.domain.instrument import Instrument

    settings = load_settings(config, environ={}, overrides={"data": {"source": "live"}, "audit": {"enabled": False},
                                                            "metrics": {"enabled": False}})
    runner: Any = live_node(settings, "20260101T000000Z-live0000", observers=False, config_path=config)
    runner.open_lanes({symbol: Instrument.from_symbol(symbol, tick_size="0.01", step_size="0.00001", min_notional="5")
                       for symbol in ("BTC/USDT", "ETH/USDT")})
    return runner


async def test_live_controls_when_kill_switch_and_reload_then_every_slot_engine_acts(tmp_path: Path) -> None:
    import asyncio
    import signal

    from mmbot.runtime.node import NodeTarget

    path = tmp_path / "mmbot.yaml"
    path.write_text("strategy:\n  spread_bps: 20.0\n")
    runner: Any = _live_runner(tmp_path, str(path))
    controls = runner.controls
    engines = [slot.engine for slot in runner.lanes.values()]

    engaged = controls.set_kill_switch(True, "test")
    await runner.send_deferred()
    reasons_engaged = [tuple(e.gate.reasons) for e in engines]
    status = controls.status()
    text = runner.status_text()
    path.write_text("strategy:\n  spread_bps: 25.0\n")
    applied = controls.reload()
    path.write_text("strategy:\n  spread_bps: -1\n")
    refused = controls.reload()
    released = controls.set_kill_switch(False, "test")
    loop = asyncio.get_running_loop()
    handlers = runner.install_signals(loop)
    for sig in handlers:
        loop.remove_signal_handler(sig)

    assert isinstance(controls.target, NodeTarget)
    assert handlers[signal.SIGHUP] == runner.reload and handlers[signal.SIGUSR1] == runner.toggle_kill_switch
    assert engaged["kill_switch_engaged"] is True and engaged["risk_state"] == "HALTED" and engaged["open_orders"] == 0
    assert reasons_engaged == [("KILL_SWITCH",), ("KILL_SWITCH",)]
    assert set(status["symbols"]) == {"BTC/USDT", "ETH/USDT"} and status["mode"] == "paper"
    assert text.count("KILL SWITCH") == 2 and text.count("open 0") == 2
    assert applied is True and refused is False and controls.reloads == 1 and controls.reload_failures == 1
    assert runner.settings.strategy.spread_bps == 25.0 and runner.settings.data.source == "live"
    assert all(e.model is not None for e in engines) and status["symbols"]["ETH/USDT"]["params"]["spread_bps"] == 20.0
    assert controls.status()["symbols"]["ETH/USDT"]["params"]["spread_bps"] == 25.0
    assert released["kill_switch_engaged"] is False and all(e.gate.state is TradingState.ACTIVE for e in engines)
