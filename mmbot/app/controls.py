"""Operator controls and wall-clock watchdogs of the paper runner.

The pure core (engine, gate, watchdog rules) runs on capture/exchange time. This
module is its wall-clock edge, driven by one supervised task (:meth:`Controls.run`,
every ``TICK_S``) plus the signal handlers:

* Kill switch from SIGUSR1 (toggle), the admin endpoint (``mmbot ctl``) and a file
  flag (``risk.kill_switch_file``: present = engaged). Engaging halts the engine,
  cancels every order, then confirms zero open orders at the venue (logged with the
  time it took; re-sent if not confirmed within ``risk.kill_confirm_timeout_s``).
  Releasing clears KILL_SWITCH; quoting resumes if no other reason holds. While the
  file exists a release from elsewhere is refused, so "present = engaged" holds.
* LOOP_LAG: ``lag = actual - requested sleep`` of the supervision task, in ms.
* DEAD_MAN: the quoting loop beats on every event (and while it waits for the next
  one); when it has not beaten for ``risk.deadman_ms`` although the event loop itself
  kept running, every order is cancelled. Time the whole event loop was blocked is
  not held against the quoting loop (that is LOOP_LAG's case).

Both wall-clock watchdogs act only when ``risk.wall_clock_watchdogs`` is on ("auto":
on with live market data or a real venue, off for replays). In a replay the engine
runs on capture time, so a slow machine delays the replay but cannot make its data
stale; there they are measured and reported only, and replays stay deterministic.

* SIGHUP reload: the new file is validated like a start-up config (including the
  break-even check); if anything fails the reload is refused and the old config
  stays. Strategy and risk limits apply at once; sections that need a restart are
  named in the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from mmbot.app.settings import Settings, config_hash, load_settings
from mmbot.domain.risk import RiskReason
from mmbot.errors import ConfigError, MmbotError
from mmbot.risk.watchdog import SilenceWatchdog, ThresholdWatchdog

if TYPE_CHECKING:
    from mmbot.app.runner import Runner

log = structlog.get_logger("mmbot.controls")

TICK_S = 0.05
HOT_RELOAD_SECTIONS = ("strategy", "risk")
RESTART_SECTIONS = ("mode", "symbols", "instrument", "data", "fees", "sim", "exchange", "audit", "metrics", "admin", "run")


def wall_watchdogs_enabled(settings: Settings) -> bool:
    choice = settings.risk.wall_clock_watchdogs
    if choice == "auto":
        return settings.data.source == "live" or settings.mode != "paper"
    return choice == "on"


class Controls:
    def __init__(self, runner: Runner, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.runner = runner
        self.clock = clock
        risk = runner.settings.risk
        self.wall_enabled = wall_watchdogs_enabled(runner.settings)
        self.loop_lag = ThresholdWatchdog(RiskReason.LOOP_LAG, risk.loop_lag_ms, enabled=self.wall_enabled)
        self.deadman = SilenceWatchdog(RiskReason.DEAD_MAN, risk.deadman_ms, enabled=self.wall_enabled)
        self._stalled_ns = 0  # wall time the whole event loop was blocked since the last beat
        self._file_present = False
        self._file_checked_ns = 0
        self._confirm_since_ns: int | None = None
        self._confirm_source = ""
        self.last_confirm_ms: float | None = None
        self.kill_toggles = 0
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error = ""
        self.config_hash = config_hash(runner.settings)
        self._lag_warned_ns = 0
        self.admin_port: int | None = None  # set by the admin endpoint once bound

    # --- helpers ---------------------------------------------------------------------
    @property
    def _built(self) -> Any:
        return self.runner.state.built

    def open_orders(self) -> int:
        return len(self._built.venue.open_order_ids())

    def _act(self, commands: list[Any]) -> None:
        self._built.session.operator(commands)
        self.runner._drain()

    def beat(self) -> None:
        """The quoting loop is alive (called by the replay loop)."""
        self.deadman.beat(self.clock())
        self._stalled_ns = 0

    # --- kill switch -------------------------------------------------------------------
    @property
    def kill_file(self) -> Path | None:
        path = self.runner.settings.risk.kill_switch_file
        return Path(path) if path else None

    def set_kill_switch(self, engaged: bool, source: str) -> dict[str, Any]:
        """Engage (HALTED, cancel all; confirmation follows) or release; returns the new status."""
        engine = self._built.engine
        session = self._built.session
        now = session.now_ns
        if not engaged and source != "file" and self._file_present:
            log.error(
                "kill_switch_release_refused",
                source=source,
                kill_switch_file=str(self.kill_file),
                hint="remove the kill switch file to release",
            )
            return self.kill_status(refused="kill switch file exists")
        was = engine.gate.kill_switch_engaged
        self._act(engine.set_kill_switch(engaged, now))
        self.kill_toggles += 1
        open_orders = self.open_orders()
        engine.note("kill_switch", now, engaged=engaged, source=source, open_orders=open_orders, was_engaged=was)
        self.runner._drain()
        if engaged:
            self._confirm_since_ns = self.clock()
            self._confirm_source = source
            log.warning(
                "kill_switch_engaged",
                source=source,
                risk_state=engine.gate.state.name,
                risk_reasons=list(engine.gate.reasons),
                open_orders=open_orders,
                hint="send SIGUSR1 again (or mmbot ctl kill-switch off) to release",
            )
            self._check_confirm()
        else:
            self._confirm_since_ns = None
            log.warning(
                "kill_switch_released",
                source=source,
                risk_state=engine.gate.state.name,
                risk_reasons=list(engine.gate.reasons),
                quoting="resumes" if engine.gate.state.name == "ACTIVE" else "held by other reasons",
            )
        return self.kill_status()

    def toggle_kill_switch(self, source: str = "SIGUSR1") -> dict[str, Any]:
        return self.set_kill_switch(not self._built.engine.gate.kill_switch_engaged, source)

    def kill_status(self, refused: str = "") -> dict[str, Any]:
        gate = self._built.engine.gate
        status: dict[str, Any] = {
            "kill_switch_engaged": gate.kill_switch_engaged,
            "risk_state": gate.state.name,
            "risk_reasons": list(gate.reasons),
            "open_orders": self.open_orders(),
            "confirmed": gate.kill_switch_engaged and self._confirm_since_ns is None,
            "last_confirm_ms": self.last_confirm_ms,
            "kill_switch_file": str(self.kill_file) if self.kill_file else None,
        }
        if refused:
            status["refused"] = refused
        return status

    def _check_confirm(self) -> None:
        since = self._confirm_since_ns
        if since is None:
            return
        engine = self._built.engine
        open_orders = self.open_orders()
        elapsed_ms = (self.clock() - since) / 1e6
        if open_orders == 0:
            self._confirm_since_ns = None
            self.last_confirm_ms = elapsed_ms
            engine.note("kill_switch_confirmed", self._built.session.now_ns, open_orders=0, confirm_ms=round(elapsed_ms, 3))
            self.runner._drain()
            log.warning("kill_switch_confirmed", source=self._confirm_source, open_orders=0, confirm_ms=round(elapsed_ms, 3))
        elif elapsed_ms > self.runner.settings.risk.kill_confirm_timeout_s * 1000:
            log.error("kill_switch_unconfirmed", open_orders=open_orders, waited_ms=round(elapsed_ms), action="cancel-all sent again")
            self._confirm_since_ns = self.clock()
            self._act(engine.cancel_everything(self._built.session.now_ns, "kill_switch_retry"))

    async def wait_flat(self, timeout_s: float) -> bool:
        """Wait until the venue reports zero open orders (True) or the timeout passes (False)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.open_orders():
                    await asyncio.sleep(0.005)
        except TimeoutError:
            return False
        self._check_confirm()
        return True

    def poll_kill_file(self) -> None:
        path = self.kill_file
        if path is None:
            return
        present = path.exists()
        if present == self._file_present:
            return
        self._file_present = present
        engaged = self._built.engine.gate.kill_switch_engaged
        if present and not engaged:
            self.set_kill_switch(True, "file")
        elif not present and engaged:
            self.set_kill_switch(False, "file")

    # --- wall-clock watchdogs ------------------------------------------------------------
    def on_tick(self, lag_ms: float) -> None:
        """One supervision step: loop lag, dead-man, file flag, pending confirmation."""
        now = self.clock()
        engine = self._built.engine
        session = self._built.session
        self.loop_lag.observe(lag_ms)
        # While the whole event loop was blocked the quoting loop could not beat either:
        # that time is LOOP_LAG's business, not the dead-man's.
        self._stalled_ns += int(lag_ms * 1e6)
        if lag_ms > self.loop_lag.limit:
            if not self.wall_enabled and now - self._lag_warned_ns > 10_000_000_000:
                self._lag_warned_ns = now
                log.warning("loop_lag_high", lag_ms=round(lag_ms, 1), limit_ms=self.loop_lag.limit, acting=False)
        if self.wall_enabled:
            tripped = self.loop_lag.is_tripped()
            if tripped and not engine.gate.has(RiskReason.LOOP_LAG):
                self.loop_lag.trips += 1
                log.error("loop_lag_tripped", lag_ms=round(lag_ms, 1), limit_ms=self.loop_lag.limit)
            cause = f"event loop lag {lag_ms:.0f} ms > {self.loop_lag.limit:.0f} ms" if tripped else ""
            self._act(engine.watchdog(RiskReason.LOOP_LAG, tripped, session.now_ns, cause))
            dead = self.deadman.is_tripped(now - self._stalled_ns)
            if dead and not engine.gate.has(RiskReason.DEAD_MAN):
                self.deadman.trips += 1
                log.error("dead_man_tripped", silent_ms=self.deadman.age_ms(now), action="cancel all orders")
            cause = f"quoting loop silent {self.deadman.age_ms(now) or 0:.0f} ms" if dead else ""
            self._act(engine.watchdog(RiskReason.DEAD_MAN, dead, session.now_ns, cause))
        else:
            # Switched off by a reload: let reasons they raised clear through the calm period.
            for reason in (RiskReason.LOOP_LAG, RiskReason.DEAD_MAN):
                if engine.gate.has(reason):
                    self._act(engine.watchdog(reason, False, session.now_ns))
        if now - self._file_checked_ns >= self.runner.settings.risk.kill_switch_poll_ms * 1e6:
            self._file_checked_ns = now
            self.poll_kill_file()
        self._check_confirm()

    async def run(self, state: Any) -> None:
        """Supervision task: exits when the run is done or stopping."""
        loop = asyncio.get_running_loop()
        self.beat()
        self.poll_kill_file()
        while not state.done and not state.stop.is_set():
            before = loop.time()
            await asyncio.sleep(TICK_S)
            lag_ms = max(0.0, (loop.time() - before - TICK_S) * 1000.0)
            if state.done:
                break
            self.on_tick(lag_ms)

    # --- reload -------------------------------------------------------------------------
    def reload(self) -> bool:
        """SIGHUP: validate the config file again; apply it or keep the old one. True if applied."""
        runner = self.runner
        old = runner.settings
        from mmbot.app.wiring import build_model, build_risk_config
        from mmbot.strategy.breakeven import check_breakeven_settings

        built = self._built
        try:
            new = load_settings(runner.options.config_path)
            problem = check_breakeven_settings(new)
            if problem and not new.strategy.allow_below_breakeven:
                raise ConfigError(problem + "; set strategy.allow_below_breakeven: true to allow it")
            model = build_model(new, built.instrument)
            risk_config = build_risk_config(new, built.instrument)
        except (MmbotError, ValueError) as exc:
            self.reload_failures += 1
            self.last_reload_error = str(exc)
            log.error("config_reload_refused", error=str(exc), kept_config_hash=self.config_hash,
                      config_path=runner.options.config_path)
            built.engine.note("config_reload", built.session.now_ns, applied=False, error=str(exc))
            runner._drain()
            return False
        engine = built.engine
        engine.model = model
        engine.gate.config = risk_config
        engine.config = replace(
            engine.config,
            min_requote_interval_ms=new.strategy.min_requote_interval_ms,
            update_every_n=new.strategy.update_freq,
            stale_book_ms=new.risk.stale_book_ms,
            feed_silent_ms=new.risk.feed_silent_ms,
            requote_tolerance_ticks=new.strategy.requote_tolerance_ticks,
        )
        engine.om.requote_tolerance_ticks = new.strategy.requote_tolerance_ticks
        engine.book_watchdog.limit_ms = new.risk.stale_book_ms
        engine.feed_watchdog.limit_ms = new.risk.feed_silent_ms
        self.loop_lag.limit = new.risk.loop_lag_ms
        self.deadman.limit_ms = new.risk.deadman_ms
        self.wall_enabled = self.loop_lag.enabled = self.deadman.enabled = wall_watchdogs_enabled(new)
        needs_restart = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(old, s)]
        old_hash = self.config_hash
        runner.settings = new
        runner.state.settings = new
        self.config_hash = config_hash(new)
        self.reloads += 1
        self.last_reload_error = ""
        engine.note("config_reload", built.session.now_ns, applied=True, config_hash=self.config_hash, needs_restart=needs_restart)
        runner._drain()
        log.info("config_reloaded", config_path=runner.options.config_path, old_config_hash=old_hash,
                 config_hash=self.config_hash, applied=list(HOT_RELOAD_SECTIONS), needs_restart=needs_restart)
        return True

    # --- status --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Everything an operator asks about the risk side (admin endpoint, `mmbot ctl`)."""
        runner = self.runner
        built = self._built
        engine = built.engine
        gate = engine.gate
        inst = built.instrument
        settings = runner.settings
        now_cap = built.session.now_ns
        now = self.clock()
        mid = engine.mid_ticks
        return {
            "run_id": runner.run_id,
            "symbol": inst.symbol,
            "mode": settings.mode,
            "config_path": runner.options.config_path,
            "config_hash": self.config_hash,
            "admin_port": self.admin_port,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "last_reload_error": self.last_reload_error,
            "risk_state": gate.state.name,
            "risk_reasons": list(gate.reasons),
            "risk_reason_info": gate.reason_info(),
            "kill_switch_engaged": gate.kill_switch_engaged,
            "kill_switch_file": str(self.kill_file) if self.kill_file else None,
            "kill_switch_toggles": self.kill_toggles,
            "last_kill_confirm_ms": self.last_confirm_ms,
            "open_orders": self.open_orders(),
            "engine_open_orders": engine.om.open_count(),
            "orders_placed": engine.om.placed,
            "orders_cancelled": engine.om.cancelled,
            "fills": engine.ledger.fills,
            "events": engine.events_count,
            "book_updates": engine.book_updates,
            "position": str(inst.qty(engine.ledger.position_lots)),
            "net_pnl": f"{engine.net_pnl():.8f}",
            "mid": None if mid is None else str(inst.price(round(mid))),
            "quoted_bid": None if engine.quoted_bid is None else str(inst.price(engine.quoted_bid)),
            "quoted_ask": None if engine.quoted_ask is None else str(inst.price(engine.quoted_ask)),
            "risk_denials_by_reason": dict(sorted(gate.denials.items())),
            "risk_transitions_total": gate.transitions_total,
            "risk_transitions": [t.as_dict() for t in list(gate.transitions)[-20:]],
            "capture_time_ns": now_cap,
            "watchdogs": {
                "wall_clock_watchdogs": "on" if self.wall_enabled else "off",
                "stale_book_age_ms": engine.book_watchdog.age_ms(now_cap),
                "feed_age_ms": engine.feed_watchdog.age_ms(now_cap),
                "loop_lag_ms": round(self.loop_lag.last_value, 3),
                "loop_lag_worst_ms": round(self.loop_lag.worst_value, 3),
                "quoting_loop_age_ms": self.deadman.age_ms(now),
            },
            "params": {
                "spread_bps": settings.strategy.spread_bps,
                "order_size": settings.strategy.order_size,
                "max_inventory": str(inst.qty(gate.config.max_inventory_lots)),
                "max_order_notional": str(gate.config.max_order_notional),
                "max_open_orders": gate.config.max_open_orders,
                "price_band_bps": gate.config.price_band_bps,
                "max_orders_per_second": gate.config.max_orders_per_second,
                "max_orders_per_minute": gate.config.max_orders_per_minute,
                "stale_book_ms": engine.config.stale_book_ms,
                "calm_period_ms": gate.config.calm_period_ms,
            },
            "done": runner.state.done,
            "stop_reason": runner.state.stop_reason,
        }

    def clear_reason(self, reason: RiskReason, source: str) -> dict[str, Any]:
        engine = self._built.engine
        had = engine.gate.has(reason)
        if reason is RiskReason.KILL_SWITCH:
            return self.set_kill_switch(False, source) | {"cleared": had}
        engine.clear_reason(reason, self._built.session.now_ns, f"operator({source})")
        self.runner._drain()
        log.warning("risk_reason_cleared", reason=reason.value, source=source, was_active=had,
                    risk_state=engine.gate.state.name, risk_reasons=list(engine.gate.reasons))
        return {"cleared": had, "reason": reason.value, "risk_state": engine.gate.state.name,
                "risk_reasons": list(engine.gate.reasons)}
