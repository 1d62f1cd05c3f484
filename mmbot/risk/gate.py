"""RiskGate: trading state machine and pre-trade checks (pure: time is a parameter).

Every order action passes here: ``check_place`` for a new order (a replace is a
cancel plus a new order); cancels and cancel-all always pass.

State machine
-------------
Each active reason implies a state (``mmbot.domain.risk.reason_state``); the gate's
state is the worst of them (ACTIVE < REDUCING < HALTED), ACTIVE when none holds.
Several reasons can hold at once. Transient reasons (watchdogs, gaps, reject storms)
clear themselves once their condition has been gone for ``calm_period_ms`` without
coming back; sticky reasons (KILL_SWITCH, MAX_DRAWDOWN, DAILY_LOSS, JOURNAL_FAILURE,
MANUAL) stay until an operator clears them. Every state change is a
:class:`RiskTransition` (kept in ``transitions``, emitted by the engine as a "risk"
event); every denial is counted by reason in ``denials``.

Pre-trade checks (all quantities in lots, prices in ticks)
-----------------------------------------------------------
Let ``p`` be the signed position, ``B`` and ``S`` the quantities of all our live buy
and sell orders (resting, in flight, or being cancelled: any of them can still fill),
and ``q`` the new order's quantity. The worst-case positions reachable if every
order on one side fills are ``long = p + B`` and ``short = S - p``. Fills move
quantity from ``B`` into ``p`` (``long`` unchanged) or reduce ``p`` against ``S``,
so only placements can raise them. Hence checking each placement keeps

    p + B <= max_inventory   and   S - p <= max_inventory        (MAX_POSITION)

for ever, which implies ``|p| + same-side resting <= max_inventory``.

* HALTED denies every placement; REDUCING allows only orders that bring ``p``
  toward zero, counting resting orders on that side: ``B_or_S + q <= |p|``.
* Exchange filters: ``q`` a positive multiple of the step, notional >= min notional.
* ``notional <= max_order_notional``; ``open orders + 1 <= max_open_orders``.
* Price band: ``|price - mid| <= mid * price_band_bps / 10^4`` (maker orders).
* Post-only never at or through the opposite touch (bid < best ask, ask > best bid).
* Self-trade prevention: never a buy at or above our own live sell, and mirror.
* Order-rate budget: at most ``max_orders_per_second`` placements in any 1 s and
  ``max_orders_per_minute`` in any 60 s window (only allowed orders use budget).
* Global limit (several symbols in one process): a :class:`GlobalLimit` shared by
  the gates bounds ``sum over symbols of max(long, short, 0) * mid`` (quote currency;
  all symbols are assumed to share one quote currency).
* Net delta (``GlobalLimit.max_net_delta``, base units, every instrument of the account:
  spot and perpetuals alike). With ``d(x)`` an instrument's base delta of ``x`` lots
  (``Instrument.delta_base``: lots x contract size; inverse: contracts x contract size /
  mid), each gate publishes its worst cases ``up = d(p + B)`` and ``down = d(S - p)``;
  a placement that raises its own is denied (``NET_DELTA``) when ``sum of up > limit``
  or ``sum of down > limit`` over the instruments, so ``|sum of d(p)| <= limit`` holds
  whenever each instrument's position came from checked placements. The positions
  alone, ``|sum of d(p)| > limit`` (an inverse delta moves with the price), raise the
  reason NET_DELTA (REDUCING) until back within.

Margin watchdog (:meth:`RiskGate.on_margin`, perpetuals; mmbot.portfolio.margin): margin
ratio = maintenance margin / margin balance. Above ``margin_ratio_reducing``:
MARGIN_RATIO (REDUCING: only orders that reduce the position); above
``margin_ratio_halt``: MARGIN_CALL (HALTED). Both clear after the calm period once the
ratio is back below their level.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import PlaceOrder, Side
from mmbot.domain.risk import STICKY_REASONS, RiskReason, TradingState, reason_state

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MAX_KEPT_TRANSITIONS = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """Per-symbol limits. Money in the quote currency, sizes in lots."""

    max_inventory_lots: int
    max_order_notional: Decimal = Decimal("1000000")
    max_open_orders: int = 20
    price_band_bps: float = 100.0
    max_orders_per_second: int = 10
    max_orders_per_minute: int = 600
    max_drawdown: Decimal = Decimal("1000000000")  # from the peak net PnL
    daily_loss_limit: Decimal = Decimal("1000000000")  # from the net PnL at the UTC day start
    calm_period_ms: int = 1000
    reject_storm_count: int = 20  # rejects within reject_storm_window_ms
    reject_storm_window_ms: int = 10_000
    margin_ratio_reducing: Decimal = Decimal("0.5")  # perpetuals: MARGIN_RATIO above it
    margin_ratio_halt: Decimal = Decimal("0.8")  # perpetuals: MARGIN_CALL above it

    def __post_init__(self) -> None:
        if not Decimal(0) < self.margin_ratio_reducing < self.margin_ratio_halt:
            raise ValueError(
                f"margin_ratio_reducing must be > 0 and below margin_ratio_halt, were {self.margin_ratio_reducing} and {self.margin_ratio_halt}"
            )
        for name in ("max_inventory_lots", "max_open_orders", "max_orders_per_second", "max_orders_per_minute",
                     "reject_storm_count", "reject_storm_window_ms"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be > 0, was {value}")
        if self.calm_period_ms < 0:
            raise ValueError(f"calm_period_ms must be >= 0, was {self.calm_period_ms}")
        if self.price_band_bps <= 0:
            raise ValueError(f"price_band_bps must be > 0, was {self.price_band_bps}")


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Deny:
    reason: str  # a RiskReason value, a state (HALTED/REDUCING) or a check name such as "PRICE_BAND"
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

    def as_dict(self) -> dict[str, object]:
        return {
            "ts_ns": self.ts_ns,
            "old": self.old_state.name,
            "new": self.new_state.name,
            "reasons": list(self.reasons),
            "cause": self.cause,
        }


@dataclass
class _ReasonInfo:
    since_ns: int
    cause: str
    condition_gone_ns: int | None = None


class GlobalLimit:
    """A limit shared by the gates of every symbol in one process.

    Each gate publishes its symbol's worst-case inventory notional
    ``max(p + B, S - p, 0) * mid`` whenever it checks an order; a placement that
    would raise the sum above ``max_inventory_notional`` is denied (GLOBAL_LIMIT).
    A published value can only be stale on the high side (cancels and reducing fills
    lower it; only checked placements raise it), so the check errs toward denying.
    """

    def __init__(self, max_inventory_notional: Decimal | None, max_net_delta: Decimal | None = None) -> None:
        if max_inventory_notional is not None and max_inventory_notional <= 0:
            raise ValueError(f"max_inventory_notional must be > 0, was {max_inventory_notional}")
        if max_net_delta is not None and max_net_delta <= 0:
            raise ValueError(f"max_net_delta must be > 0, was {max_net_delta}")
        self.max_inventory_notional = max_inventory_notional
        self.max_net_delta = None if max_net_delta is None else Fraction(max_net_delta)
        self.exposures: dict[str, Decimal] = {}
        # Net delta (base units): symbol -> worst case up d(p + B), down d(S - p), and d(p).
        self.deltas_up: dict[str, Fraction] = {}
        self.deltas_down: dict[str, Fraction] = {}
        self.positions: dict[str, Fraction] = {}
        self.denials = 0
        self.delta_denials = 0

    def total(self, excluding: str | None = None) -> Decimal:
        return sum((v for k, v in self.exposures.items() if k != excluding), Decimal(0))

    def publish(self, symbol: str, notional: Decimal) -> None:
        self.exposures[symbol] = notional

    def net_delta(self) -> Fraction:
        """Sum of the instruments' position deltas, base units."""
        return sum(self.positions.values(), Fraction(0))


