"""The private PySpark calls of spark_loaders.spark_internals, each against a real session,
and the guard that the installed PySpark is the minor version they were checked against."""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyspark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from source_scan import lines_matching

from spark_loaders import spark_internals

PROJECT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(r"\._(jvm|jsc|jdf|jc|options)\b|vectorized_udf|PythonEvalType|pythonExec")


def test_installed_pyspark_is_the_minor_version_the_internals_were_checked_against() -> None:
    installed = ".".join(pyspark.__version__.split(".")[:2])
    assert installed == spark_internals.TESTED_PYSPARK, (
        f"pyspark {pyspark.__version__} is installed; spark_internals was checked against "
        f"{spark_internals.TESTED_PYSPARK}: run this file's Spark tests and update it"
    )
    pins = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pyspark~={spark_internals.TESTED_PYSPARK}.0" in pins


def test_no_other_module_touches_a_private_pyspark_name() -> None:
    offenders = lines_matching(PRIVATE, except_in="spark_internals.py")
    assert offenders == []


def test_jvm_and_hadoop_configuration_reach_the_session_jvm(spark: SparkSession) -> None:
    jvm = spark_internals.jvm(spark)
    assert jvm.java.lang.Integer.parseInt("42") == 42
    conf = spark_internals.hadoop_configuration(spark)
    fs = jvm.org.apache.hadoop.fs.Path(PROJECT.as_uri()).getFileSystem(conf)
    assert fs.exists(jvm.org.apache.hadoop.fs.Path((PROJECT / "pyproject.toml").as_uri()))


def test_wait_for_listener_bus_returns(spark: SparkSession) -> None:
    spark.range(3).count()  # something on the bus
    spark_internals.wait_for_listener_bus(spark, 5000)


def test_drop_builder_option_removes_only_that_key() -> None:
    builder = SparkSession.builder.config("spark.jars.packages", "a:b:1").config("x.y", "z")
    assert spark_internals.drop_builder_option(builder, "spark.jars.packages") == "a:b:1"
    assert spark_internals.drop_builder_option(builder, "spark.jars.packages") is None
    assert spark_internals.drop_builder_option(builder, "x.y") == "z"


def test_map_in_arrow_runs_the_function_in_the_chosen_worker_python(spark: SparkSession) -> None:
    spark_internals.set_worker_python(spark.sparkContext, sys.executable)
    schema = T.StructType(
        [T.StructField("doubled", T.LongType()), T.StructField("python", T.StringType())]
    )

    def double(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import sys

        import pyarrow.compute as pc

        for batch in batches:
            doubled = pc.multiply(batch.column("id"), 2)
            python = pa.array([sys.executable] * batch.num_rows)
            yield pa.RecordBatch.from_arrays([doubled, python], names=["doubled", "python"])

    df = spark.range(0, 5, numPartitions=2)
    rows = spark_internals.map_in_arrow(df, double, schema).orderBy("doubled").collect()
    assert [r.doubled for r in rows] == [0, 2, 4, 6, 8]
    assert {r.python for r in rows} == {sys.executable}


def test_planned_file_splits_give_each_partitions_start(spark: SparkSession, tmp_path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"".join(b"line %06d\n" % i for i in range(2000)))  # 24,000 bytes
    spark.conf.set("spark.sql.files.maxPartitionBytes", "8000")
    try:
        df = spark.read.text(str(path)).select(F.col("value").alias("value"))
        splits = spark_internals.planned_file_splits(df)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert [index for index, _ in splits] == list(range(len(splits)))
    assert sorted(start for _, starts in splits for start in starts) == [0, 8000, 16000]


def test_the_planned_line_offsets_equal_a_counting_pass(spark: SparkSession, tmp_path) -> None:
    """The loader's caller of planned_file_splits: the lines before each split, taken from
    the plan, are those the counting pass over the same file finds."""
    from spark_loaders.ingest.records_spark import planned_line_offsets, scan_lines

    path = tmp_path / "lines.txt"
    data = b"".join(b"%d,x\n" % i for i in range(3000))
    path.write_bytes(data)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "7000")
    try:
        planned = planned_line_offsets(spark, path, lambda offset: data[:offset].count(b"\n"))
        counted = scan_lines(spark, path, check_quotes=False)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert planned is not None and planned.prefix
    assert len(planned.blocks) == len(counted.blocks) >= 3
    before = 0
    counted_blocks = sorted(counted.blocks, key=lambda b: b.start)
    for plan, count in zip(planned.blocks, counted_blocks, strict=True):
        assert (plan.start, plan.lines, plan.first_mono) == (count.start, before, count.first_mono)
        before += count.lines
    assert before == 3000
