"""The gold contract as Spark types: check what a source offers, then cast to it exactly.

A source column is accepted only when the cast to the contract type cannot lose anything
(an ``int`` where a ``bigint`` is expected, ``decimal(18,2)`` where ``decimal(20,2)`` is),
so the export never rounds money or truncates a count behind the user's back.
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_loaders.errors import CondoError
from spark_loaders.export.models import GoldModel

_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_SIMPLE: dict[str, T.DataType] = {
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "string": T.StringType(),
    "date": T.DateType(),
}
_INTEGRAL_WIDTH = {T.ByteType: 1, T.ShortType: 2, T.IntegerType: 4, T.LongType: 8}


def spark_type(ddl: str) -> T.DataType:
    """The Spark type for one of the contract's type names."""
    if ddl in _SIMPLE:
        return _SIMPLE[ddl]
    match = _DECIMAL.fullmatch(ddl)
    if match:
        return T.DecimalType(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"not a contract type: {ddl}")


def contract_schema(model: GoldModel) -> T.StructType:
    return T.StructType(
        [T.StructField(c.name, spark_type(c.spark_type), nullable=True) for c in model.columns]
    )


def _is_string(dt: T.DataType) -> bool:
    return isinstance(dt, T.StringType | T.VarcharType | T.CharType)


def lossless(source: T.DataType, target: T.DataType) -> bool:
    """True when every value of ``source`` casts to ``target`` unchanged."""
    if isinstance(target, T.DecimalType):
        return (
            isinstance(source, T.DecimalType)
            and source.scale == target.scale
            and source.precision <= target.precision
        )
    if type(target) in _INTEGRAL_WIDTH:
        width = _INTEGRAL_WIDTH.get(type(source))
        return width is not None and width <= _INTEGRAL_WIDTH[type(target)]
    if isinstance(target, T.StringType):
        return _is_string(source)
    return type(source) is type(target)


def contract_problems(model: GoldModel, source: T.StructType) -> list[str]:
    """Why ``source`` cannot be exported as ``model`` (empty when it can)."""
    offered = {f.name.lower(): f.dataType for f in source.fields}
    problems = []
    for field in contract_schema(model).fields:
        dt = offered.get(field.name)
        if dt is None:
            problems.append(f"column {field.name} is missing")
        elif not lossless(dt, field.dataType):
            problems.append(
                f"{field.name} is {dt.simpleString()}, expected {field.dataType.simpleString()}"
            )
    return problems


def check_contract(model: GoldModel, source: T.StructType, relation: str) -> None:
    problems = contract_problems(model, source)
    if problems:
        raise CondoError(
            f"{relation} does not match the gold contract in docs/contracts.md: "
            + "; ".join(problems)
        )


def conform(df: DataFrame, model: GoldModel) -> DataFrame:
    """Exactly the contract's columns, in its order, with its types (extra columns dropped)."""
    schema = contract_schema(model)
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def with_lake_partition(df: DataFrame, model: GoldModel) -> DataFrame:
    """Add the hive partition column of the daily model (``mes=YYYY-MM``); others unchanged."""
    part = model.lake_partition
    if part is None:
        return df
    return df.select(
        "*",
        F.date_format(F.col(part.source_column), part.date_format).alias(part.name),
    )
