"""A webhook receiver for Alertmanager that writes every alert as one JSON line to stdout.

The default receiver of ``deploy/alertmanager/alertmanager.yml`` in docker compose
(``docker compose logs alert-log`` shows what would have paged someone) and the
receiving end of the Alertmanager integration test. Real notifications go to the
Telegram or Slack receivers commented in that file, or to any webhook.

::

    python -m mmbot.observability.alert_log --host 127.0.0.1 --port 9095

``POST`` any path with Alertmanager's webhook payload (version 4): one line per alert,
``{"event": "alert", "status": "firing"|"resolved", "alertname", "severity", "symbol",
"instance", "summary", "starts_at", "ends_at", "receiver", "group_key"}``; answers
200. A body that is not such a payload answers 400 and logs ``alert_payload_refused``.
``GET /healthz`` answers 200 ``ok``. Standard library only: it runs in the lean image.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

MAX_BODY = 1 << 20  # Alertmanager batches alerts per group; 1 MiB is far above a real payload


def alert_lines(payload: Any) -> list[dict[str, Any]]:
    """The log records of one webhook payload; ValueError if it is not Alertmanager's format."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    out = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            raise ValueError("an alert is not a JSON object")
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        out.append({
            "event": "alert", "status": alert.get("status"), "alertname": labels.get("alertname"),
            "severity": labels.get("severity"), "symbol": labels.get("symbol"), "instance": labels.get("instance"),
            "summary": annotations.get("summary"), "starts_at": alert.get("startsAt"), "ends_at": alert.get("endsAt"),
            "receiver": payload.get("receiver"), "group_key": payload.get("groupKey"),
        })  # fmt: skip
    return out


class AlertLog:
    def __init__(self, host: str, port: int, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.received = 0
        log = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    log.write({"event": "alert_payload_refused", "error": f"body of {length} bytes > {MAX_BODY}"})
                    self._answer(413, "too large")
                    return
                try:
                    lines = alert_lines(json.loads(self.rfile.read(length) or b"null"))
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    log.write({"event": "alert_payload_refused", "error": str(exc)[:200]})
                    self._answer(400, "not an Alertmanager webhook payload")
                    return
                for line in lines:
                    log.write(line)
                log.received += len(lines)
                self._answer(200, "ok")

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200, "ok")
                else:
                    self._answer(404, "POST alerts to any path; GET /healthz")

            def _answer(self, status: int, text: str) -> None:
                body = (text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # one JSON line per alert on stdout, no access log on stderr

        self.server = ThreadingHTTPServer((host, port), Handler)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def write(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmbot.observability.alert_log", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9095, help="port; 0 = any free port (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        sink = AlertLog(args.host, args.port, sys.stdout)
    except OSError as exc:
        print(f"error: alert log cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    sink.write({"event": "alert_log_listening", "host": args.host, "port": sink.port})
    try:
        sink.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sink.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
