"""Streaming ingestion: one Spark Structured Streaming query over the landing directory that
hands each micro-batch's files to the batch loader (``spark_loaders.ingest``).

Modules: ``source`` (the file source), ``batch`` (the ``foreachBatch`` function), ``ledger``
(``ops.stream_batches``), ``progress`` (listener, status file, HTTP endpoint), ``query_id``
(the checkpoint's query id) and ``run`` (building, running and stopping the query).
See docs/streaming.md for the design and why exactly-once holds.
"""
