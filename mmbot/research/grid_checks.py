"""What an optimiser result must say about itself so it cannot flatter.

Pure checks on a :class:`~mmbot.research.optimize.GridResult` (both the bar grid and
any later grid that fills one), shown as a banner and warnings by the report
(:mod:`mmbot.research.grid_report`) and by ``mmbot optimize`` on the console:

* **nothing profitable**: every combination's ``net_pnl`` <= 0 (the best is then
  the smallest loss, not a strategy);
* **best on the grid's edge**: for each parameter with at least two grid values, the
  best combination's value is the smallest or the largest tried, so the optimum may
  lie outside the grid;
* **redundant dimensions**: a parameter whose every value gives identical objectives
  when the other four are held fixed (its axis changes nothing);
* **redundant pairs**: two parameters whose results depend only on their ratio or
  product (the seed's ``skew_factor`` and ``max_inventory``: the skew is
  ``skew_factor x q / max_inventory``), and how many distinct results the grid has;
* **identical results among the top**: ranks whose objective rows are equal to an
  earlier rank's (e.g. ``max_inventory`` and ``skew_factor`` scaling together), listed
  so a user does not read them as separate candidates.

"Identical" means the same trading outcome: equal net and gross PnL, fees, Sharpe, max
drawdown, fill rate, fills, orders, fills per side, max and final inventory (NaN equal
to NaN). ``inventory_balance`` and ``time_at_max_inventory`` are left out: they are
measured against the configured limit, so two runs with the same trades but different
``max_inventory`` differ in them and nothing else.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from mmbot.research.grid import COL, OBJECTIVE_NAMES, PARAM_NAMES
from mmbot.research.optimize import GridResult

PAIR_SHARE = 0.05  # report a partly redundant pair when this share of the grid repeats
LIMIT_RELATIVE = ("inventory_balance", "time_at_max_inventory")  # depend on the limit, not on the trades
OUTCOME_COLS = [COL[n] for n in OBJECTIVE_NAMES if n not in LIMIT_RELATIVE]


def _row_key(objectives: np.ndarray, k: int) -> bytes:
    row = np.nan_to_num(objectives[k, OUTCOME_COLS], nan=np.inf)  # NaN == NaN for the comparison
    return bytes(row.tobytes())


def no_profitable_banner(result: GridResult, quote_ccy: str = "") -> str | None:
    """The banner when no combination made money, else None."""
    if result.size == 0:
        return None
    pnl = result.objectives[:, COL["net_pnl"]]
    best = float(np.nanmax(pnl)) if np.isfinite(pnl).any() else float("nan")
    if best > 0:
        return None
    unit = f" {quote_ccy}" if quote_ccy else ""
    return (
        f"No combination is profitable: all {result.size} combinations lose money or break even "
        f"(best net PnL {best:,.2f}{unit}). The ranking shows the smallest loss, not a strategy to run."
    )


def edge_warnings(result: GridResult, best: int) -> list[str]:
    """One line per parameter whose best value sits on the edge of the values tried."""
    out = []
    combo = result.combo(best)
    for j, name in enumerate(PARAM_NAMES):
        values = sorted(set(result.params[:, j].tolist()))
        if len(values) < 2:
            continue
        v = combo[name]
        if v == values[0] or v == values[-1]:
            side = "lowest" if v == values[0] else "highest"
            out.append(
                f"best {name}={v:g} is the {side} value tried ({values[0]:g} .. {values[-1]:g}): "
                "the optimum may lie outside the grid; extend it on that side"
            )
    return out


def redundant_dimensions(result: GridResult) -> list[str]:
    """Parameters (with >= 2 values) whose value never changes the results, others fixed."""
    out = []
    for j, name in enumerate(PARAM_NAMES):
        if len(set(result.params[:, j].tolist())) < 2:
            continue
        others = [i for i in range(len(PARAM_NAMES)) if i != j]
        groups: dict[bytes, set[bytes]] = defaultdict(set)
        for k in range(result.size):
            groups[bytes(result.params[k, others].tobytes())].add(_row_key(result.objectives, k))
        if groups and all(len(rows) == 1 for rows in groups.values()):
            out.append(f"{name}: every value gives identical results with the other parameters fixed (a redundant dimension)")
    return out


def redundant_pairs(result: GridResult) -> list[str]:
    """Pairs of parameters that act through their ratio or product (others fixed): the
    combinations that repeat the trading outcome of another combination with the same
    ratio (product) but different values. The seed's skew is ``skew_factor x q /
    max_inventory``, so equal ``skew_factor / max_inventory`` gives equal quotes until the
    inventory limit binds. Reported when all combinations (fully redundant) or at least
    ``PAIR_SHARE`` of them repeat."""
    out = []
    names = PARAM_NAMES
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = result.params[:, i], result.params[:, j]
            if len(set(a.tolist())) < 2 or len(set(b.tolist())) < 2:
                continue
            others = [m for m in range(len(names)) if m not in (i, j)]
            for label, combined in (("ratio", _safe_ratio(b, a)), ("product", a * b)):
                groups: dict[bytes, list[int]] = defaultdict(list)
                for k in range(result.size):
                    key = bytes(result.params[k, others].tobytes()) + f"{combined[k]:.12g}".encode()
                    groups[key].append(k)
                repeats = 0
                multi = [g for g in groups.values() if len(g) > 1]
                for g in multi:
                    seen: dict[bytes, int] = {}
                    for k in g:
                        key = _row_key(result.objectives, k)
                        if key in seen:
                            repeats += 1
                        else:
                            seen[key] = k
                in_groups = sum(len(g) for g in multi)
                if not in_groups or repeats == 0:
                    continue
                what = f"{names[j]} / {names[i]}" if label == "ratio" else f"{names[i]} x {names[j]}"
                if repeats == in_groups - len(multi):
                    out.append(f"{names[i]} and {names[j]} are redundant together: the results depend only on {what}")
                    break
                if repeats >= PAIR_SHARE * result.size:
                    out.append(
                        f"{names[i]} and {names[j]} are partly redundant: {repeats} of {result.size} combinations repeat "
                        f"the results of another with the same {what}"
                    )
                    break
    return out


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def distinct_results_line(result: GridResult) -> str | None:
    """How many distinct trading outcomes the grid produced, when fewer than combinations."""
    distinct = len({_row_key(result.objectives, k) for k in range(result.size)})
    if distinct >= result.size:
        return None
    return f"{result.size} combinations give only {distinct} distinct results"


def identical_ranks(result: GridResult, order: list[int], top: int) -> list[str]:
    """Lines naming ranks (1-based, within ``top``) whose results equal an earlier rank's."""
    first_rank: dict[bytes, int] = {}
    same: dict[int, list[int]] = defaultdict(list)
    for rank, k in enumerate(order[:top], start=1):
        key = _row_key(result.objectives, k)
        if key in first_rank:
            same[first_rank[key]].append(rank)
        else:
            first_rank[key] = rank
    return [
        f"ranks {', '.join(str(r) for r in [first, *later])} have identical results "
        f"(their parameters differ only in ways that change nothing)"
        for first, later in sorted(same.items())
    ]


def grid_warnings(result: GridResult, order: list[int], top: int) -> list[str]:
    """Edge, redundancy and identical-rank warnings for a ranking ``order``."""
    if not order:
        return []
    distinct = distinct_results_line(result)
    return [
        *edge_warnings(result, order[0]),
        *redundant_dimensions(result),
        *redundant_pairs(result),
        *([distinct] if distinct else []),
        *identical_ranks(result, order, top),
    ]


def grid_notes(result: GridResult, order: list[int], top: int, quote_ccy: str = "") -> list[str]:
    """The console lines: the banner (if any) first, then each warning."""
    banner = no_profitable_banner(result, quote_ccy)
    return [*([f"WARNING: {banner}"] if banner else []), *(f"warning: {w}" for w in grid_warnings(result, order, top))]