@dataclass
class RiskGate:
    config: RiskConfig
    instrument: Instrument
    global_limit: GlobalLimit | None = None
    _reasons: dict[RiskReason, _ReasonInfo] = field(default_factory=dict)
    state: TradingState = TradingState.ACTIVE
    denials: dict[str, int] = field(default_factory=dict)
    transitions: deque[RiskTransition] = field(default_factory=lambda: deque(maxlen=MAX_KEPT_TRANSITIONS))
    transitions_total: int = 0
    _second_times: deque[int] = field(default_factory=deque)
    _minute_times: deque[int] = field(default_factory=deque)
    _reject_times: deque[int] = field(default_factory=deque)
    peak_net_pnl: Decimal | None = None  # None: take the next PnL as the peak
    day_start_pnl: Decimal | None = None  # None: take the next PnL as the day's start
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

    def reason_info(self) -> dict[str, dict[str, object]]:
        """For status pages: when each reason was raised, why, and whether it is clearing."""
        return {
            r.value: {
                "state": reason_state(r).name,
                "since_ns": info.since_ns,
                "cause": info.cause,
                "sticky": r in STICKY_REASONS,
                "clearing_since_ns": info.condition_gone_ns,
            }
            for r, info in sorted(self._reasons.items(), key=lambda kv: kv[0].value)
        }

    def raise_reason(self, reason: RiskReason, now_ns: int, cause: str = "") -> RiskTransition | None:
        """The condition holds (again): the reason is active and its calm period restarts."""
        info = self._reasons.get(reason)
        if info is None:
            self._reasons[reason] = _ReasonInfo(since_ns=now_ns, cause=cause)
            return self._recompute(now_ns, f"raise:{reason.value}" + (f" ({cause})" if cause else ""))
        info.condition_gone_ns = None
        return None

    def condition_cleared(self, reason: RiskReason, now_ns: int) -> RiskTransition | None:
        """The condition behind a transient reason is gone; it clears after the calm period."""
        info = self._reasons.get(reason)
        if info is None or reason in STICKY_REASONS:
            return None
        if info.condition_gone_ns is None:
            info.condition_gone_ns = now_ns
        return self.tick(now_ns)

    def clear(self, reason: RiskReason, now_ns: int, cause: str = "operator") -> RiskTransition | None:
        """Operator clear (any reason, sticky ones included); a condition that still holds is raised again."""
        if reason not in self._reasons:
            return None
        del self._reasons[reason]
        if reason is RiskReason.MAX_DRAWDOWN:
            self.peak_net_pnl = None  # the drawdown is measured afresh from now
        elif reason is RiskReason.DAILY_LOSS:
            self.day_start_pnl = None  # a new daily budget from now
        elif reason is RiskReason.REJECT_STORM:
            self._reject_times.clear()
        return self._recompute(now_ns, f"{cause}:clear:{reason.value}")

    def tick(self, now_ns: int) -> RiskTransition | None:
        """Clear the transient reasons whose condition has been gone for the calm period."""
        calm = self.config.calm_period_ms * NS_PER_MS
        expired = [
            r
            for r, info in self._reasons.items()
            if info.condition_gone_ns is not None and now_ns - info.condition_gone_ns >= calm
        ]
        if not expired:
            return None
        for r in expired:
            del self._reasons[r]
        return self._recompute(now_ns, "calm:" + ",".join(r.value for r in expired))

    def _recompute(self, now_ns: int, cause: str) -> RiskTransition | None:
        new = max((reason_state(r) for r in self._reasons), default=TradingState.ACTIVE)
        if new is self.state:
            return None
        transition = RiskTransition(ts_ns=now_ns, old_state=self.state, new_state=new, reasons=self.reasons, cause=cause)
        self.state = new
        self.transitions.append(transition)
        self.transitions_total += 1
        return transition

    # --- limits fed by the engine ----------------------------------------------------------
    def on_pnl(self, net_pnl: Decimal, now_ns: int) -> RiskTransition | None:
        """Drawdown from the peak net PnL and loss since the UTC day start (sticky reasons)."""
        day = now_ns // (86_400 * NS_PER_S)
        if day != self._day or self.day_start_pnl is None:
            self._day = day
            self.day_start_pnl = net_pnl
        if self.peak_net_pnl is None or net_pnl > self.peak_net_pnl:
            self.peak_net_pnl = net_pnl
        result = None
        drawdown = self.peak_net_pnl - net_pnl
        if drawdown > self.config.max_drawdown and not self.has(RiskReason.MAX_DRAWDOWN):
            result = self.raise_reason(RiskReason.MAX_DRAWDOWN, now_ns, f"drawdown {drawdown} > {self.config.max_drawdown}")
        loss = self.day_start_pnl - net_pnl
        if loss > self.config.daily_loss_limit and not self.has(RiskReason.DAILY_LOSS):
            cause = f"daily loss {loss} > {self.config.daily_loss_limit}"
            result = self.raise_reason(RiskReason.DAILY_LOSS, now_ns, cause) or result
        return result

    def on_position(self, position_lots: int, now_ns: int) -> RiskTransition | None:
        """MAX_POSITION (REDUCING) while |position| is beyond the limit, e.g. after a reload lowered it."""
        limit = self.config.max_inventory_lots
        if abs(position_lots) > limit:
            return self.raise_reason(RiskReason.MAX_POSITION, now_ns, f"|position| {abs(position_lots)} > {limit} lots")
        if self.has(RiskReason.MAX_POSITION):
            return self.condition_cleared(RiskReason.MAX_POSITION, now_ns)
        return None

    def on_delta(self, position_lots: int, buy_lots: int, sell_lots: int, mid_ticks: float | None, now_ns: int) -> RiskTransition | None:
        """Publish this instrument's deltas to the shared net-delta limit; NET_DELTA
        (REDUCING) while the positions' net delta is beyond it."""
        glob = self.global_limit
        if glob is None or glob.max_net_delta is None or mid_ticks is None or mid_ticks <= 0:
            return None
        inst = self.instrument
        sym = inst.symbol
        glob.positions[sym] = inst.delta_base(position_lots, mid_ticks)
        glob.deltas_up[sym] = inst.delta_base(position_lots + buy_lots, mid_ticks)
        glob.deltas_down[sym] = inst.delta_base(sell_lots - position_lots, mid_ticks)
        net = glob.net_delta()
        if abs(net) > glob.max_net_delta:
            return self.raise_reason(RiskReason.NET_DELTA, now_ns, f"|net delta| {float(abs(net)):.8f} > {float(glob.max_net_delta)} {inst.base}")
        if self.has(RiskReason.NET_DELTA):
            return self.condition_cleared(RiskReason.NET_DELTA, now_ns)
        return None

    def on_margin(self, margin_ratio: Fraction | None, now_ns: int) -> RiskTransition | None:
        """The margin watchdog (module docstring); ``None``: no open position."""
        cfg = self.config
        ratio = Fraction(0) if margin_ratio is None else margin_ratio
        result = None
        # The lower level first: a jump past both shows REDUCING, then HALTED, in the transitions.
        for reason, level in ((RiskReason.MARGIN_RATIO, cfg.margin_ratio_reducing), (RiskReason.MARGIN_CALL, cfg.margin_ratio_halt)):
            if ratio > Fraction(level):
                result = self.raise_reason(reason, now_ns, f"margin ratio {float(ratio):.6f} > {level}") or result
            elif self.has(reason):
                result = self.condition_cleared(reason, now_ns) or result
        return result

    def _check_delta(self, is_buy: bool, position_lots: int, same_after: int, mid_ticks: float | None,
                     price_ticks: int) -> Deny | Fraction | None:
        """NET_DELTA pre-trade check (module docstring): a denial, or this side's worst case
        after the order (published once the order is allowed), or None without the limit."""
        glob = self.global_limit
        if glob is None or glob.max_net_delta is None:
            return None
        inst = self.instrument
        sym = inst.symbol
        price = mid_ticks if mid_ticks is not None and mid_ticks > 0 else float(price_ticks)
        book = glob.deltas_up if is_buy else glob.deltas_down
        mine = inst.delta_base(position_lots + same_after if is_buy else same_after - position_lots, price)
        others = sum((v for k, v in book.items() if k != sym), Fraction(0))
        if mine > book.get(sym, Fraction(0)) and others + mine > glob.max_net_delta:
            glob.delta_denials += 1
            return self._deny(
                RiskReason.NET_DELTA.value,
                f"net delta could reach {float(others + mine):.8f} > {float(glob.max_net_delta)} {inst.base} "
                f"({'buys' if is_buy else 'sells'} on every instrument filling)",
            )
        return mine

    def on_reject(self, now_ns: int) -> RiskTransition | None:
        window = self.config.reject_storm_window_ms * NS_PER_MS
        times = self._reject_times
        times.append(now_ns)
        while times and now_ns - times[0] > window:
            times.popleft()
        if len(times) >= self.config.reject_storm_count:
            return self.raise_reason(RiskReason.REJECT_STORM, now_ns, f"{len(times)} rejects")
        if self.has(RiskReason.REJECT_STORM):
            return self.condition_cleared(RiskReason.REJECT_STORM, now_ns)
        return None

    def exposure_notional(self, position_lots: int, buy_lots: int, sell_lots: int, price_ticks: float) -> Decimal:
        worst = max(position_lots + buy_lots, sell_lots - position_lots, 0)
        return self.instrument.notional(round(price_ticks), worst)

    def publish_exposure(self, position_lots: int, buy_lots: int, sell_lots: int, price_ticks: float) -> None:
        """Refresh this symbol's entry in the shared global limit (cancels and fills lower it)."""
        if self.global_limit is not None and self.global_limit.max_inventory_notional is not None:
            notional = self.exposure_notional(position_lots, buy_lots, sell_lots, price_ticks)
            self.global_limit.publish(self.instrument.symbol, notional)

    # --- pre-trade check -------------------------------------------------------------------
    def count_denial(self, reason: str) -> None:
        """Count a refusal decided by the engine (a model's decision it cannot trade)."""
        self.denials[reason] = self.denials.get(reason, 0) + 1

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
        resting_opposite_side_lots: int = 0,
    ) -> Allow | Deny:
        """Allow, or Deny naming the check; an allowed order uses rate budget."""
        cfg = self.config
        inst = self.instrument
        is_buy = order.side is Side.BUY
        qty = order.qty_lots
        reduces = (position_lots > 0 and not is_buy) or (position_lots < 0 and is_buy)
        if self.state is TradingState.HALTED:
            return self._deny("HALTED", ",".join(self.reasons))
        if self.state is TradingState.REDUCING:
            # Only orders that bring the position toward zero, counting resting ones.
            if not reduces or resting_same_side_lots + qty > abs(position_lots):
                return self._deny("REDUCING", ",".join(self.reasons))
        if qty <= 0 or qty % inst.step_lots:
            return self._deny("STEP_SIZE", f"qty {qty} lots is not a positive multiple of {inst.step_lots}")
        if order.price_ticks <= 0:
            return self._deny("PRICE_FILTER", f"price {order.price_ticks} ticks must be > 0")
        notional = inst.notional(order.price_ticks, qty)
        if notional < inst.min_notional:
            return self._deny("MIN_NOTIONAL", f"notional {notional} < {inst.min_notional}")
        if notional > cfg.max_order_notional:
            return self._deny("MAX_NOTIONAL", f"notional {notional} > {cfg.max_order_notional}")
        # Worst-case position on the order's side if everything on that side fills.
        same_after = resting_same_side_lots + qty
        worst_after = position_lots + same_after if is_buy else same_after - position_lots
        if worst_after > cfg.max_inventory_lots:
            return self._deny(
                RiskReason.MAX_POSITION.value,
                f"position {position_lots} and {'buys' if is_buy else 'sells'} {resting_same_side_lots} + order {qty} lots "
                f"could reach {worst_after} > max_inventory {cfg.max_inventory_lots}",
            )
        delta_after = self._check_delta(is_buy, position_lots, same_after, mid_ticks, order.price_ticks)
        if isinstance(delta_after, Deny):
            return delta_after
        exposure_after: Decimal | None = None
        if self.global_limit is not None and self.global_limit.max_inventory_notional is not None:
            price = mid_ticks if mid_ticks is not None else float(order.price_ticks)
            buys = same_after if is_buy else resting_opposite_side_lots
            sells = resting_opposite_side_lots if is_buy else same_after
            before = self.exposure_notional(
                position_lots, buys - (qty if is_buy else 0), sells - (0 if is_buy else qty), price
            )
            after = exposure_after = self.exposure_notional(position_lots, buys, sells, price)
            glob = self.global_limit
            glob.publish(inst.symbol, before)
            others = glob.total(excluding=inst.symbol)
            if after > before and others + after > glob.max_inventory_notional:  # type: ignore[operator]  # checked above
                glob.denials += 1
                return self._deny(
                    "GLOBAL_LIMIT",
                    f"exposure {others + after} across symbols > {glob.max_inventory_notional} {inst.quote_ccy}",
                )
        if open_orders + 1 > cfg.max_open_orders:
            return self._deny("MAX_OPEN_ORDERS", f"{open_orders} open orders, limit {cfg.max_open_orders}")
        if mid_ticks is not None and not order.is_taker:
            band = mid_ticks * cfg.price_band_bps / 10_000
            if abs(order.price_ticks - mid_ticks) > band:
                return self._deny("PRICE_BAND", f"price {order.price_ticks} more than {cfg.price_band_bps} bps from mid {mid_ticks}")
        if order.post_only:
            if is_buy and best_ask is not None and order.price_ticks >= best_ask:
                return self._deny("POST_ONLY_CROSS", f"bid {order.price_ticks} >= best ask {best_ask}")
            if not is_buy and best_bid is not None and order.price_ticks <= best_bid:
                return self._deny("POST_ONLY_CROSS", f"ask {order.price_ticks} <= best bid {best_bid}")
        if own_best_opposite is not None:
            if (is_buy and order.price_ticks >= own_best_opposite) or (not is_buy and order.price_ticks <= own_best_opposite):
                return self._deny("SELF_TRADE", f"price {order.price_ticks} would trade with our own order at {own_best_opposite}")
        seconds = self._second_times
        minutes = self._minute_times
        while seconds and now_ns - seconds[0] >= NS_PER_S:
            seconds.popleft()
        while minutes and now_ns - minutes[0] >= 60 * NS_PER_S:
            minutes.popleft()
        if len(seconds) >= cfg.max_orders_per_second or len(minutes) >= cfg.max_orders_per_minute:
            return self._deny(RiskReason.ORDER_RATE.value, f"{len(seconds)} orders in 1 s, {len(minutes)} in 60 s")
        seconds.append(now_ns)
        minutes.append(now_ns)
        if self.global_limit is not None and exposure_after is not None:
            self.global_limit.publish(inst.symbol, exposure_after)
        if self.global_limit is not None and delta_after is not None:
            book = self.global_limit.deltas_up if is_buy else self.global_limit.deltas_down
            book[inst.symbol] = max(delta_after, book.get(inst.symbol, Fraction(0)))
        return ALLOW
