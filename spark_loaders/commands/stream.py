"""``condo stream``: continuous ingestion of the landing directory into bronze.

The options are defined once in :data:`spark_loaders.jobs.STREAM`, shared with
``spark-submit spark_loaders/stream_files.py``; the job runs in
:func:`spark_loaders.streaming.run.main`.
"""

from __future__ import annotations

import argparse

from spark_loaders import jobs


def register(sub: argparse._SubParsersAction) -> None:
    jobs.register(sub, jobs.STREAM)
