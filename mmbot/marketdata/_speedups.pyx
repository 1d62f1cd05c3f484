# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled per-event path (issue 31): capture-line decoding and book updates in C.

Built by setup.py (Cython, optional: a machine without a compiler gets the pure-Python
path, which gives identical results). ``MMBOT_PURE_PYTHON=1`` (any value but empty or
``0``) makes this module refuse to import, which forces the fallback; the golden-fill
tests run both ways. Reading that one variable at import is configuration, not I/O of
the pure core.

Exactness: a Binance wire decimal ``"61837.63000000"`` (digits, a dot 8 places from the
end, at most 18 digits) is read as the integer ``6183763000000`` (units of 1e-8) and
divided by the grid divisor ``10**(8 - decimals) * unit``, exactly as
mmbot.marketdata.capture's fast parser does with ``int(text.replace(".", "", 1))``.
Anything else -- another number form, a remainder (off the grid), a field of an
unexpected type, a symbol not configured, any exception -- is not decided here: the
whole message goes to the Python parser, which then gives its result or raises its
rule. So the compiled path accepts a subset of messages and, for those, builds the
very same event the Python path builds.
"""

from cpython.unicode cimport PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_DATA, PyUnicode_READ
from libc.stdlib cimport getenv
from libc.string cimport strcmp

from heapq import heapify, heappop, heappush

from mmbot.domain.events import BestBidAsk, BookDelta, Trade

cdef const char* _forced = getenv(b"MMBOT_PURE_PYTHON")
if _forced != NULL and _forced[0] != 0 and strcmp(_forced, b"0") != 0:
    raise ImportError("MMBOT_PURE_PYTHON is set: the pure-Python per-event path is forced")

cdef object _tuple_new = tuple.__new__
cdef object _FALLBACK = object()


cdef inline bint _wire(object text, long long* out) noexcept:
    """Strict Binance 8-decimal string -> units of 1e-8 in ``out``; False for anything else."""
    if type(text) is not str:
        return False
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    if n < 9 or n > 19:  # the dot plus 8..18 digits: fits in a signed 64-bit integer
        return False
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t dot = n - 9
    cdef Py_ssize_t i
    cdef unsigned int c  # a code point as a number (Py_UCS4 would do str arithmetic)
    cdef long long v = 0
    for i in range(n):
        c = <unsigned int>PyUnicode_READ(kind, data, i)
        if i == dot:
            if c != 46:  # "."
                return False
        elif 48 <= c <= 57:
            v = v * 10 + (c - 48)
        else:
            return False
    out[0] = v
    return True


cdef inline bint _grid(object text, long long div, long long* out) noexcept:
    """Strict wire decimal on the grid ``div`` (0: no fast path) -> grid units in ``out``."""
    cdef long long v
    if div <= 0 or not _wire(text, &v):
        return False
    if v % div:
        return False  # off the grid: the Python parser names the rule
    out[0] = v // div
    return True


def levels(object rows, long long price_div, long long qty_div):
    """``[[price, qty], ...]`` -> ``((ticks, lots), ...)``, or None when the Python parser must decide."""
    cdef long long pv = 0, qv = 0
    if type(rows) is not list:
        return None
    out = []
    for row in <list>rows:
        if type(row) is not list or len(<list>row) != 2:
            return None
        if not _grid((<list>row)[0], price_div, &pv) or not _grid((<list>row)[1], qty_div, &qv):
            return None
        out.append((pv, qv))
    return tuple(out)


cdef object _parse(dict fast, object ts, object payload):
    cdef long long a = 0, b = 0, c = 0, d = 0
    if type(payload) is not dict:
        return _FALLBACK
    stream = (<dict>payload).get("stream")
    if stream is not None:
        if type(stream) is not str or "@mmbot" in <str>stream:
            return _FALLBACK
        data = (<dict>payload).get("data")
    else:
        data = payload
    if type(data) is not dict:
        return _FALLBACK
    kind = (<dict>data).get("e")
    if kind is not None and type(kind) is not str:
        return _FALLBACK
    if kind is None and "lastUpdateId" in <dict>data:
        return _FALLBACK  # a snapshot: rare, the Python parser does it
    venue = (<dict>data).get("s")
    if type(venue) is not str:
        return _FALLBACK
    entry = fast.get(venue)
    if entry is None:
        return _FALLBACK
    symbol, price_div, qty_div = <tuple>entry
    if "pu" in <dict>data or "X" in <dict>data:
        return _FALLBACK  # a Binance futures diff or trade: the Python parser applies the futures rules
    if kind == "depthUpdate":
        bids = levels((<dict>data)["b"], price_div, qty_div)
        asks = levels((<dict>data)["a"], price_div, qty_div)
        if bids is None or asks is None:
            return _FALLBACK
        return _tuple_new(BookDelta, (symbol, ts, int((<dict>data)["E"]) * 1_000_000, int((<dict>data)["U"]), int((<dict>data)["u"]), bids, asks, -1))
    if kind == "trade":
        if not _grid((<dict>data)["p"], price_div, &a) or not _grid((<dict>data)["q"], qty_div, &b):
            return _FALLBACK
        return _tuple_new(Trade, (symbol, ts, int((<dict>data)["T"]) * 1_000_000, int((<dict>data)["t"]), a, b, bool((<dict>data)["m"])))
    if kind is None and "b" in <dict>data and "a" in <dict>data and "u" in <dict>data:
        if (not _grid((<dict>data)["b"], price_div, &a) or not _grid((<dict>data)["B"], qty_div, &b)
                or not _grid((<dict>data)["a"], price_div, &c) or not _grid((<dict>data)["A"], qty_div, &d)):
            return _FALLBACK
        return _tuple_new(BestBidAsk, (symbol, ts, int((<dict>data)["u"]), a, b, c, d))
    return _FALLBACK


def decides(dict fast, object ts, object payload):
    """True when the compiled decoder builds this payload's event itself (no Python fallback)."""
    try:
        return _parse(fast, ts, payload) is not _FALLBACK
    except Exception:
        return False


def parse(dict fast, object python_parse, object ts, object payload):
    """One decoded JSON payload -> event, the compiled way when it can, else ``python_parse``.

    ``fast``: venue symbol -> (symbol, price divisor, quantity divisor), the divisors of
    mmbot.marketdata.capture's fast parser (0 when that grid has none).
    """
    try:
        event = _parse(fast, ts, payload)
    except Exception:
        event = _FALLBACK  # a missing field or a bad number: the Python parser names the rule
    if event is _FALLBACK:
        return python_parse(ts, payload)
    return event


# --------------------------------------------------------------------------- book sides

def side_apply(dict levels, list heap, tuple updates, bint is_bid):
    """mmbot.marketdata.book._Side.apply: set every (price, qty) of a diff (qty 0 deletes)."""
    cdef object price, qty
    for price, qty in updates:
        if qty:
            if price not in levels:
                heappush(heap, -price if is_bid else price)
            levels[price] = qty
        elif price in levels:
            del levels[price]


def side_best(dict levels, list heap, bint is_bid):
    """mmbot.marketdata.book._Side.best: the best price (None for an empty side); the lazy
    heap drops deleted prices and is rebuilt in place when it outgrows the level map."""
    if is_bid:
        while heap and -heap[0] not in levels:
            heappop(heap)
    else:
        while heap and heap[0] not in levels:
            heappop(heap)
    if not heap:
        return None
    if len(heap) > 4 * len(levels) + 256:
        heap[:] = [-p for p in levels] if is_bid else list(levels)
        heapify(heap)
    return -heap[0] if is_bid else heap[0]
