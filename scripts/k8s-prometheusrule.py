"""Write deploy/k8s/prometheusrule.yaml from deploy/prometheus/alerts.yml (make k8s-rules).

prometheus-operator reads alert rules from PrometheusRule objects, not files; the rules
are the same (tests/deploy/test_alerting.py checks that the two agree).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "deploy" / "prometheus" / "alerts.yml"
TARGET = ROOT / "deploy" / "k8s" / "prometheusrule.yaml"
HEADER = """\
# Generated from deploy/prometheus/alerts.yml by `make k8s-rules`; edit that file, not this one.
# prometheus-operator: needs the monitoring.coreos.com/v1 CRDs; the "release" label must
# match your Prometheus CR's ruleSelector (kube-prometheus-stack: the Helm release name).
"""


def document() -> dict[str, object]:
    rules = yaml.safe_load(SOURCE.read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mmbot", "labels": {"app.kubernetes.io/name": "mmbot", "release": "kube-prometheus-stack"}},
        "spec": {"groups": rules["groups"]},
    }


def main() -> int:
    TARGET.write_text(HEADER + yaml.safe_dump(document(), sort_keys=False, width=120, allow_unicode=True))
    print(f"wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
