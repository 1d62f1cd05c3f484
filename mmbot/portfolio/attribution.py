"""PnL attribution: net PnL split into what a market maker reasons with, exactly.

For fill i with side d_i (+1 buy, -1 sell), price p_i (ticks), size n_i (lots),
fee f_i (quote currency, < 0 a rebate), at time t_i:

=================  ==================================================================
symbol             meaning
=================  ==================================================================
m_i                the mid when the fill is booked (the engine's mid at fill time;
                   the fill price if no mid was seen yet), ticks (a half-integer)
h_i                the mid at the horizon: the first mid observed at or after
                   t_i + H (H = ``horizon_ns``, default 5 s, one of the markout
                   horizons); the final mark M if the data ends first
M                  the final mark of the run (:func:`mmbot.portfolio.ledger.
                   mark_ticks_from_mid`), ticks
u                  tick_size x qty_unit: quote currency of one tick x lot
=================  ==================================================================

The parts, each a sum over fills, in quote currency::

    spread_capture     = u x sum d_i n_i (m_i - p_i)   edge against the mid at the fill
    adverse_selection  = u x sum d_i n_i (h_i - m_i)   mid move against/with the fill
                                                       within its horizon (< 0: picked off)
    inventory_pnl      = u x sum d_i n_i (M - h_i)     the position's mid move after
                                                       each fill's horizon, to the mark
    fees               = sum of f_i > 0 (paid, shown negative; bar backtests add
                         their modelled slippage here, as their net PnL does)
    rebates            = sum of -f_i for f_i < 0 (received, shown positive)

Telescoping gives ``spread + adverse + inventory = u x sum d_i n_i (M - p_i) =
u x (q M + cash) = gross_pnl`` (the ledger's definition), and ``gross - fees_paid =
net_pnl``: the parts add up to the summary's net PnL exactly. Nothing is counted
twice: each fill's price path ``p -> m -> h -> M`` is cut into disjoint segments.
Bar backtests (:func:`mmbot.research.bars.bar_attribution`) use the same tracker:
m_i is the close the quote was priced from, mids are the bar closes, and the horizon
is one bar (the fill is resolved at its bar's close). Spot only: there is no funding (``funding`` is always 0 and not shown).

Exactness: mids are half-integer ticks, so the tracker keeps ``2 x mid`` as integers
and every sum in half-tick x lot integers; the Decimal conversion multiplies by
``u / 2``, exact in Decimal. Memory is bounded: only fills still waiting for their
horizon are kept (a deque), the rest live in three running integers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

DEFAULT_ATTRIBUTION_HORIZON_NS = 5_000_000_000

# The parts in display order, and the unit all of them carry.
ATTRIBUTION_PARTS = ("spread_capture", "adverse_selection", "inventory_pnl", "fees", "rebates")


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    """The parts of net PnL, quote currency; ``total`` is their exact sum (= net PnL)."""

    spread_capture: Decimal
    adverse_selection: Decimal
    inventory_pnl: Decimal
    fees: Decimal  # <= 0: fees paid
    rebates: Decimal  # >= 0: rebates received
    horizon_s: float
    fills: int
    quote_ccy: str

    @property
    def total(self) -> Decimal:
        return self.spread_capture + self.adverse_selection + self.inventory_pnl + self.fees + self.rebates

    def fields(self) -> dict[str, object]:
        """The summary's ``pnl_attribution`` value: money as exact decimal strings, never rounded
        (half a tick x lot can be 5e-11 USDT, below the summary's 8 places), so the strings
        add up to ``net_pnl`` exactly and ``net_pnl`` equals the summary's as a number."""

        def q(v: Decimal) -> str:
            return format(v, "f")

        return {
            "unit": self.quote_ccy,
            "horizon_s": self.horizon_s,
            "fills": self.fills,
            **{name: q(getattr(self, name)) for name in ATTRIBUTION_PARTS},
            "net_pnl": q(self.total),
        }


class AttributionTracker:
    """Feeds: :meth:`on_fill` for each booked fill, :meth:`on_mid` for each observed mid."""

    __slots__ = ("_adverse2", "_fees", "_inv_pending", "_pending", "_rebates", "_spread2", "_unit", "fills", "horizon_ns", "quote_ccy")

    def __init__(self, unit: Decimal, quote_ccy: str = "", horizon_ns: int = DEFAULT_ATTRIBUTION_HORIZON_NS) -> None:
        if horizon_ns < 0:
            raise ValueError(f"attribution horizon must be >= 0 ns, was {horizon_ns}")
        self._unit = unit
        self.quote_ccy = quote_ccy
        self.horizon_ns = horizon_ns
        self._spread2 = 0  # sum d n (2m - 2p), half-tick x lot
        self._adverse2 = 0  # sum d n (2h - 2m) over resolved fills
        # Resolved fills' inventory part is d n (2M - 2h): M is known only at the end, so
        # keep sum d n (the resolved signed size) and sum d n 2h.
        self._inv_pending = [0, 0]  # [sum d n, sum d n 2h] over resolved fills
        self._pending: deque[tuple[int, int, int]] = deque()  # (due ns, d n, 2m)
        self._fees = Decimal(0)
        self._rebates = Decimal(0)
        self.fills = 0

    def on_fill(
        self, ts_ns: int, side: int, price_ticks: int, qty_lots: int, fee: Decimal, mid_ticks: float | None,
        slippage: Decimal = Decimal(0),
    ) -> None:  # fmt: skip
        """``fee`` < 0 is a rebate; ``slippage`` (bar backtests' modelled cost) counts as a fee."""
        signed = side * qty_lots
        mid2 = 2 * price_ticks if mid_ticks is None else int(2 * mid_ticks)
        self._spread2 += signed * (mid2 - 2 * price_ticks)
        if fee >= 0:
            self._fees += fee
        else:
            self._rebates -= fee
        self._fees += slippage
        self.fills += 1
        self._pending.append((ts_ns + self.horizon_ns, signed, mid2))

    def on_mid(self, ts_ns: int, mid_ticks: float) -> None:
        pending = self._pending
        if not pending or pending[0][0] > ts_ns:
            return
        h2 = int(2 * mid_ticks)
        inv = self._inv_pending
        while pending and pending[0][0] <= ts_ns:
            _, signed, mid2 = pending.popleft()
            self._adverse2 += signed * (h2 - mid2)
            inv[0] += signed
            inv[1] += signed * h2

    def result(self, mark_ticks: int) -> Attribution:
        """The attribution at the final mark M (fills still within their horizon: h = M)."""
        mark2 = 2 * mark_ticks
        adverse2 = self._adverse2 + sum(signed * (mark2 - mid2) for _, signed, mid2 in self._pending)
        inventory2 = self._inv_pending[0] * mark2 - self._inv_pending[1]
        half = self._unit / 2
        return Attribution(
            spread_capture=self._spread2 * half,
            adverse_selection=adverse2 * half,
            inventory_pnl=inventory2 * half,
            fees=-self._fees,
            rebates=self._rebates,
            horizon_s=self.horizon_ns / 1e9,
            fills=self.fills,
            quote_ccy=self.quote_ccy,
        )


def attribution_table(fields: dict[str, object]) -> str:
    """A console table of a ``pnl_attribution`` summary value (one line per part)."""
    unit = fields.get("unit", "")
    lines = [f"PnL attribution (horizon {fields.get('horizon_s')} s, {fields.get('fills')} fills)"]
    for name in (*ATTRIBUTION_PARTS, "net_pnl"):
        lines.append(f"  {name:<18} {fields[name]:>16} {unit}")
    return "\n".join(lines)
