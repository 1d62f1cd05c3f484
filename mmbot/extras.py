"""Optional dependency groups (the ``[project.optional-dependencies]`` of pyproject.toml) and
the one message a command gives when the group it needs is not installed.

The daemon's runtime (``pip install mmbot``) is what ``mmbot run`` needs in every mode
(paper, sandbox, live), plus ``ctl``, ``emulate``, ``audit``, ``check-config`` and the
L2/bar backtests without a report. The heavy research stack is an extra:

===============  ==================================================  ========================
extra            modules                                             needed by
===============  ==================================================  ========================
``research``     plotly, matplotlib                                  ``--report``, ``mmbot report``
``research``     numba (grid kernels), dask + distributed            ``mmbot optimize``
``research``     pyarrow                                             parquet/feather ``--bars``
``backtrader``   backtrader                                          ``MarketMakerAdapter.to_backtrader()``
===============  ==================================================  ========================

:func:`require` is called right before the first heavy import (and, by the commands, before
any work starts, so a long backtest does not end in an ImportError). A missing module raises
:class:`MissingExtra`, a ``ConfigError`` (exit 2: the install is incomplete for the command
asked), whose message names the feature, the missing modules and the ``pip install`` line.
Only ``importlib.util.find_spec`` runs: nothing heavy is imported by the check itself.
"""

from __future__ import annotations

import importlib.util

from mmbot.errors import ConfigError

RESEARCH = "research"
BACKTRADER = "backtrader"
REPORT_MODULES = ("plotly", "matplotlib")
OPTIMIZE_MODULES = ("numba",)
DASK_MODULES = ("dask", "distributed")
ARROW_MODULES = ("pyarrow",)


class MissingExtra(ConfigError):
    """A command needs an optional dependency group that is not installed (exit 2)."""

    def __init__(self, feature: str, extra: str, missing: list[str]) -> None:
        self.feature, self.extra, self.missing = feature, extra, missing
        super().__init__(
            f"{feature} needs the {extra} extra ({', '.join(missing)} not installed): pip install 'mmbot[{extra}]'"
        )


def installed(module: str) -> bool:
    """True when ``module`` can be imported (found on the path; a finder that refuses it, or a
    broken parent package, counts as not installed)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds it with no spec (or None)
        return False


def require(extra: str, feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` naming ``feature`` unless every module in ``modules`` is installed."""
    missing = [m for m in modules if not installed(m)]
    if missing:
        raise MissingExtra(feature, extra, missing)
