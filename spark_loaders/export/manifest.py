"""The ``_manifest.json`` written into every exported dataset directory.

Dataset readers (pyarrow, DuckDB, Spark, pandas) skip files whose names start with ``_``
or ``.``, so the manifest sits next to the Parquet files without becoming part of the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_loaders.paths import project_root

MANIFEST_FORMAT = "condo-export-manifest/1"


@dataclass(frozen=True)
class DbtRun:
    invocation_id: str
    generated_at: str | None
    status: str | None
    target: str | None


def run_results_path() -> Path:
    target = os.environ.get("DBT_TARGET_PATH")
    base = Path(target) if target else project_root() / "target"
    if not base.is_absolute():
        base = project_root() / base
    return base / "run_results.json"


def last_dbt_run(model: str, path: Path | None = None) -> DbtRun | None:
    """The last dbt invocation that built ``model``, from dbt's ``run_results.json``.

    None when there is no such file or the last invocation did not touch the model (a
    ``dbt test`` alone, say): the manifest then records no invocation id rather than a
    wrong one.
    """
    path = path or run_results_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = data.get("metadata") or {}
    invocation = meta.get("invocation_id")
    if not invocation:
        return None
    for result in data.get("results") or []:
        unique_id = str(result.get("unique_id", ""))
        if unique_id.startswith("model.") and unique_id.rsplit(".", 1)[-1] == model:
            args = data.get("args") or {}
            return DbtRun(
                invocation_id=str(invocation),
                generated_at=meta.get("generated_at"),
                status=result.get("status"),
                target=args.get("target"),
            )
    return None


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / "_manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
