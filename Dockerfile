# mmbot containers, multi-stage: venvs are built from the lock files (requirements/*.lock) in
# build stages and copied into slim runtime stages.
#
#   docker build -t mmbot:local .                          # the daemon (default, last stage): lean runtime
#   docker build --target research -t mmbot:research .     # + the research extra (reports, optimize, Dask)
#
# No dockerfile syntax directive and no heredocs: the offline builder cannot fetch frontends.
# setup.py builds the compiled per-event path when the stage has a C compiler; this slim
# stage has none, so the image runs the pure-Python fallback (identical results, issue 31).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, pinned by the lock: this layer is rebuilt only when the lock changes.
COPY requirements/runtime.lock requirements/research.lock ./requirements/
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements/runtime.lock
COPY pyproject.toml setup.py README.md ./
COPY mmbot ./mmbot
# --no-deps: everything mmbot needs came from the lock above; pip check proves it is complete.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -c "import mmbot.cli.main"

# The research venv: the daemon's plus the research extra, pinned by its lock.
FROM build AS build-research
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements/research.lock \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -c "import mmbot.research.grid, plotly, matplotlib, pyarrow, dask.distributed"

# Trim the daemon's venv (216 MB -> about 190 MB): strip the debug symbols of the extension
# modules (not the auditwheel-patched *.libs, which stripping breaks), drop pip and setuptools
# (the image is not a build environment) and the test suites numpy and ccxt ship.
FROM build AS build-daemon
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN site=/opt/venv/lib/python3.11/site-packages \
    && find "$site" -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/python -m pip uninstall -y -q pip setuptools \
    && rm -rf "$site"/numpy/*/tests "$site"/numpy/tests "$site"/ccxt/test \
    && /opt/venv/bin/python -c "import mmbot.cli.main, ccxt, ccxt.pro, ccxt.async_support, numpy, uvloop, aiohttp, pydantic_core, yaml, orjson, cryptography.hazmat.bindings._rust; numpy.linalg.inv(numpy.eye(3))"

# What both images share: the non-root user, the state volume, health, signals.
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="mmbot" \
      org.opencontainers.image.description="Market-making daemon: paper trading, backtests, sandbox trading through ccxt"
# Non-root; the journal, summary and state live on a volume so the root filesystem can be read-only.
RUN useradd --system --uid 10001 --home-dir /var/lib/mmbot --shell /usr/sbin/nologin mmbot \
    && mkdir -p /var/lib/mmbot \
    && chown 10001:10001 /var/lib/mmbot
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp \
    NUMBA_CACHE_DIR=/tmp \
    MMBOT_AUDIT__DIR=/var/lib/mmbot/journal \
    MMBOT_LOG__FORMAT=json
WORKDIR /var/lib/mmbot
VOLUME ["/var/lib/mmbot"]
# Metrics and health; the daemon binds 127.0.0.1 unless MMBOT_METRICS__HOST is set
# (compose and k8s set it to 0.0.0.0 explicitly so the port can be published/scraped).
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]

# mmbot:research - backtest reports, mmbot optimize (numba, Dask), parquet/feather bars.
FROM runtime AS research
COPY --from=build-research /opt/venv /opt/venv
USER 10001
CMD ["mmbot", "--help"]

# mmbot (default target) - the daemon: paper trading on the bundled capture, looped.
FROM runtime AS daemon
COPY --from=build-daemon /opt/venv /opt/venv
USER 10001
# Exec form: python is PID 1 and receives SIGTERM/SIGUSR1 directly.
CMD ["mmbot", "run", "--loop", "--no-status", "--summary-json", "/var/lib/mmbot/summary.json"]
