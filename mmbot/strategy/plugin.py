"""Strategy plugins: the typed protocol a user's quoting model implements, and the check
the engine runs on every decision.

A plugin is a :class:`~mmbot.strategy.model.QuoteModel` (the interface of every built-in
model) plus a pydantic model of its own parameters and a constructor taking them:

.. code-block:: python

    class MyParams(pydantic.BaseModel):        # validated from ``strategy.params``
        model_config = ConfigDict(extra="forbid", frozen=True)
        size: float = 0.001                    # base units

    class MyModel:
        Params = MyParams
        def __init__(self, params: MyParams, instrument: Instrument) -> None: ...
        def on_trade(self, trade: Trade) -> None: ...          # each public trade
        def on_mid(self, now_ns: int, mid_ticks: float) -> None: ...   # each new mid
        def decide(self, ctx: MarketContext) -> Decision: ...  # each decision step

What it receives: ``MarketContext`` (clock ``now_ns``, the instrument, mid and touch in
ticks, our position and resting size in lots, the L2 book view), public trades and each
mid. What it returns: a ``Decision`` (quotes as data: side, integer price in ticks,
integer size in lots, level, reason; optional cancel-all and hedge). Fills reach it
through ``ctx.inventory_lots`` (the ledger's position). It is chosen in config as
``strategy.model: "package.module:ClassName"`` or by the name of an entry point in the
group ``mmbot.strategies`` (``mmbot.plugins``), and runs through the same engine in every
mode (backtest, replay/paper run, sandbox, emulator).

The engine checks every decision (:func:`check_decision`) and catches any exception a
model raises. A refused decision is counted in the risk gate's denials under its reason
code and published as a ``deny`` event; the engine then cancels its quotes for that step
(quoting nonsense is worse than not quoting) and carries on: the daemon keeps running.

Reason codes:

===================  ==========================================================
MODEL_RAISED         ``decide``/``on_trade``/``on_mid`` raised an exception
MODEL_BAD_DECISION   not a ``Decision``, or a quote that is not a ``Quote``
MODEL_BAD_PRICE      a price that is not an integer number of ticks > 0 (NaN,
                     a float, a negative)
MODEL_BAD_SIZE       a size that is not an integer number of lots > 0
MODEL_OFF_LOT        a size that is not a multiple of the instrument's step
MODEL_CROSSED        our own best bid >= our own best ask
===================  ==========================================================
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from mmbot.domain.events import Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.model import Decision, MarketContext

MODEL_RAISED = "MODEL_RAISED"
MODEL_BAD_DECISION = "MODEL_BAD_DECISION"
MODEL_BAD_PRICE = "MODEL_BAD_PRICE"
MODEL_BAD_SIZE = "MODEL_BAD_SIZE"
MODEL_OFF_LOT = "MODEL_OFF_LOT"
MODEL_CROSSED = "MODEL_CROSSED"
MODEL_REASONS = (MODEL_RAISED, MODEL_BAD_DECISION, MODEL_BAD_PRICE, MODEL_BAD_SIZE, MODEL_OFF_LOT, MODEL_CROSSED)


@runtime_checkable
class StrategyPlugin(Protocol):
    """A user's quoting model: a QuoteModel with a ``Params`` pydantic model."""

    Params: ClassVar[type[Any]]  # a pydantic BaseModel subclass

    def __init__(self, params: Any, instrument: Instrument) -> None: ...

    def on_trade(self, trade: Trade) -> None: ...

    def on_mid(self, now_ns: int, mid_ticks: float) -> None: ...

    def decide(self, ctx: MarketContext) -> Decision: ...


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not float (NaN), not Decimal


def check_quote(q: object, step_lots: int) -> tuple[str, str] | None:
    if not isinstance(q, Quote):
        return MODEL_BAD_DECISION, f"quote {q!r} is not a Quote"
    if not _is_int(q.price_ticks) or q.price_ticks <= 0:
        return MODEL_BAD_PRICE, f"{q.side.name} price {q.price_ticks!r} is not a whole number of ticks > 0"
    if not _is_int(q.qty_lots) or q.qty_lots <= 0:
        return MODEL_BAD_SIZE, f"{q.side.name} size {q.qty_lots!r} is not a whole number of lots > 0"
    if q.qty_lots % step_lots:
        return MODEL_OFF_LOT, f"{q.side.name} size {q.qty_lots} lots is not a multiple of the step ({step_lots} lots)"
    return None


def check_decision(decision: object, instrument: Instrument) -> tuple[str, str] | None:
    """(reason code, detail) when the decision cannot be traded, None when it can."""
    if not isinstance(decision, Decision):
        return MODEL_BAD_DECISION, f"decide returned {type(decision).__name__}, not a Decision"
    step = instrument.step_lots
    best_bid: int | None = None
    best_ask: int | None = None
    for q in decision.quotes:
        bad = check_quote(q, step)
        if bad is not None:
            return bad
        assert isinstance(q, Quote)
        if q.side is Side.BUY:
            best_bid = q.price_ticks if best_bid is None else max(best_bid, q.price_ticks)
        else:
            best_ask = q.price_ticks if best_ask is None else min(best_ask, q.price_ticks)
    if best_bid is not None and best_ask is not None and best_bid >= best_ask:
        return MODEL_CROSSED, f"our bid {best_bid} >= our ask {best_ask} (ticks)"
    if decision.hedge is not None:
        return check_quote(decision.hedge, step)
    return None
