"""Alert routing as shipped: deploy/alertmanager (amtool), its wiring into compose and k8s,
the PrometheusRule kept equal to alerts.yml, and the alert log receiver."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmbot.observability.alert_log import AlertLog, alert_lines
from tests.conftest import ROOT
from tests.observability.conftest import tool

AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
K8S = ROOT / "deploy" / "k8s"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def amtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("amtool"), "check-config", str(path)], capture_output=True, text=True, timeout=30)


def test_alertmanager_config_when_checked_by_amtool_then_valid_with_webhook_default(tmp_path: Path) -> None:
    result = amtool_check(AM_CONFIG)
    config = yaml.safe_load(AM_CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}

    assert result.returncode == 0, result.stdout + result.stderr
    assert config["route"]["receiver"] == "webhook"
    assert receivers["webhook"]["webhook_configs"][0]["send_resolved"] is True
    assert {m for r in config["route"]["routes"] for m in r["matchers"]} == {'severity="page"', 'severity="warning"'}


def test_alertmanager_config_when_telegram_and_slack_uncommented_then_still_valid(tmp_path: Path) -> None:
    lines = []
    for line in AM_CONFIG.read_text().splitlines():
        if line.startswith("  # - name:"):
            line = "  - name:" + line[len("  # - name:"):]
        elif line.startswith("  #   "):
            line = "    " + line[len("  #   "):]
        lines.append(line)
    uncommented = tmp_path / "alertmanager.yml"
    uncommented.write_text("\n".join(lines) + "\n")

    result = amtool_check(uncommented)
    names = {r["name"] for r in yaml.safe_load(uncommented.read_text())["receivers"]}

    assert result.returncode == 0, result.stdout + result.stderr
    assert names == {"webhook", "telegram", "slack"}


def test_alertmanager_config_when_route_names_unknown_receiver_then_amtool_fails(tmp_path: Path) -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    config["route"]["routes"][0]["receiver"] = "pager-duty-typo"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(config))

    result = amtool_check(bad)

    assert result.returncode != 0
    assert "pager-duty-typo" in result.stdout + result.stderr


def test_compose_when_read_then_alertmanager_wired_to_prometheus_and_the_alert_log() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    prom_config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-compose.yml").read_text())
    targets = [t for am in prom_config["alerting"]["alertmanagers"] for c in am["static_configs"] for t in c["targets"]]
    webhook = yaml.safe_load(AM_CONFIG.read_text())["receivers"][0]["webhook_configs"][0]["url"]
    am, log = services["alertmanager"], services["alert-log"]

    assert targets == ["alertmanager:9093"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    assert "--cluster.listen-address=" in am["command"]
    assert log["command"][:3] == ["python", "-m", "mmbot.observability.alert_log"]
    assert webhook == f"http://alert-log:{log['command'][log['command'].index('--port') + 1]}/alerts"
    assert am["profiles"] == log["profiles"] == ["alerts"]


def test_k8s_prometheusrule_when_compared_then_equals_alerts_yml_and_matches_the_crd() -> None:
    from cloudcoil.models.prometheus_operator.v1 import PrometheusRule

    doc = load_all(K8S / "prometheusrule.yaml")[0]
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    parsed = PrometheusRule.model_validate(doc).model_dump(by_alias=True, exclude_unset=True, mode="json")

    assert doc["spec"]["groups"] == alerts["groups"], "regenerate it: make k8s-rules"
    assert parsed == doc  # nothing dropped as an unknown field


def test_k8s_alerting_when_validated_then_crd_strict_and_workloads_valid() -> None:
    import kubernetes_validate
    from cloudcoil.models.prometheus_operator.v1alpha1 import AlertmanagerConfig

    docs = load_all(K8S / "alerting.yaml")
    amc = next(d for d in docs if d["kind"] == "AlertmanagerConfig")
    service = next(d for d in docs if d["kind"] == "Service")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    parsed = AlertmanagerConfig.model_validate(amc).model_dump(by_alias=True, exclude_unset=True, mode="json")
    typo = copy.deepcopy(amc)
    typo["spec"]["receivers"][0]["webhookConfig"] = typo["spec"]["receivers"][0].pop("webhookConfigs")

    assert parsed == amc
    assert AlertmanagerConfig.model_validate(typo).model_dump(by_alias=True, exclude_unset=True, mode="json") != typo
    for doc in (service, deployment):
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    url = amc["spec"]["receivers"][0]["webhookConfigs"][0]["url"]
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/alerts"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


PAYLOAD = {
    "version": "4", "status": "firing", "receiver": "webhook", "groupKey": "{}:{alertname=\"MmbotKillSwitchEngaged\"}",
    "alerts": [{
        "status": "firing", "startsAt": "2026-12-07T23:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "labels": {"alertname": "MmbotKillSwitchEngaged", "severity": "page", "symbol": "BTC/USDT", "instance": "bot:9464"},
        "annotations": {"summary": "kill switch engaged on BTC/USDT (bot:9464)"},
    }],
}  # fmt: skip


def test_alert_lines_when_payload_then_one_record_per_alert_and_garbage_refused() -> None:
    (line,) = alert_lines(PAYLOAD)

    assert line["alertname"] == "MmbotKillSwitchEngaged" and line["status"] == "firing" and line["symbol"] == "BTC/USDT"
    assert line["receiver"] == "webhook" and line["summary"].startswith("kill switch engaged")
    for bad in (None, [], {"alerts": "x"}, {"alerts": [1]}):
        with pytest.raises(ValueError, match="not"):
            alert_lines(bad)


def test_alert_log_when_posted_then_json_line_and_400_for_garbage() -> None:
    out = io.StringIO()
    sink = AlertLog("127.0.0.1", 0, out)
    thread = threading.Thread(target=sink.server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{sink.port}"
        ok = urllib.request.urlopen(urllib.request.Request(base + "/alerts", data=json.dumps(PAYLOAD).encode(), method="POST"), timeout=5)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(base + "/alerts", data=b"{nope", method="POST"), timeout=5)
        health = urllib.request.urlopen(base + "/healthz", timeout=5)
    finally:
        sink.server.shutdown()
        sink.server.server_close()
    records = [json.loads(line) for line in out.getvalue().splitlines()]

    assert ok.status == 200 and health.status == 200 and refused.value.code == 400
    assert [r["event"] for r in records] == ["alert", "alert_payload_refused"]
    assert records[0]["alertname"] == "MmbotKillSwitchEngaged" and sink.received == 1


def test_tool_when_alertmanager_missing_then_fails_naming_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y --no-install-recommends prometheus-alertmanager"):
        tool("prometheus-alertmanager")
