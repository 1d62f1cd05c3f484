"""Simulated wallet: free and locked balances per asset for paper trading.

Pure core (no I/O, no clock), exact ``Decimal`` arithmetic, never float. The
:class:`~mmbot.sim.venue.SimVenue` asks it to cover an order before accepting it,
so a paper account can only spend what it holds, as on a real spot account.

Rules (what the venue does with it)
-----------------------------------
=========================  ===================================================================
event                      balances
=========================  ===================================================================
place a buy                lock ``x * L * (1 + r)`` of the quote asset (``x`` limit price,
                           ``L`` quantity, ``r`` the worst fee rate the order can pay:
                           ``max(maker, 0)`` for post-only, ``max(maker, taker, 0)`` otherwise)
place a sell               lock ``L`` of the base asset
not covered (free < lock)  rejected, ``-2010 Account has insufficient balance for requested
                           action.`` (as Binance answers); no balance changes
fill a buy at ``p``, ``q``  unlock ``x * q * (1 + r)``, spend ``p * q + fee`` of it (``p <= x``
                           and ``fee <= p * q * r``, so the unlock covers it; the change goes
                           back to free), receive ``q`` base
fill a sell at ``p``, ``q`` unlock and spend ``q`` base, receive ``p * q - fee`` quote (a
                           rebate, ``fee < 0``, is credited)
cancel, expire, done       unlock what is still locked for the order
=========================  ===================================================================

Fees are charged in the quote asset. Fee rates must lie in ``(-1, 1)`` so proceeds
are never negative. Because every debit comes out of a lock taken from free funds,
no balance (free or locked) can go negative; :class:`Wallet` checks it anyway and
raises ``ValueError`` on a violation (a bug of ours, never bad input).

Perpetual futures (:meth:`Wallet.open_perp`, the same wallet, no second account model):
the settlement asset (USDT for ``BTC/USDT:USDT``, BTC for ``BTC/USD:BTC``) is the margin
balance. Each perpetual has one position (a :class:`~mmbot.portfolio.ledger.Ledger`
of the wallet's own, so entry price and realised PnL follow the ledger's exact rules).

=========================  ===================================================================
event                      balances (settlement asset ``S``)
=========================  ===================================================================
place an order (either     lock its initial margin ``v / L + v x r`` (``v`` the order's value at
side)                      its limit, ``L`` leverage, ``r`` the worst fee rate), rounded up to
                           1e-8; covered when ``free - positions' initial margin >= lock``
fill ``q`` at ``p``        unlock the filled part's margin, pay the fee, book the realised PnL
                           of the reduced part (rounded down to 1e-8, never credited too much)
funding                    pay (or receive) ``position value at the mark x rate``
                           (mmbot.portfolio.funding)
=========================  ===================================================================

A perpetual's balance may go below zero (losses beyond the collateral: the account would
have been liquidated first; liquidation is not simulated, the margin-ratio watchdog of
the risk gate stops trading long before, docs/futures.md).

Inventory on spot is measured against a target base holding: the starting base
balance. The engine's position (``Ledger.position_lots``) starts at 0 and is
"holding minus target", so a short position means holding less than the target,
not borrowing (docs/simulation.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from fractions import Fraction

from mmbot.domain.instrument import Instrument, round_up_8
from mmbot.domain.orders import Side
from mmbot.portfolio.ledger import Ledger
from mmbot.portfolio.margin import MarginParams

ZERO = Decimal(0)
# Exact arithmetic: enough digits for any bounded balance at the finest fee
# resolution, and a rounding would raise instead of passing silently.
EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])

# Binance's answer when an order cannot be covered (code -2010, NEW_ORDER_REJECTED).
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."


def _text(amount: Decimal) -> str:
    """Exact decimal string without exponent or trailing zeros (``15``, ``0.00052``)."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Hold:
    """Funds still locked for one order."""

    __slots__ = ("amount", "asset")

    def __init__(self, asset: str, amount: Decimal) -> None:
        self.asset = asset
        self.amount = amount


