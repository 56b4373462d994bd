"""Batch ingestion of CSV extracts into bronze: discovery, parsing, validation, id assignment,
atomic and idempotent loading, the load ledger and the run report.

The public entry point is :func:`spark_loaders.ingest.api.ingest_files`; the DDL is
:func:`spark_loaders.ingest.ddl.ensure_schema`. See docs/ingestion.md for the design.
"""
