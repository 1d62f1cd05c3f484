"""The daemon on the bundled replay, scraped by a real Prometheus (Debian's), dashboard and alerts checked live."""

from __future__ import annotations

import signal
import time

import pytest

from tests.observability.conftest import concrete, dashboard_exprs, http_get, listening_addresses, prom_api, wait_for


@pytest.mark.prometheus
@pytest.mark.slow
def test_prometheus_when_scraping_the_daemon_every_panel_has_data_and_kill_switch_alert_fires(
    start_daemon, start_prometheus
) -> None:
    daemon = start_daemon("run", "--speed", "1", "--loop", "--no-status")
    port = daemon.wait_metrics_port()
    listening = listening_addresses(port)
    wait_for(lambda: http_get(f"{daemon.base}/readyz")[0] == 200, 30, "/readyz to say ready")
    prom = start_prometheus(port)
    t0 = time.monotonic()

    # First sample: about 5-6 s after Prometheus starts (its scrape manager's start-up tick).
    wait_for(lambda: [r for r in prom.query('up{job="mmbot"}') if r["value"][1] == "1"], 30, "the first scrape")
    first_sample_s = time.monotonic() - t0
    # rate() needs two samples in its window: wait for a second scrape of a moving counter.
    wait_for(lambda: prom.query("rate(mmbot_book_updates_total[1m]) > 0"), 20, "a second scrape")
    exprs = dashboard_exprs()
    pending = {i: concrete(expr) for i, (_, expr) in enumerate(exprs)}
    results: dict[int, list[dict[str, object]]] = {}

    def all_panels_have_data() -> bool:
        for i in list(pending):
            result = prom.query(pending[i])
            if result:
                results[i] = result
                del pending[i]
        return not pending

    wait_for(all_panels_have_data, 20, "every dashboard panel query to return data", step=0.5)
    book_updates = float(prom.query('mmbot_book_updates_total{symbol="BTC/USDT"}')[0]["value"][1])
    targets = prom_api(prom.base, "/api/v1/targets")["activeTargets"]
    before = [a for a in prom_api(prom.base, "/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "MmbotKillSwitchEngaged"]

    daemon.proc.send_signal(signal.SIGUSR1)
    t_signal = time.monotonic()
    firing = wait_for(
        lambda: [
            a
            for a in prom_api(prom.base, "/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == "MmbotKillSwitchEngaged" and a["state"] == "firing"
        ],
        30,
        "the MmbotKillSwitchEngaged alert to fire",
    )
    fired_after_s = time.monotonic() - t_signal
    halted = prom.query('mmbot_risk_state{symbol="BTC/USDT"}')[0]["value"][1]
    ready_status, _ = http_get(f"{daemon.base}/readyz")
    code = daemon.stop()

    assert listening == {"127.0.0.1"}
    assert not pending, [exprs[i] for i in pending]
    assert len(results) == len(exprs)
    assert book_updates > 0
    assert [t["health"] for t in targets] == ["up"]
    assert before == []
    assert firing[0]["labels"]["symbol"] == "BTC/USDT"
    assert firing[0]["labels"]["severity"] == "page"
    assert firing[0]["annotations"]["summary"].startswith("kill switch engaged on BTC/USDT")
    assert halted == "2"
    assert ready_status == 200  # the kill switch halts trading; the daemon stays ready (synced, connected)
    assert code == 0
    print(f"first sample after {first_sample_s:.1f} s; kill-switch alert firing {fired_after_s:.1f} s after SIGUSR1")
