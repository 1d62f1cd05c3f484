"""deploy/prometheus and deploy/grafana checked offline with Debian's promtool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.conftest import DASHBOARD, DEPLOY, PROM_DIR, concrete, dashboard_exprs, tool

REQUIRED_ALERTS = {
    "MmbotKillSwitchEngaged",
    "MmbotRiskHalted",
    "MmbotBookStale",
    "MmbotDrawdownHigh",
    "MmbotNoFillsWhileActive",
    "MmbotRejectRateHigh",
    "MmbotReconnectStorm",
    "MmbotDown",
    "MmbotInventoryNearLimit",
    "MmbotMarkoutWorsening",
    "MmbotQuotingStoppedWhileHealthy",
}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload,no-any-return]


def test_prometheus_config_when_checked_by_promtool_is_valid(promtool: str) -> None:
    result = run([promtool, "check", "config", str(PROM_DIR / "prometheus.yml")])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_when_checked_by_promtool_are_valid_and_complete(promtool: str) -> None:
    result = run([promtool, "check", "rules", str(PROM_DIR / "alerts.yml")])
    rules = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    kill = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "MmbotKillSwitchEngaged")

    assert result.returncode == 0, result.stdout + result.stderr
    assert names >= REQUIRED_ALERTS, REQUIRED_ALERTS - names
    assert kill["for"] in ("0s", "1s", "2s", "5s")  # short: the integration test waits for it to fire
    assert all(r["labels"]["severity"] in ("page", "warning") for g in rules["groups"] for r in g["rules"])


def test_alert_rules_when_unit_tested_with_promtool_all_pass(promtool: str) -> None:
    result = run([promtool, "test", "rules", str(PROM_DIR / "alerts_test.yml")])
    tested = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())
    covered = {case["alertname"] for t in tested["tests"] for case in t.get("alert_rule_test", [])}
    fired = {
        case["alertname"] for t in tested["tests"] for case in t.get("alert_rule_test", []) if case["exp_alerts"]
    }

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert fired >= REQUIRED_ALERTS, REQUIRED_ALERTS - fired
    assert covered == fired  # every tested alert is also shown firing


def test_alert_rules_when_an_expression_is_broken_promtool_fails(promtool: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum(rate(mmbot_fills_total[1m]) by (side)'}]}]\n")

    result = run([promtool, "check", "rules", str(bad)])

    assert result.returncode == 1
    assert "parse error" in (result.stdout + result.stderr)


def test_dashboard_when_every_expr_is_parsed_by_promtool_is_valid(promtool: str, tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    rules = [{"record": f"dash:expr_{i}", "expr": concrete(expr, "x")} for i, (_, expr) in enumerate(exprs)]
    path = tmp_path / "dash_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run([promtool, "check", "rules", str(path)])

    assert len(exprs) >= 20
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_dashboard_json_when_loaded_has_grafana_structure_and_provisioned_datasource() -> None:
    dash = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/mmbot.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    titles = " ".join(p["title"].lower() for p in panels)
    variables = {v["name"] for v in dash["templating"]["list"]}

    assert {"title", "panels", "schemaVersion", "uid"} <= set(dash)
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == uid and p["datasource"]["type"] == "prometheus" for p in panels)
    assert all(len({t["refId"] for t in p["targets"]}) == len(p["targets"]) for p in panels)
    assert all(p["gridPos"]["x"] >= 0 and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels)
    for topic in ("pnl", "inventory", "spread", "fills", "risk state", "staleness", "latency", "errors"):
        assert topic in titles, topic
    assert variables == {"instance", "symbol"}
    assert datasources["apiVersion"] == 1 and datasources["datasources"][0]["type"] == "prometheus"
    assert providers["providers"][0]["type"] == "file"


def test_metrics_exposition_when_linted_by_promtool_has_no_problems(promtool: str) -> None:
    from mmbot.config.settings import load_settings
    from mmbot.observability.metrics import Metrics
    from mmbot.wiring import build_replay

    built = build_replay(load_settings(environ={}), "20260101T000000Z-test0000")
    metrics = Metrics(version="0.1.0", config_hash="abc", mode="paper")
    metrics.add_engine(built.engine)

    result = run([promtool, "check", "metrics"], input=metrics.exposition().decode())

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_tool_when_prometheus_binary_missing_fails_with_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y --no-install-recommends prometheus") as failure:
        tool("promtool")

    assert "promtool not found" in str(failure.value)
