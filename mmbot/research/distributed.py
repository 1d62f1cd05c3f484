"""Run a parameter grid on a Dask distributed cluster.

``scheduler`` is either an address (``tcp://127.0.0.1:8786``: an existing
``dask scheduler`` with its ``dask worker`` processes) or ``"local"``: a
``LocalCluster`` of worker processes started here on 127.0.0.1 with the dashboard
disabled (Dask's HTTP servers bind 0.0.0.0 unless told otherwise).

Task overhead on Dask is about 2 ms per task on 2 cores, more than one combination
takes to run, so combinations are batched: ``chunks_per_thread`` tasks per worker
thread (default 2), each running a contiguous slice of the grid in the compiled
kernel. The bars are scattered once to every worker. Results are the same numbers
as a local run (same kernel, same inputs), so the ranking is identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from mmbot.errors import ConfigError, MmbotError
from mmbot.extras import DASK_MODULES, RESEARCH, require
from mmbot.research.grid import F64, OBJECTIVE_NAMES, GridRules, TickBars, param_matrix, run_chunk
from mmbot.research.optimize import GridResult, GridSpec, ProgressFn, chunk_bounds, default_workers, run_grid_local


def _chunk_task(bars: TickBars, params: F64, rules: GridRules, start: int) -> tuple[int, F64]:
    # Module-level so workers can unpickle it by reference.
    return start, run_chunk(bars, params, rules)


def _warm_task() -> float:
    from mmbot.research.grid import warm_up  # numba-compiled kernels: only for mmbot optimize

    return warm_up()


T = TypeVar("T")

SCHEMES = ("tcp://", "tls://", "inproc://", "ws://", "wss://")


def validate_scheduler(scheduler: str) -> str:
    """``local`` or a Dask address with its scheme; anything else is a usage error."""
    if scheduler != "local" and not scheduler.startswith(SCHEMES):
        raise ConfigError(f"--scheduler must be an address like tcp://127.0.0.1:8786 or 'local', was {scheduler!r}")
    return scheduler


def _connect(scheduler: str, workers: int | None) -> tuple[Any, Any]:
    require(RESEARCH, "mmbot optimize --scheduler (Dask)", *DASK_MODULES)
    from dask.distributed import Client, LocalCluster  # dask is heavy and optional: only with --scheduler/--workers

    if scheduler == "local":
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        return Client(cluster, timeout=30), cluster  # type: ignore[no-untyped-call]
    validate_scheduler(scheduler)
    try:
        client = Client(scheduler, timeout=10)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise MmbotError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    return client, None


class DaskGridSession:
    """One connection to a Dask cluster (and its LocalCluster, for ``"local"``) for several grid runs.

    Connect once, warm the workers' numba kernels once, then :meth:`run` any number of
    grids (a walk-forward runs one per window). Use as a context manager.
    """

    def __init__(self, scheduler: str, *, workers: int | None = None, wait_workers_s: float = 60.0, chunks_per_thread: int = 2,
                 warm: bool = True) -> None:
        self.scheduler = scheduler
        self.chunks_per_thread = chunks_per_thread
        self._client, self._cluster = _connect(scheduler, workers)
        try:
            want = workers or 1  # with an address, --workers N waits for N workers to join
            try:
                self._client.wait_for_workers(want, timeout=wait_workers_s)
            except TimeoutError as exc:
                raise MmbotError(f"fewer than {want} Dask worker(s) joined {scheduler} within {wait_workers_s:.0f} s") from exc
            info = self._client.scheduler_info()
            self.nthreads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1
            # Compile (or load numba's cache) on every worker before any grid is timed.
            self.warmup = {str(k): round(float(v), 3) for k, v in self._client.run(_warm_task).items()} if warm else {}
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DaskGridSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def address(self) -> str:
        return str(self._client.scheduler.address)

    def map_tasks(self, fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        """``fn(*args)`` for every tuple of ``tasks`` on the cluster; results as they complete."""
        from dask.distributed import as_completed  # dask is heavy and optional: only with --scheduler/--workers

        futures = [self._client.submit(fn, *args, pure=False) for args in tasks]
        for fut in as_completed(futures):  # type: ignore[no-untyped-call]
            yield fut.result()

    def run(self, bars: TickBars, params: F64, rules: GridRules, progress: ProgressFn | None = None) -> GridResult:
        """Same contract as :func:`mmbot.research.optimize.run_grid_local`."""
        from dask.distributed import as_completed  # dask is heavy and optional: only with --scheduler/--workers

        client = self._client
        n = params.shape[0]
        out = np.zeros((n, len(OBJECTIVE_NAMES)), dtype=np.float64)
        t0 = time.perf_counter()
        if progress:
            progress(0, n)
        # hash=False: a content-hashed key is shared with an earlier client's scatter of the
        # same object on the same cluster, which the scheduler may already have released
        # ("lost dependencies"); a fresh key per run is ours alone.
        [bars_f] = client.scatter([bars], broadcast=True, hash=False)
        rules_f = client.scatter(rules, broadcast=True, hash=False)
        futures = [
            client.submit(_chunk_task, bars_f, params[a:b], rules_f, a, pure=False)
            for a, b in chunk_bounds(n, self.nthreads * self.chunks_per_thread)
        ]
        done = 0
        for fut in as_completed(futures):  # type: ignore[no-untyped-call]
            start, chunk = fut.result()
            out[start : start + chunk.shape[0]] = chunk
            done += chunk.shape[0]
            if progress:
                progress(done, n)
        wall = time.perf_counter() - t0
        return GridResult(
            params=params,
            objectives=out,
            wall_seconds=wall,
            backend="dask",
            workers=self.nthreads,
            bars=len(bars),
            meta={"scheduler": str(client.scheduler.address), "tasks": len(futures), "worker_warmup_seconds": self.warmup},
        )


def run_grid_dask(
    bars: TickBars,
    params: F64,
    rules: GridRules,
    *,
    scheduler: str,
    workers: int | None = None,
    chunks_per_thread: int = 2,
    progress: ProgressFn | None = None,
    wait_workers_s: float = 60.0,
) -> GridResult:
    """One grid on a Dask cluster: connect, run, disconnect."""
    with DaskGridSession(scheduler, workers=workers, wait_workers_s=wait_workers_s, chunks_per_thread=chunks_per_thread) as session:
        return session.run(bars, params, rules, progress)


def run_grid(
    bars: TickBars,
    spec: GridSpec,
    rules: GridRules,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressFn | None = None,
    session: DaskGridSession | None = None,
) -> GridResult:
    """Local threads by default; a Dask cluster when ``scheduler`` is an address (or an open ``session``)."""
    params = param_matrix(spec.combinations())
    if session is not None:
        return session.run(bars, params, rules, progress)
    if scheduler:
        return run_grid_dask(bars, params, rules, scheduler=scheduler, workers=workers, progress=progress)
    return run_grid_local(bars, params, rules, workers=workers, progress=progress)
