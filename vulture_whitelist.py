"""Names vulture reports as unused that are used, for reasons it cannot see (`make lint`
runs ``vulture spark_loaders vulture_whitelist.py``). Anything new it reports is either
dead code to delete or a case to add here, with the reason."""

# ruff: noqa: B018, F821
# Called by the standard library or by Spark, never by name in this package.
_.log_message  # http.server handlers (commands/docs.py, streaming/progress.py): silence the log
_.do_GET  # http.server handler (streaming/progress.py)
_.onQueryStarted  # StreamingQueryListener callbacks (streaming/progress.py)
_.onQueryProgress
_.onQueryIdle
_.onQueryTerminated
__getattr__  # module-level lazy import hook (export/__init__.py)
_.pythonExec  # set on Spark's Python function object (ingest/arrow_map.py)
_.isolation_level  # psycopg connection settings (export/read_gold.py)
_.read_only
_.autocommit
_.readable  # io.RawIOBase protocol, called by io.BufferedReader (fsio.py)
_.seekable
_.readinto

# Parameters a protocol or a caller's signature requires.
exc_type  # __exit__ (export/read_gold.py)
tb
signum  # signal handler (streaming/run.py)
imovel_id  # on_bad(id, fields) callbacks (generator/core.py)
transacao_id

# Record fields written out whole (dataclasses.asdict, JSON, the ledger) or read by tests.
files_loaded  # monitor.py snapshot, in --format json
files_skipped
_.replayed  # streaming/batch.py, streaming/ledger.py: stored in ops.stream_batches
replayed
_.done  # ingest/report.py progress state
_.by_entity  # ingest/report.py LoadReport: the tests' way into a report

# The compaction checks of condo monitor on their own, for callers holding a connection
# (tests/python/test_bronze_compact.py); condo monitor itself runs them via monitor.gather.
health  # ingest/compact.py

# The PySpark minor version spark_internals was checked against: read by
# tests/python/test_spark_internals.py, which fails when the installed one differs.
TESTED_PYSPARK  # spark_internals.py
