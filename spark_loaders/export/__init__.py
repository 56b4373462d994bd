"""Export of the gold models to Parquet datasets (see docs/export.md).

The public names load lazily, so importing the package (as the CLI does to register
``condo export``) does not pull in pyspark and psycopg.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL_NAMES", "ExportOptions", "ExportResult", "default_out", "export_gold"]


def __getattr__(name: str) -> Any:
    if name == "MODEL_NAMES":
        from spark_loaders.export.models import MODEL_NAMES

        return MODEL_NAMES
    if name in ("ExportOptions", "ExportResult", "default_out", "export_gold"):
        from spark_loaders.export import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
