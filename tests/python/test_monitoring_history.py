"""Run history end to end: real loads, a real `condo dbt build`, a real export, then what
ops.dbt_runs / ops.dbt_results / ops.exports / audit hold and what `condo monitor` and
`condo monitor serve` make of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from monitoring_helpers import ROOT, condo, exposed_names, free_port, metric_names_in

from spark_loaders.export.api import export_gold
from spark_loaders.export.models import MODEL_NAMES
from spark_loaders.ingest.api import ingest_files

pytestmark = pytest.mark.slow

ORPHAN = "tipo,condominio_id,valor\nCasa,999,250000.00\n"


def rows(info, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**info.psycopg_kwargs()) as conn:
        return conn.execute(sql, params).fetchall()


def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def scrape(env: dict[str, str]) -> str:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "spark_loaders.cli", "monitor", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    return r.read().decode()
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"monitor serve did not answer: {server.stderr.read()}"
                    ) from None
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)


def dashboard_exprs(path: Path) -> str:
    exprs: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(path.read_text()))
    return "\n".join(exprs)


def test_dbt_and_export_history_feed_the_monitor(
    spark, fresh_db, tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "target"
    env = {"DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(tmp_path / "logs")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "imoveis_orfao.csv").write_text(ORPHAN, encoding="utf-8")
    assert ingest_files(spark, [ROOT / "data" / "sample", extra], progress=False).ok

    build = condo("dbt", "build", "--exclude-resource-type", "unit_test", env=env)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-2000:]
    assert "history not recorded" not in build.stderr

    written = json.loads((target / "run_results.json").read_text())
    invocation = written["metadata"]["invocation_id"]
    [run] = rows(fresh_db, "select invocation_id, command, target, status from ops.dbt_runs")
    assert run == (invocation, "build", "postgres", "warn")
    stored = {
        r[0]: r[1:]
        for r in rows(
            fresh_db,
            "select unique_id, status, failures from ops.dbt_results where invocation_id = %s",
            (invocation,),
        )
    }
    assert stored.keys() == {r["unique_id"] for r in written["results"]}
    [orphan_test] = [k for k in stored if k.startswith("test.condomanage.orfaos_sao_reportados")]
    assert stored[orphan_test] == ("warn", 1)
    # the warn test stored the row it flagged
    assert rows(fresh_db, "select entidade, motivo from audit.orfaos_sao_reportados") == [
        ("imoveis", "condominio_inexistente")
    ]

    results = export_gold(spark, out=tmp_path / "lake")
    exported = rows(
        fresh_db, "select model, rows, files, manifest_id, dbt_invocation_id from ops.exports"
    )
    assert sorted(e[0] for e in exported) == sorted(MODEL_NAMES)
    by_model = {r.model: r for r in results}
    for model, n, files, manifest_id, dbt_id in exported:
        assert (n, files, dbt_id) == (by_model[model].rows, by_model[model].files, invocation)
        manifest = json.loads((tmp_path / "lake" / model / "_manifest.json").read_text())
        assert manifest["export_id"] == manifest_id

    status = tmp_path / "no-stream.json"
    report = condo(
        "monitor", "--format", "json", "--stream-status", str(status), "--orphan-rate-warn", "0.01"
    )
    checks = checks_of(report)
    assert checks["dbt.build"]["level"] == "warn"
    assert "orfaos_sao_reportados" in checks["dbt.build"]["message"]
    for model in MODEL_NAMES:
        assert checks[f"freshness.gold.{model}"]["level"] == "ok"
        assert checks[f"export.{model}"]["level"] == "ok", checks[f"export.{model}"]
    kept = rows(fresh_db, "select count(*) from silver.imoveis")[0][0]
    assert checks["orphans.imoveis"]["value"] == pytest.approx(1 / (kept + 1))
    assert checks["orphans.imoveis"]["level"] == "warn"  # 1 of 38 is above 1%
    assert checks["orphans.moradores"]["level"] == "ok"
    assert {"disk.lake", "disk.state"} <= checks.keys()
    assert report.returncode == 1

    # Gold rebuilt after the export: the export now lags behind it.
    rebuilt = condo("dbt", "run", "--select", "transacoes_por_condominio", env=env)
    assert rebuilt.returncode == 0, rebuilt.stdout[-2000:]
    assert rows(fresh_db, "select count(*) from ops.dbt_runs where command = 'run'") == [(1,)]
    lagging = checks_of(
        condo(
            "monitor",
            "--format",
            "json",
            "--stream-status",
            str(status),
            env={"CONDO_MONITOR_EXPORT_LAG_WARN_HOURS": "0"},
        )
    )
    assert lagging["export.transacoes_por_condominio"]["level"] == "warn"
    assert lagging["export.transacoes_por_morador"]["level"] == "ok"
    assert lagging["dbt.build"]["level"] == "warn"  # a `dbt run` is not a build

    # The textfile output, written atomically, and the served metrics agree on names; every
    # metric the alert rules and the dashboard use is among them.
    out = tmp_path / "textfile" / "condo.prom"
    written_text = condo(
        "monitor", "--format", "prometheus", "--output", str(out), "--stream-status", str(status)
    )
    assert written_text.returncode == 1 and written_text.stdout == ""
    text = out.read_text()
    warned = sum(1 for k, v in stored.items() if k.startswith("test.") and v[0] == "warn")
    assert warned >= 1
    assert f'condo_dbt_nodes{{resource_type="test",status="warn"}} {warned}.0' in text
    assert 'condo_export_lag_seconds{model="transacoes_por_morador"} 0.0' in text
    assert not list(out.parent.glob(".*"))  # no temporary file left behind
    served = scrape(dict(os.environ))
    names = exposed_names(served)
    assert exposed_names(text) <= names
    assert "condo_monitor_up" in names
    rules = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "alerts.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    used = metric_names_in(
        "\n".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    ) | metric_names_in(dashboard_exprs(ROOT / "monitoring" / "grafana" / "condomanage.json"))
    missing = {n for n in used if n not in names and n not in recorded}
    assert not missing, f"used by the rules or the dashboard but never exposed: {missing}"
