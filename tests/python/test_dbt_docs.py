"""dbt documentation: complete, generated offline, served on 127.0.0.1 by `condo docs`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import dbt_bronze as bronze
import pytest
from dbt_runner import PROJECT_ROOT, run_dbt

from spark_loaders.commands.docs import (
    external_references,
    make_server,
    tracking_enabled,
)
from spark_loaders.errors import CondoError

CONDO = Path(sys.executable).with_name("condo")


def test_external_references_finds_fetches_not_links():
    html = (
        '<script src="https://cdn.example.com/a.js"></script>'
        "<link rel=stylesheet href=//fonts.example.com/f.css>"
        '<img src="http://example.com/x.png">'
        "<style>@import url('https://example.com/s.css'); b{background:url(//e.com/i.png)}</style>"
        '<a href="https://github.com/dbt-labs">a link is not a fetch</a>'
        '<script src="main.js"></script><link href="data:text/css,x">'
    )
    assert external_references(html) == [
        "https://cdn.example.com/a.js",
        "//fonts.example.com/f.css",
        "http://example.com/x.png",
        "https://example.com/s.css",
        "//e.com/i.png",
    ]


def test_tracking_is_off_only_when_the_manifest_says_so():
    assert tracking_enabled({"metadata": {"send_anonymous_usage_stats": True}})
    assert tracking_enabled({})
    assert not tracking_enabled({"metadata": {"send_anonymous_usage_stats": False}})


def test_port_in_use_is_a_clear_error(tmp_path):
    server = make_server(tmp_path, 0)
    try:
        with pytest.raises(CondoError, match="already in use"):
            make_server(tmp_path, server.server_address[1])
    finally:
        server.server_close()


def _described(node: dict) -> bool:
    return bool((node.get("description") or "").strip())


def test_docs_are_complete_offline_and_served_locally(fresh_db, tmp_path):
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(
        conninfo,
        [bronze.Load(1, bronze.dt.datetime(2025, 1, 1, tzinfo=bronze.dt.UTC), {})],
    )
    run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
        workdir=tmp_path,
    )
    site = tmp_path / "site"
    result = subprocess.run(
        [str(CONDO), "docs", "--no-serve", "--target-path", str(site)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    html = (site / "index.html").read_text(encoding="utf-8")
    assert external_references(html) == []
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    assert not tracking_enabled(manifest)
    catalog = json.loads((site / "catalog.json").read_text(encoding="utf-8"))

    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["package_name"] != "condomanage" or node["resource_type"] not in (
            "model",
            "seed",
        ):
            continue
        if not _described(node):
            undocumented.append(unique_id)
        # Every column that exists in the database is documented.
        actual = catalog["nodes"].get(unique_id, {}).get("columns", {})
        assert actual, f"{unique_id} missing from the catalog"
        for column in actual:
            if not _described(node["columns"].get(column, {})):
                undocumented.append(f"{unique_id}.{column}")
    for unique_id, source in manifest["sources"].items():
        if not _described(source):
            undocumented.append(unique_id)
        undocumented += [
            f"{unique_id}.{c}" for c, col in source["columns"].items() if not _described(col)
        ]
    for unique_id, macro in manifest["macros"].items():
        if macro["package_name"] == "condomanage" and not _described(macro):
            undocumented.append(unique_id)
    assert undocumented == []
    assert "doc.condomanage.__overview__" in manifest["docs"]
    assert {e["name"] for e in manifest["exposures"].values()} == {"parquet_export", "gold_bi"}

    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as page:
            assert page.status == 200
            assert b"dbt" in page.read(4096).lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/manifest.json", timeout=10) as m:
            assert json.loads(m.read())["metadata"]["project_name"] == "condomanage"
    finally:
        server.shutdown()
        server.server_close()
