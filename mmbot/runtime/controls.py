"""Operator controls and wall-clock watchdogs of the replay, live and sandbox runners.

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

Controls acts on a :class:`ControlTarget`: the engines to act on, the current time,
how commands reach the venue, the open-order count and the observers' drain.
:class:`mmbot.runtime.node.NodeTarget` adapts the node of every mode: on the simulated
venue commands act at once (capture time in a replay); on an exchange they are queued
and sent by the node's async drain, which :meth:`Controls.run` awaits after every tick.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from mmbot.config.settings import Settings, config_hash, load_settings
from mmbot.domain.instrument import plain, price_text
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.errors import ConfigError, MmbotError
from mmbot.risk.watchdog import SilenceWatchdog, ThresholdWatchdog
from mmbot.strategy.breakeven import check_breakeven_settings

if TYPE_CHECKING:
    from mmbot.domain.instrument import Instrument
    from mmbot.domain.orders import Command
    from mmbot.engine.engine import Engine
    from mmbot.risk.gate import RiskConfig
    from mmbot.strategy.model import QuoteModel

log = structlog.get_logger("mmbot.controls")

TICK_S = 0.05
HOT_RELOAD_SECTIONS = ("strategy", "risk")
RESTART_SECTIONS = ("mode", "symbols", "instrument", "data", "fees", "sim", "exchange", "audit", "metrics", "admin", "run")


def wall_watchdogs_enabled(settings: Settings) -> bool:
    choice = settings.risk.wall_clock_watchdogs
    if choice == "auto":
        return settings.data.source == "live" or settings.mode != "paper"
    return choice == "on"


class ControlTarget(ABC):
    """What Controls needs from a runner (see ReplayTarget and LiveTarget)."""

    run_id: str

    @property
    @abstractmethod
    def settings(self) -> Settings: ...

    @property
    @abstractmethod
    def config_path(self) -> str | None: ...

    @abstractmethod
    def engines(self) -> list[Engine]:
        """The engines to act on (one per symbol); empty before the run has started."""

    @abstractmethod
    def now_ns(self) -> int:
        """The engines' clock (capture time in a replay, wall clock live)."""

    @abstractmethod
    def act(self, engine: Engine, commands: list[Command]) -> None:
        """Send an engine's commands (synchronously or queued for :meth:`flush`)."""

    @abstractmethod
    def open_orders(self) -> int:
        """Our open orders (without a network call)."""

    @abstractmethod
    def drain(self) -> None:
        """Hand the engines' new events to the observers (journal, metrics)."""

    async def flush(self) -> None:
        """Send commands queued by :meth:`act` (no-op where act sends at once)."""
        return None

    def merge_settings(self, loaded: Settings) -> Settings:
        """The settings a reload would run on, from the file as loaded."""
        return loaded

    def needs_restart(self, loaded: Settings) -> list[str]:
        """Sections of the reloaded file that differ from the running ones but apply only at a restart."""
        old = self.settings
        return [s for s in RESTART_SECTIONS if getattr(loaded, s) != getattr(old, s)]

    @abstractmethod
    def apply_settings(self, new: Settings) -> None: ...

    @abstractmethod
    def rebuild(self, new: Settings, instrument: Instrument) -> tuple[QuoteModel, RiskConfig]:
        """The model and risk limits of ``instrument`` under ``new`` (ConfigError if they cannot be built)."""

    @property
    @abstractmethod
    def done(self) -> bool: ...

    @property
    @abstractmethod
    def stopping(self) -> bool: ...

    @property
    @abstractmethod
    def stop_reason(self) -> str: ...