class PerpAccount:
    """One perpetual's position in the wallet: its ledger, leverage and margin mode."""

    __slots__ = ("funding_paid", "instrument", "ledger", "params")

    def __init__(self, instrument: Instrument, params: MarginParams) -> None:
        self.instrument = instrument
        self.params = params
        self.ledger = Ledger(instrument)
        self.funding_paid = Decimal(0)

    def initial_margin(self) -> Decimal:
        """The open position's initial margin at its entry prices (settlement asset, rounded up)."""
        return round_up_8(self.ledger.entry_value() / self.params.leverage)


def _round_down_8(value: Fraction) -> Decimal:
    return -round_up_8(-value)


class Wallet:
    """Free and locked balances per asset, with one hold per open order.

    One wallet is one account: several venues (symbols) may share it, so holds are
    keyed by client order id, which is unique per account.
    """

    def __init__(self, balances: Mapping[str, Decimal]) -> None:
        for asset, amount in balances.items():
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                raise ValueError(f"balance of {asset} must be a finite Decimal >= 0, was {amount!r}")
        self.start: dict[str, Decimal] = dict(balances)
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = {asset: ZERO for asset in balances}
        self._holds: dict[str, _Hold] = {}
        self.perps: dict[str, PerpAccount] = {}  # symbol -> perpetual position (open_perp)

    # --- perpetual futures --------------------------------------------------------
    def open_perp(self, instrument: Instrument, params: MarginParams) -> PerpAccount:
        """Trade ``instrument`` (a perpetual) on margin from this wallet's settlement asset."""
        if not instrument.is_perp:
            raise ValueError(f"open_perp needs a perpetual, {instrument.symbol} is spot")
        self.add_assets(instrument.settle)
        account = self.perps.get(instrument.symbol)
        if account is None:
            account = self.perps[instrument.symbol] = PerpAccount(instrument, params)
        return account

    def available(self, asset: str) -> Decimal:
        """Free funds less the initial margin of the open positions settled in ``asset``."""
        used = sum((p.initial_margin() for p in self.perps.values() if p.instrument.settle == asset), Decimal(0))
        return self.free.get(asset, ZERO) - used

    def order_margin(self, symbol: str, price_ticks: int, lots: int, fee_rate: Decimal) -> Decimal:
        """Initial margin an order locks: value / leverage + value x worst fee rate, rounded up to 1e-8."""
        account = self.perps[symbol]
        value = account.instrument.settle_value(price_ticks, lots)
        return round_up_8(value / account.params.leverage + value * Fraction(fee_rate))

    def perp_covers(self, symbol: str, amount: Decimal) -> bool:
        return amount <= self.available(self.perps[symbol].instrument.settle)

    def perp_hold(self, order_id: str, symbol: str, amount: Decimal) -> bool:
        """Lock an order's margin; False (nothing changes) when the available funds do not cover it."""
        if not self.perp_covers(symbol, amount):
            return False
        return self.hold(order_id, self.perps[symbol].instrument.settle, amount)

    def perp_fill(self, order_id: str, symbol: str, side: Side, price_ticks: int, lots: int, fee: Decimal, unlock: Decimal) -> None:
        """A perpetual fill: unlock ``unlock`` of the order's margin, pay ``fee``, book the
        realised PnL of the part that reduced the position."""
        account = self.perps[symbol]
        asset = account.instrument.settle
        hold = self._holds.get(order_id)
        if hold is None:
            raise ValueError(f"order {order_id} holds no funds")
        unlock = min(unlock, hold.amount)
        before = account.ledger.realized_settle()
        account.ledger.apply_fill(side, price_ticks, lots, fee)
        realised = _round_down_8(account.ledger.realized_settle() - before)
        with localcontext(EXACT):
            hold.amount -= unlock
            self.locked[asset] -= unlock
            self.free[asset] += unlock - fee + realised

    def book_funding(self, symbol: str, amount: Decimal) -> None:
        """Pay ``amount`` (< 0: receive) of the settlement asset for the perpetual's funding."""
        account = self.perps[symbol]
        account.funding_paid += amount
        account.ledger.book_funding(amount)
        with localcontext(EXACT):
            self.free[account.instrument.settle] -= amount

    # --- queries --------------------------------------------------------------------
    def add_assets(self, *assets: str) -> None:
        """Make ``assets`` known (balance 0 unless configured), so summaries list them."""
        for asset in assets:
            self.start.setdefault(asset, ZERO)
            self.free.setdefault(asset, ZERO)
            self.locked.setdefault(asset, ZERO)

    def total(self, asset: str) -> Decimal:
        return self.free.get(asset, ZERO) + self.locked.get(asset, ZERO)

    def covers(self, asset: str, amount: Decimal) -> bool:
        return amount <= self.free.get(asset, ZERO)

    def held(self, order_id: str) -> Decimal:
        hold = self._holds.get(order_id)
        return ZERO if hold is None else hold.amount

    def balances_start(self) -> dict[str, str]:
        """asset -> starting balance, as decimal strings (the summary's ``balances_start``)."""
        return {asset: _text(amount) for asset, amount in sorted(self.start.items())}

    def balances_end(self) -> dict[str, str]:
        """asset -> free + locked now, as decimal strings (the summary's ``balances_end``)."""
        return {asset: _text(self.total(asset)) for asset in sorted(self.free)}

    # --- holds ----------------------------------------------------------------------
    def hold(self, order_id: str, asset: str, amount: Decimal) -> bool:
        """Lock ``amount`` of ``asset`` for an order; False (nothing changes) if not covered."""
        if amount < 0:
            raise ValueError(f"hold for {order_id} must be >= 0, was {amount}")
        if order_id in self._holds:
            raise ValueError(f"order {order_id} already holds funds")
        if not self.covers(asset, amount):
            return False
        self.add_assets(asset)
        with localcontext(EXACT):
            self.free[asset] -= amount
            self.locked[asset] += amount
        self._holds[order_id] = _Hold(asset, amount)
        return True

    def release(self, order_id: str) -> None:
        """Unlock whatever is still locked for an order (cancel, expiry, last fill)."""
        hold = self._holds.pop(order_id, None)
        if hold is None or not hold.amount:
            return
        with localcontext(EXACT):
            self.locked[hold.asset] -= hold.amount
            self.free[hold.asset] += hold.amount

    def settle(self, order_id: str, *, unlock: Decimal, spend: Decimal, receive_asset: str, receive: Decimal) -> None:
        """A fill: unlock ``unlock`` of the order's hold, spend ``spend`` of it (the rest
        goes back to free) and credit ``receive`` of ``receive_asset``."""
        hold = self._holds.get(order_id)
        if hold is None:
            raise ValueError(f"order {order_id} holds no funds")
        unlock = min(unlock, hold.amount)
        if spend < 0 or spend > unlock:
            raise ValueError(f"fill of {order_id} spends {spend} {hold.asset}, must be within the {unlock} it unlocks")
        if receive < 0:
            raise ValueError(f"fill of {order_id} receives {receive} {receive_asset}, must be >= 0")
        self.add_assets(receive_asset)
        with localcontext(EXACT):
            hold.amount -= unlock
            self.locked[hold.asset] -= unlock
            self.free[hold.asset] += unlock - spend
            self.free[receive_asset] += receive

    def adjust(self, asset: str, delta: Decimal) -> None:
        """Move free funds by ``delta`` (crash recovery: the journal's fills since the start)."""
        self.add_assets(asset)
        with localcontext(EXACT):
            after = self.free[asset] + delta
        if after < 0:
            raise ValueError(f"free {asset} would be {after}, must be >= 0")
        self.free[asset] = after


__all__ = ["EXACT", "MSG_INSUFFICIENT", "PerpAccount", "Wallet"]
