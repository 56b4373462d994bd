"""Export of the gold models to Parquet datasets (see docs/export.md)."""

from spark_loaders.export.api import ExportResult, default_out, export_gold
from spark_loaders.export.models import MODEL_NAMES

__all__ = ["MODEL_NAMES", "ExportResult", "default_out", "export_gold"]
