"""The monitoring stack's files agree with each other: compose mounts files that exist at
the paths the configs name, the dashboard uses the provisioned data source, every alert has
a severity and a runbook section in docs/monitoring.md, every alert is unit-tested in
alerts_test.yml, and the metric names documented are the ones used."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from monitoring_helpers import metric_names_in

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitoring"


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MON / "prometheus" / "alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_severity_runbook_and_both_kinds_of_test() -> None:
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", docs, flags=re.MULTILINE)
    }
    tests = yaml.safe_load((MON / "prometheus" / "alerts_test.yml").read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for t in case.get("alert_rule_test", []):
            (firing if t["exp_alerts"] else quiet).add(t["alertname"])
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith("docs/monitoring.md#"), name
        assert runbook.split("#", 1)[1] in anchors, f"{name}: no section {runbook}"
        assert name in firing and name in quiet, f"{name} is not tested firing and quiet"


def test_compose_monitoring_profile_mounts_the_project_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "alertmanager", "grafana"):
        service = services[name]
        assert service["profiles"] == ["monitoring"], name
        assert service["network_mode"] == "host", name
        for mount in service["volumes"]:
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    mounted = dict(m.split(":")[:2] for m in services["prometheus"]["volumes"])
    prom = yaml.safe_load((MON / "prometheus" / "prometheus.yml").read_text())
    assert mounted["./monitoring/prometheus/alerts.yml"] in prom["rule_files"]
    # everything listens on loopback only
    assert "--web.listen-address=127.0.0.1:9090" in services["prometheus"]["command"]
    assert "--web.listen-address=127.0.0.1:9093" in services["alertmanager"]["command"]
    assert services["grafana"]["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    provider = yaml.safe_load(
        (MON / "grafana" / "provisioning" / "dashboards" / "condomanage.yml").read_text()
    )
    dash_mount = dict(m.split(":")[:2] for m in services["grafana"]["volumes"])
    assert Path(dash_mount["./monitoring/grafana/condomanage.json"]).parent == Path(
        provider["providers"][0]["options"]["path"]
    )


def test_dashboard_uses_the_provisioned_datasource() -> None:
    source = yaml.safe_load(
        (MON / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    dashboard = json.loads((MON / "grafana" / "condomanage.json").read_text())
    assert dashboard["uid"] == "condomanage"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_docs_list_every_metric_the_rules_and_dashboard_use() -> None:
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    rules = (MON / "prometheus" / "alerts.yml").read_text()
    dashboard = (MON / "grafana" / "condomanage.json").read_text()
    for name in metric_names_in(rules) | metric_names_in(dashboard):
        base = name.removesuffix("_total")
        assert f"`{base}" in docs, f"docs/monitoring.md does not describe {name}"
