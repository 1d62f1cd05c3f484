"""Which per-event path this process runs: ``compiled`` or ``pure`` (issue 31).

The compiled path is mmbot/marketdata/_speedups.pyx (Cython, built by ``pip install``
when a C compiler is there); ``MMBOT_PURE_PYTHON=1`` forces the pure-Python fallback.
Both give identical results (tests/golden). Read by the golden-fill and compiled-path
tests, which must know which path they exercised, and by benchmarks/profile_events.py.
"""

from __future__ import annotations

from mmbot.marketdata import book, capture


def per_event_path() -> str:
    """``compiled`` when the decoder and the book both use the extension, else ``pure``."""
    return "compiled" if capture.COMPILED and book.COMPILED else "pure"
