"""Spark target: placeholder until implemented."""

from __future__ import annotations

from spark_loaders.errors import CondoError


class SparkTargetLoader:
    def __init__(self, spark, *, force, run) -> None:
        raise CondoError("--target spark is not implemented yet")
