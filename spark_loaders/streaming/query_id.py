"""The streaming query's stable id, as Spark stores it in ``<checkpoint>/metadata``.

Spark writes ``{"id": "<uuid>"}`` there when a checkpoint is first used and keeps it for
every restart, unlike ``runId``, which changes on each start. ``(query id, batch id)`` is
therefore a stable name for a micro-batch across crashes and replays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from spark_loaders import spark_internals
from spark_loaders.errors import CondoError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def is_local(location: str) -> bool:
    """True for a plain path or a ``file:`` URI; False for hdfs://, s3a://, abfss:// and so on."""
    scheme = urlsplit(location).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and location[1:3] in (":\\", ":/"))


def parse_metadata(text: str) -> str:
    """The ``id`` field of a checkpoint metadata file."""
    try:
        query_id = json.loads(text.splitlines()[0])["id"]
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise CondoError(f"unreadable streaming checkpoint metadata: {text[:80]!r}") from exc
    if not isinstance(query_id, str) or not query_id:
        raise CondoError(f"streaming checkpoint metadata has no query id: {text[:80]!r}")
    return query_id


def read_query_id(checkpoint: str, spark: SparkSession | None = None) -> str:
    """The query id stored in ``<checkpoint>/metadata``: read directly for a local checkpoint,
    through Hadoop's FileSystem (the same one Spark uses) for a remote one."""
    if is_local(checkpoint):
        local = Path(urlsplit(checkpoint).path if checkpoint.startswith("file:") else checkpoint)
        metadata = local / "metadata"
        try:
            return parse_metadata(metadata.read_text())
        except FileNotFoundError:
            raise CondoError(f"no streaming checkpoint metadata at {metadata}") from None
    if spark is None:
        raise CondoError(f"a SparkSession is needed to read the checkpoint at {checkpoint}")
    jvm = spark_internals.jvm(spark)
    path = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/metadata")
    fs = path.getFileSystem(spark_internals.hadoop_configuration(spark))
    if not fs.exists(path):
        raise CondoError(f"no streaming checkpoint metadata at {path}")
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return parse_metadata(reader.readLine() or "")
    finally:
        stream.close()