class Controls:
    def __init__(self, target: ControlTarget, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.target = target
        self.clock = clock
        settings = self.target.settings
        risk = settings.risk
        self.wall_enabled = wall_watchdogs_enabled(settings)
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
        self.config_hash = config_hash(settings)
        self._lag_warned_ns = 0
        self.admin_port: int | None = None  # set by the admin endpoint once bound

    # --- helpers ---------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.target.settings

    def open_orders(self) -> int:
        return self.target.open_orders()

    def _note(self, kind: str, now: int, **payload: Any) -> None:
        for engine in self.target.engines():
            engine.note(kind, now, **payload)
        self.target.drain()

    def _state(self) -> tuple[str, list[str]]:
        """Worst risk state over the engines and the union of their reasons."""
        engines = self.target.engines()
        state = max((e.gate.state for e in engines), default=TradingState.ACTIVE)
        reasons: list[str] = []
        for e in engines:
            reasons.extend(r for r in e.gate.reasons if r not in reasons)
        return state.name, reasons

    def kill_engaged(self) -> bool:
        return any(e.gate.kill_switch_engaged for e in self.target.engines())

    def beat(self) -> None:
        """The quoting loop is alive (called by the replay loop; live: every market event and timer pass)."""
        self.deadman.beat(self.clock())
        self._stalled_ns = 0

    # --- kill switch -------------------------------------------------------------------
    @property
    def kill_file(self) -> Path | None:
        path = self.settings.risk.kill_switch_file
        return Path(path) if path else None

    def set_kill_switch(self, engaged: bool, source: str) -> dict[str, Any]:
        """Engage (HALTED, cancel all; confirmation follows) or release; returns the new status."""
        engines = self.target.engines()
        now = self.target.now_ns()
        if not engines:
            log.error("kill_switch_not_ready", source=source, engaged=engaged, hint="the run has not started trading yet")
            return self.kill_status(refused="not started")
        if not engaged and source != "file" and self._file_present:
            log.error(
                "kill_switch_release_refused",
                source=source,
                kill_switch_file=str(self.kill_file),
                hint="remove the kill switch file to release",
            )
            return self.kill_status(refused="kill switch file exists")
        was = self.kill_engaged()
        for engine in engines:
            self.target.act(engine, engine.set_kill_switch(engaged, now))
        self.kill_toggles += 1
        open_orders = self.open_orders()
        self._note("kill_switch", now, engaged=engaged, source=source, open_orders=open_orders, was_engaged=was)
        state, reasons = self._state()
        if engaged:
            self._confirm_since_ns = self.clock()
            self._confirm_source = source
            log.warning(
                "kill_switch_engaged",
                source=source,
                risk_state=state,
                risk_reasons=reasons,
                open_orders=open_orders,
                hint="send SIGUSR1 again (or mmbot ctl kill-switch off) to release",
            )
            self._check_confirm()
        else:
            self._confirm_since_ns = None
            log.warning(
                "kill_switch_released",
                source=source,
                risk_state=state,
                risk_reasons=reasons,
                quoting="resumes" if state == "ACTIVE" else "held by other reasons",
            )
        return self.kill_status()

    def toggle_kill_switch(self, source: str = "SIGUSR1") -> dict[str, Any]:
        return self.set_kill_switch(not self.kill_engaged(), source)

    def kill_status(self, refused: str = "") -> dict[str, Any]:
        engaged = self.kill_engaged()
        state, reasons = self._state()
        status: dict[str, Any] = {
            "kill_switch_engaged": engaged,
            "risk_state": state,
            "risk_reasons": reasons,
            "open_orders": self.open_orders(),
            "confirmed": engaged and self._confirm_since_ns is None,
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
        open_orders = self.open_orders()
        elapsed_ms = (self.clock() - since) / 1e6
        if open_orders == 0:
            self._confirm_since_ns = None
            self.last_confirm_ms = elapsed_ms
            self._note("kill_switch_confirmed", self.target.now_ns(), open_orders=0, confirm_ms=round(elapsed_ms, 3))
            log.warning("kill_switch_confirmed", source=self._confirm_source, open_orders=0, confirm_ms=round(elapsed_ms, 3))
        elif elapsed_ms > self.settings.risk.kill_confirm_timeout_s * 1000:
            log.error("kill_switch_unconfirmed", open_orders=open_orders, waited_ms=round(elapsed_ms), action="cancel-all sent again")
            self._confirm_since_ns = self.clock()
            now = self.target.now_ns()
            for engine in self.target.engines():
                self.target.act(engine, engine.cancel_everything(now, "kill_switch_retry"))

    async def wait_flat(self, timeout_s: float) -> bool:
        """Wait until the venue reports zero open orders (True) or the timeout passes (False)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.target.flush()
                while self.open_orders():
                    await asyncio.sleep(0.005)
        except TimeoutError:
            return False
        self._check_confirm()
        return True

    def poll_kill_file(self) -> None:
        path = self.kill_file
        if path is None or not self.target.engines():
            return
        present = path.exists()
        if present == self._file_present:
            return
        self._file_present = present
        engaged = self.kill_engaged()
        if present and not engaged:
            self.set_kill_switch(True, "file")
        elif not present and engaged:
            self.set_kill_switch(False, "file")

    # --- wall-clock watchdogs ------------------------------------------------------------
    def on_tick(self, lag_ms: float) -> None:
        """One supervision step: loop lag, dead-man, file flag, pending confirmation."""
        now = self.clock()
        engines = self.target.engines()
        now_ns = self.target.now_ns()
        self.loop_lag.observe(lag_ms)
        # While the whole event loop was blocked the quoting loop could not beat either:
        # that time is LOOP_LAG's business, not the dead-man's.
        self._stalled_ns += int(lag_ms * 1e6)
        if lag_ms > self.loop_lag.limit:
            if not self.wall_enabled and now - self._lag_warned_ns > 10_000_000_000:
                self._lag_warned_ns = now
                log.warning("loop_lag_high", lag_ms=round(lag_ms, 1), limit_ms=self.loop_lag.limit, acting=False)
        if self.wall_enabled and engines:
            tripped = self.loop_lag.is_tripped()
            if tripped and not any(e.gate.has(RiskReason.LOOP_LAG) for e in engines):
                self.loop_lag.trips += 1
                log.error("loop_lag_tripped", lag_ms=round(lag_ms, 1), limit_ms=self.loop_lag.limit)
            cause = f"event loop lag {lag_ms:.0f} ms > {self.loop_lag.limit:.0f} ms" if tripped else ""
            for engine in engines:
                self.target.act(engine, engine.watchdog(RiskReason.LOOP_LAG, tripped, now_ns, cause))
            dead = self.deadman.is_tripped(now - self._stalled_ns)
            if dead and not any(e.gate.has(RiskReason.DEAD_MAN) for e in engines):
                self.deadman.trips += 1
                log.error("dead_man_tripped", silent_ms=self.deadman.age_ms(now), action="cancel all orders")
            cause = f"quoting loop silent {self.deadman.age_ms(now) or 0:.0f} ms" if dead else ""
            for engine in engines:
                self.target.act(engine, engine.watchdog(RiskReason.DEAD_MAN, dead, now_ns, cause))
        else:
            # Switched off by a reload: let reasons they raised clear through the calm period.
            for engine in engines:
                for reason in (RiskReason.LOOP_LAG, RiskReason.DEAD_MAN):
                    if engine.gate.has(reason):
                        self.target.act(engine, engine.watchdog(reason, False, now_ns))
        if now - self._file_checked_ns >= self.settings.risk.kill_switch_poll_ms * 1e6:
            self._file_checked_ns = now
            self.poll_kill_file()
        self._check_confirm()

    async def run(self, state: Any = None) -> None:
        """Supervision task: exits when the run is done or stopping (``state``: unused, the target knows)."""
        loop = asyncio.get_running_loop()
        target = self.target
        self.beat()
        self.poll_kill_file()
        await target.flush()
        while not target.done and not target.stopping:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            lag_ms = max(0.0, (loop.time() - before - TICK_S) * 1000.0)
            if target.done:
                break
            self.on_tick(lag_ms)
            await target.flush()

    # --- reload -------------------------------------------------------------------------
    def reload(self) -> bool:
        """SIGHUP: validate the config file again; apply it or keep the old one. True if applied.

        Applies to every engine (one per symbol in a live run); nothing changes unless
        every engine's model and limits could be built from the new file.
        """
        target = self.target
        config_path = target.config_path
        engines = target.engines()
        try:
            loaded = load_settings(config_path)
            new = target.merge_settings(loaded)
            problem = check_breakeven_settings(new)
            if problem and not new.strategy.allow_below_breakeven:
                raise ConfigError(problem + "; set strategy.allow_below_breakeven: true to allow it")
            built = [(e, *target.rebuild(new, e.instrument)) for e in engines]
        except (MmbotError, ValueError) as exc:
            self.reload_failures += 1
            self.last_reload_error = str(exc)
            log.error("config_reload_refused", error=str(exc), kept_config_hash=self.config_hash,
                      config_path=config_path)
            self._note("config_reload", target.now_ns(), applied=False, error=str(exc))
            return False
        for engine, model, risk_config in built:
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
        needs_restart = target.needs_restart(loaded)
        old_hash = self.config_hash
        target.apply_settings(new)
        self.config_hash = config_hash(new)
        self.reloads += 1
        self.last_reload_error = ""
        self._note("config_reload", target.now_ns(), applied=True, config_hash=self.config_hash, needs_restart=needs_restart)
        log.info("config_reloaded", config_path=config_path, old_config_hash=old_hash,
                 config_hash=self.config_hash, applied=list(HOT_RELOAD_SECTIONS), needs_restart=needs_restart,
                 engines=len(built))
        return True

    # --- status --------------------------------------------------------------------------
    def _engine_status(self, engine: Engine) -> dict[str, Any]:
        gate = engine.gate
        inst = engine.instrument
        settings = self.settings
        now_cap = self.target.now_ns()
        mid = engine.mid_ticks
        return {
            "symbol": inst.symbol,
            "risk_state": gate.state.name,
            "risk_reasons": list(gate.reasons),
            "risk_reason_info": gate.reason_info(),
            "kill_switch_engaged": gate.kill_switch_engaged,
            "engine_open_orders": engine.om.open_count(),
            "orders_placed": engine.om.placed,
            "orders_cancelled": engine.om.cancelled,
            "fills": engine.ledger.fills,
            "events": engine.events_count,
            "book_updates": engine.book_updates,
            "position": plain(inst.qty(engine.ledger.position_lots)),
            "net_pnl": f"{engine.net_pnl():.8f}",
            "mid": None if mid is None else price_text(inst, mid),
            "quoted_bid": None if engine.quoted_bid is None else price_text(inst, engine.quoted_bid),
            "quoted_ask": None if engine.quoted_ask is None else price_text(inst, engine.quoted_ask),
            "risk_denials_by_reason": dict(sorted(gate.denials.items())),
            "risk_transitions_total": gate.transitions_total,
            "risk_transitions": [t.as_dict() for t in list(gate.transitions)[-20:]],
            "stale_book_age_ms": engine.book_watchdog.age_ms(now_cap),
            "feed_age_ms": engine.feed_watchdog.age_ms(now_cap),
            "params": {
                "spread_bps": settings.strategy.spread_bps,
                "order_size": settings.strategy.order_size,
                "max_inventory": plain(inst.qty(gate.config.max_inventory_lots)),
                "max_order_notional": str(gate.config.max_order_notional),
                "max_open_orders": gate.config.max_open_orders,
                "price_band_bps": gate.config.price_band_bps,
                "max_orders_per_second": gate.config.max_orders_per_second,
                "max_orders_per_minute": gate.config.max_orders_per_minute,
                "stale_book_ms": engine.config.stale_book_ms,
                "calm_period_ms": gate.config.calm_period_ms,
            },
        }

    def status(self) -> dict[str, Any]:
        """Everything an operator asks about the risk side (admin endpoint, `mmbot ctl`).

        Per-engine fields are the first engine's; with several symbols the counts are
        summed, the state is the worst and the reasons the union, and ``symbols`` holds
        each engine's own fields.
        """
        target = self.target
        settings = self.settings
        now = self.clock()
        per = [self._engine_status(e) for e in target.engines()]
        first: dict[str, Any] = per[0] if per else {"symbol": None, "params": {}}
        state, reasons = self._state()
        status: dict[str, Any] = {
            "run_id": target.run_id,
            "symbol": first["symbol"],
            "mode": settings.mode,
            "config_path": target.config_path,
            "config_hash": self.config_hash,
            "admin_port": self.admin_port,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "last_reload_error": self.last_reload_error,
            "risk_state": state,
            "risk_reasons": reasons,
            "risk_reason_info": first.get("risk_reason_info", {}),
            "kill_switch_engaged": self.kill_engaged(),
            "kill_switch_file": str(self.kill_file) if self.kill_file else None,
            "kill_switch_toggles": self.kill_toggles,
            "last_kill_confirm_ms": self.last_confirm_ms,
            "open_orders": self.open_orders(),
        }
        for key in ("engine_open_orders", "orders_placed", "orders_cancelled", "fills", "events", "book_updates"):
            status[key] = sum(p[key] for p in per)
        for key in ("position", "net_pnl", "mid", "quoted_bid", "quoted_ask", "risk_denials_by_reason",
                    "risk_transitions_total", "risk_transitions"):
            status[key] = first.get(key)
        status["capture_time_ns"] = target.now_ns()
        status["watchdogs"] = {
            "wall_clock_watchdogs": "on" if self.wall_enabled else "off",
            "stale_book_age_ms": first.get("stale_book_age_ms"),
            "feed_age_ms": first.get("feed_age_ms"),
            "loop_lag_ms": round(self.loop_lag.last_value, 3),
            "loop_lag_worst_ms": round(self.loop_lag.worst_value, 3),
            "quoting_loop_age_ms": self.deadman.age_ms(now),
        }
        status["params"] = first["params"]
        status["done"] = target.done
        status["stop_reason"] = target.stop_reason
        if len(per) > 1:
            status["symbols"] = {p["symbol"]: p for p in per}
        return status

    def clear_reason(self, reason: RiskReason, source: str) -> dict[str, Any]:
        engines = self.target.engines()
        had = any(e.gate.has(reason) for e in engines)
        if reason is RiskReason.KILL_SWITCH:
            return self.set_kill_switch(False, source) | {"cleared": had}
        now = self.target.now_ns()
        for engine in engines:
            engine.clear_reason(reason, now, f"operator({source})")
        self.target.drain()
        state, reasons = self._state()
        log.warning("risk_reason_cleared", reason=reason.value, source=source, was_active=had,
                    risk_state=state, risk_reasons=reasons)
        return {"cleared": had, "reason": reason.value, "risk_state": state, "risk_reasons": reasons}
