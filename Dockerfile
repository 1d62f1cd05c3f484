# mmbot container: multi-stage (build a venv, copy it into a slim runtime stage).
# No dockerfile syntax directive and no heredocs: the offline builder cannot fetch frontends.
# setup.py builds the compiled per-event path when the stage has a C compiler; this slim
# stage has none, so the image runs the pure-Python fallback (identical results, issue 31).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml setup.py README.md ./
COPY config ./config
COPY mmbot ./mmbot
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -c "import mmbot.app.cli"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="mmbot" \
      org.opencontainers.image.description="Market-making daemon: paper trading, backtests, sandbox trading through ccxt"
# Non-root; the journal, summary and state live on a volume so the root filesystem can be read-only.
RUN useradd --system --uid 10001 --home-dir /var/lib/mmbot --shell /usr/sbin/nologin mmbot \
    && mkdir -p /var/lib/mmbot \
    && chown 10001:10001 /var/lib/mmbot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp \
    NUMBA_CACHE_DIR=/tmp \
    MMBOT_AUDIT__DIR=/var/lib/mmbot/journal \
    MMBOT_LOG__FORMAT=json
WORKDIR /var/lib/mmbot
USER 10001
VOLUME ["/var/lib/mmbot"]
# Metrics and health; the daemon binds 127.0.0.1 unless MMBOT_METRICS__HOST is set
# (compose and k8s set it to 0.0.0.0 explicitly so the port can be published/scraped).
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]
# Exec form: python is PID 1 and receives SIGTERM/SIGUSR1 directly.
CMD ["mmbot", "run", "--loop", "--no-status", "--summary-json", "/var/lib/mmbot/summary.json"]
