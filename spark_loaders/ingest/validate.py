"""Row validation as column expressions: every rule of docs/ingestion.md, all reasons of a
row collected, ids resolved. Pure DataFrame -> DataFrame functions, no Python UDFs."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_loaders.domain import REASON_BIT, REASONS, Entity
from spark_loaders.ingest.header import ColumnMap

TRIM_CHARS = " \t"
INTEGER = r"^[0-9]+$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
AMOUNT = r"^[0-9]+(\.[0-9]{1,2})?$"


def value_col(name: str) -> str:
    return f"v_{name}"


def _known(condition: Column) -> Column:
    """A failed try_cast or try_to_date yields null; null means not valid."""
    return F.coalesce(condition, F.lit(False))


def _valid_integer(v: Column) -> Column:
    return _known(v.rlike(INTEGER) & (v.try_cast("int") > F.lit(0)))


def _valid_date(v: Column) -> Column:
    """``YYYY-MM-DD`` naming a real day of the Gregorian calendar, year 0001 to 9999.

    Plain integer arithmetic on the digits, cheaper than a date parser.
    """
    year = F.substring(v, 1, 4).cast("int")
    month = F.substring(v, 6, 2).cast("int")
    day = F.substring(v, 9, 2).cast("int")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    last_day = (
        F.when(month == 2, F.when(leap, F.lit(29)).otherwise(F.lit(28)))
        .when(month.isin(4, 6, 9, 11), F.lit(30))
        .otherwise(F.lit(31))
    )
    return _known(
        v.rlike(DATE)
        & (year >= F.lit(1))
        & month.between(1, 12)
        & (day >= F.lit(1))
        & (day <= last_day)
    )


def _valid_amount(v: Column) -> Column:
    return _known(v.rlike(AMOUNT) & (v.try_cast("decimal(15,2)") > F.lit(0)))


def _any(conditions: list[Column]) -> Column:
    return reduce(lambda a, b: a | b, conditions, F.lit(False))


def check(records: DataFrame, entity: Entity, cmap: ColumnMap, *, id_base: int | None) -> DataFrame:
    """Records (``_line, _raw, _fields, _ord``) -> one row per record with the trimmed values
    ``v_<column>``, ``_mask`` (bit per reason, 0 = valid), ``_id``, ``_id_text`` and
    ``_repaired``.

    ``id_base`` is the high-water mark for positional ids; ``None`` when the file has ids.
    """
    fields = F.col("_fields")
    n = F.when(fields.isNull(), F.lit(-1)).otherwise(F.size(fields))
    repaired = (n > F.lit(cmap.width)) if cmap.overflow_index is not None else F.lit(False)
    count_ok = (n == F.lit(cmap.width)) | repaired

    def field(name: str) -> Column:
        index = cmap.positions[name]
        value = F.try_element_at(fields, F.lit(index + 1))
        if index == cmap.overflow_index:
            rest = F.slice(fields, F.lit(index + 1), F.greatest(n - F.lit(index), F.lit(1)))
            value = F.when(repaired, F.array_join(rest, ",")).otherwise(value)
        return F.btrim(value, F.lit(TRIM_CHARS))

    present = [c for c in entity.columns if c.name in cmap.positions]
    stage = records.select(
        "_line",
        "_raw",
        "_ord",
        count_ok.alias("_count_ok"),
        repaired.alias("_repaired"),
        *[field(c.name).alias(value_col(c.name)) for c in present],
    )

    flags: dict[str, list[Column]] = {r: [] for r in REASONS}
    for column in present:
        v = F.col(value_col(column.name))
        empty = v.isNull() | (v == F.lit(""))
        flags["required"].append(empty)
        if column.kind == "text" and column.max_len:
            flags["too_long"].append(F.length(v) > F.lit(column.max_len))
        elif column.kind in ("id", "int"):
            flags["invalid_integer"].append(~empty & ~_valid_integer(v))
        elif column.kind == "date":
            flags["invalid_date"].append(~empty & ~_valid_date(v))
        elif column.kind == "money":
            flags["invalid_amount"].append(~empty & ~_valid_amount(v))
    value_bits = reduce(
        lambda a, b: a + b,
        [F.when(_any(flags[r]), F.lit(REASON_BIT[r])).otherwise(F.lit(0)) for r in REASONS[1:]],
    )
    mask = F.when(F.col("_count_ok"), value_bits).otherwise(F.lit(REASON_BIT["field_count"]))

    if id_base is None:
        v_id = F.col(value_col(entity.id_column))
        usable = F.col("_count_ok") & v_id.isNotNull() & _valid_integer(v_id)
        the_id = F.when(usable, v_id.try_cast("long"))
        id_text = v_id
    else:
        the_id = F.lit(id_base) + F.col("_ord")
        id_text = the_id.cast("string")

    return stage.select(
        "_line",
        "_raw",
        "_ord",
        "_repaired",
        mask.cast("int").alias("_mask"),
        the_id.cast("long").alias("_id"),
        id_text.alias("_id_text"),
        *[value_col(c.name) for c in entity.columns[1:]],
    )


def reasons_of(mask: Column) -> Column:
    """The reason codes of a mask, in the fixed order."""
    return F.array_compact(
        F.array(
            *[
                F.when((mask.bitwiseAND(F.lit(REASON_BIT[r]))) != F.lit(0), F.lit(r))
                for r in REASONS
            ]
        )
    )


def _csv_text(value: Column) -> Column:
    return F.concat(F.lit('"'), F.replace(value, F.lit('"'), F.lit('""')), F.lit('"'))


def csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# Column lists of the COPY statements fed by copy_lines, in the order the line carries them.
def row_copy_columns(entity: Entity, *, lineage: bool) -> list[str]:
    """``lineage``: the line also carries the file name and the load id. The direct path
    needs them (its rows go to the shared default partition); the bulk path's staging table
    takes the load id as a column default and gets the file name as a column at publish
    (see sink_postgres.create_staging), so its lines stay about a quarter shorter."""
    extra = ["_source_file", "_load_id"] if lineage else []
    return [*entity.column_names, "_source_line", "_repaired", *extra]


REJECT_COPY_COLUMNS = ["source_line", "raw_line", "reasons", "entity", "source_file", "load_id"]


def copy_lines(
    checked: DataFrame, entity: Entity, *, source_file: str, load_id: int, lineage: bool
) -> DataFrame:
    """Checked rows -> COPY (CSV) lines: ``_ok_line`` for valid rows (with the file name and
    load id only if ``lineage``, see :func:`row_copy_columns`), ``_rej_line`` for rejects
    (the other one is null), plus the columns the writers aggregate."""
    parts: list[Column] = []
    for column in entity.columns:
        v = F.col("_id_text") if column.kind == "id" else F.col(value_col(column.name))
        parts += [_csv_text(v) if column.quoted_in_copy else v, F.lit(",")]
    tail = f",{csv_quote(source_file)},{load_id}\n" if lineage else "\n"
    ok_line = F.concat(
        *parts,
        F.col("_line").cast("string"),
        F.lit(","),
        F.when(F.col("_repaired"), F.lit("t")).otherwise(F.lit("f")),
        F.lit(tail),
    )
    rej_tail = f",{entity.name},{csv_quote(source_file)},{load_id}\n"
    rej_line = F.concat(
        F.col("_line").cast("string"),
        F.lit(","),
        _csv_text(F.col("_raw")),
        F.lit(',"{'),
        F.array_join(reasons_of(F.col("_mask")), ","),
        F.lit('}"'),
        F.lit(rej_tail),
    )
    valid = F.col("_mask") == F.lit(0)
    return checked.select(
        F.when(valid, ok_line).alias("_ok_line"),
        F.when(~valid, rej_line).alias("_rej_line"),
        "_mask",
        "_id",
        "_repaired",
        "_line",
    )
