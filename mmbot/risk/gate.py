"""RiskGate: trading state machine and pre-trade checks (pure: time is a parameter).

State = the worst state implied by any active reason (ACTIVE < REDUCING < HALTED).
Transient reasons clear themselves once the condition has been gone for
``calm_period_ms``; sticky reasons (KILL_SWITCH, MAX_DRAWDOWN, DAILY_LOSS,
JOURNAL_FAILURE, MANUAL) stay until an operator clears them.

Pre-trade checks on every place (cancels always pass):

* HALTED denies everything; REDUCING allows only inventory-reducing orders.
* Position limit counting resting orders:
  ``|position + same-side resting + new| <= max_inventory`` (in lots), so the
  position can never exceed the limit whatever fills.
* Max notional per order, max open orders, price band (no order further than
  ``price_band_bps`` from mid), post-only never at or through the opposite touch,
  venue filters (tick, step, min notional), self-trade prevention (never a buy at
  or above our own resting sell, and mirror), order-rate budget per second/minute.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import PlaceOrder, Side
from mmbot.domain.risk import STICKY_REASONS, RiskReason, TradingState, reason_state


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    max_inventory_lots: int
    max_order_notional: Decimal = Decimal("1000000")
    max_open_orders: int = 20
    price_band_bps: float = 100.0
    max_orders_per_second: int = 10
    max_orders_per_minute: int = 600
    max_drawdown: Decimal = Decimal("1000000000")  # quote currency, from peak net PnL
    daily_loss_limit: Decimal = Decimal("1000000000")  # quote currency
    calm_period_ms: int = 1000
    reject_storm_count: int = 20  # rejects within reject_storm_window_ms
    reject_storm_window_ms: int = 10_000
    global_max_inventory_notional: Decimal | None = None

    def __post_init__(self) -> None:
        if self.max_inventory_lots <= 0:
            raise ValueError(f"max_inventory_lots must be > 0, was {self.max_inventory_lots}")


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Deny:
    reason: str  # a RiskReason value or a check name such as "PRICE_BAND"
    detail: str = ""


ALLOW = Allow()


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskTransition:
    """A state change, emitted for the journal, metrics and logs."""

    ts_ns: int
    old_state: TradingState
    new_state: TradingState
    reasons: tuple[str, ...]
    cause: str


@dataclass
class _ReasonInfo:
    since_ns: int
    condition_gone_ns: int | None = None


@dataclass
class RiskGate:
    config: RiskConfig
    instrument: Instrument
    _reasons: dict[RiskReason, _ReasonInfo] = field(default_factory=dict)
    state: TradingState = TradingState.ACTIVE
    denials: dict[str, int] = field(default_factory=dict)
    transitions: list[RiskTransition] = field(default_factory=list)
    _order_times: deque[int] = field(default_factory=deque)
    _reject_times: deque[int] = field(default_factory=deque)
    peak_net_pnl: Decimal = Decimal(0)
    day_start_pnl: Decimal = Decimal(0)
    _day: int = -1

    # --- reasons ---------------------------------------------------------------------
    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(sorted(r.value for r in self._reasons))

    def has(self, reason: RiskReason) -> bool:
        return reason in self._reasons

    @property
    def kill_switch_engaged(self) -> bool:
        return RiskReason.KILL_SWITCH in self._reasons

    def raise_reason(self, reason: RiskReason, now_ns: int, cause: str = "") -> RiskTransition | None:
        info = self._reasons.get(reason)
        if info is None:
            self._reasons[reason] = _ReasonInfo(since_ns=now_ns)
        else:
            info.condition_gone_ns = None
        return self._recompute(now_ns, cause or f"raise:{reason.value}")

    def condition_cleared(self, reason: RiskReason, now_ns: int) -> RiskTransition | None:
        """The condition behind a transient reason is gone; it clears after the calm period."""
        info = self._reasons.get(reason)
        if info is None or reason in STICKY_REASONS:
            return None
        if info.condition_gone_ns is None:
            info.condition_gone_ns = now_ns
        return self.tick(now_ns)

    def clear(self, reason: RiskReason, now_ns: int, cause: str = "operator") -> RiskTransition | None:
        """Operator clear (sticky reasons) or immediate clear."""
        if reason not in self._reasons:
            return None
        del self._reasons[reason]
        if reason is RiskReason.MAX_DRAWDOWN:
            self.peak_net_pnl = Decimal("-Infinity")
        return self._recompute(now_ns, f"{cause}:clear:{reason.value}")

    def tick(self, now_ns: int) -> RiskTransition | None:
        calm = self.config.calm_period_ms * 1_000_000
        expired = [
            r
            for r, info in self._reasons.items()
            if info.condition_gone_ns is not None and now_ns - info.condition_gone_ns >= calm
        ]
        for r in expired:
            del self._reasons[r]
        if expired:
            return self._recompute(now_ns, "calm:" + ",".join(r.value for r in expired))
        return None

    def _recompute(self, now_ns: int, cause: str) -> RiskTransition | None:
        new = max((reason_state(r) for r in self._reasons), default=TradingState.ACTIVE)
        if new is self.state:
            return None
        transition = RiskTransition(ts_ns=now_ns, old_state=self.state, new_state=new, reasons=self.reasons, cause=cause)
        self.state = new
        self.transitions.append(transition)
        return transition

    # --- PnL limits --------------------------------------------------------------------
    def on_pnl(self, net_pnl: Decimal, now_ns: int) -> RiskTransition | None:
        day = now_ns // 86_400_000_000_000
        if day != self._day:
            self._day = day
            self.day_start_pnl = net_pnl
        if self.peak_net_pnl == Decimal("-Infinity") or net_pnl > self.peak_net_pnl:
            self.peak_net_pnl = net_pnl
        result = None
        if self.peak_net_pnl - net_pnl > self.config.max_drawdown and not self.has(RiskReason.MAX_DRAWDOWN):
            result = self.raise_reason(RiskReason.MAX_DRAWDOWN, now_ns, f"drawdown {self.peak_net_pnl - net_pnl}")
        if self.day_start_pnl - net_pnl > self.config.daily_loss_limit and not self.has(RiskReason.DAILY_LOSS):
            result = self.raise_reason(RiskReason.DAILY_LOSS, now_ns, f"daily loss {self.day_start_pnl - net_pnl}") or result
        return result

    def on_reject(self, now_ns: int) -> RiskTransition | None:
        window = self.config.reject_storm_window_ms * 1_000_000
        times = self._reject_times
        times.append(now_ns)
        while times and now_ns - times[0] > window:
            times.popleft()
        if len(times) >= self.config.reject_storm_count:
            return self.raise_reason(RiskReason.REJECT_STORM, now_ns, f"{len(times)} rejects")
        return None

    # --- pre-trade check -------------------------------------------------------------------
    def _deny(self, reason: str, detail: str) -> Deny:
        self.denials[reason] = self.denials.get(reason, 0) + 1
        return Deny(reason, detail)

    def check_place(
        self,
        order: PlaceOrder,
        *,
        now_ns: int,
        position_lots: int,
        resting_same_side_lots: int,
        open_orders: int,
        mid_ticks: float | None,
        best_bid: int | None,
        best_ask: int | None,
        own_best_opposite: int | None,
    ) -> Allow | Deny:
        cfg = self.config
        inst = self.instrument
        is_buy = order.side is Side.BUY
        reduces = (position_lots > 0 and not is_buy) or (position_lots < 0 and is_buy)
        if self.state is TradingState.HALTED:
            return self._deny("HALTED", ",".join(self.reasons))
        if self.state is TradingState.REDUCING:
            # Only orders that bring the position toward zero, counting resting ones.
            if not reduces or resting_same_side_lots + order.qty_lots > abs(position_lots):
                return self._deny("REDUCING", ",".join(self.reasons))
        signed_after = position_lots + (resting_same_side_lots + order.qty_lots) * (1 if is_buy else -1)
        if abs(signed_after) > cfg.max_inventory_lots and not (reduces and abs(signed_after) <= abs(position_lots)):
            return self._deny(
                RiskReason.MAX_POSITION.value,
                f"position {position_lots} + resting {resting_same_side_lots} + order {order.qty_lots} lots "
                f"exceeds max_inventory {cfg.max_inventory_lots}",
            )
        if order.qty_lots <= 0 or order.qty_lots % inst.step_lots:
            return self._deny("STEP_SIZE", f"qty {order.qty_lots} lots not a multiple of {inst.step_lots}")
        notional = inst.notional(order.price_ticks, order.qty_lots)
        if notional < inst.min_notional:
            return self._deny("MIN_NOTIONAL", f"notional {notional} < {inst.min_notional}")
        if notional > cfg.max_order_notional:
            return self._deny("MAX_NOTIONAL", f"notional {notional} > {cfg.max_order_notional}")
        if open_orders + 1 > cfg.max_open_orders:
            return self._deny("MAX_OPEN_ORDERS", f"{open_orders} open orders")
        if mid_ticks is not None and not order.is_taker:
            band = mid_ticks * cfg.price_band_bps / 10_000
            if abs(order.price_ticks - mid_ticks) > band:
                return self._deny("PRICE_BAND", f"price {order.price_ticks} more than {cfg.price_band_bps} bps from mid")
        if order.post_only:
            if is_buy and best_ask is not None and order.price_ticks >= best_ask:
                return self._deny("POST_ONLY_CROSS", f"bid {order.price_ticks} >= best ask {best_ask}")
            if not is_buy and best_bid is not None and order.price_ticks <= best_bid:
                return self._deny("POST_ONLY_CROSS", f"ask {order.price_ticks} <= best bid {best_bid}")
        if own_best_opposite is not None:
            if (is_buy and order.price_ticks >= own_best_opposite) or (not is_buy and order.price_ticks <= own_best_opposite):
                return self._deny("SELF_TRADE", f"price {order.price_ticks} crosses our own order at {own_best_opposite}")
        times = self._order_times
        while times and now_ns - times[0] > 60_000_000_000:
            times.popleft()
        per_second = sum(1 for t in times if now_ns - t <= 1_000_000_000)
        if per_second >= cfg.max_orders_per_second or len(times) >= cfg.max_orders_per_minute:
            return self._deny(RiskReason.ORDER_RATE.value, f"{per_second}/s, {len(times)}/min")
        times.append(now_ns)
        return ALLOW
