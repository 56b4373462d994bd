"""Id assignment: ids from the file, or SERIAL-like positional ids from a high-water mark."""

from __future__ import annotations

from dataclasses import dataclass

from spark_loaders.domain import INT4_MAX
from spark_loaders.ingest.copy_stream import Stats
from spark_loaders.ingest.ledger import PreviousLoad


def positional_base(has_ids: bool, high_water: int, previous: PreviousLoad | None) -> int | None:
    """The base B such that the k-th data row gets id B + k; None when the file has ids.

    A forced reload of the same bytes reuses the ids of the load it replaces.
    """
    if has_ids:
        return None
    if previous is not None and not previous.has_ids and previous.id_min is not None:
        return previous.id_min - 1
    return high_water


@dataclass(frozen=True)
class IdOutcome:
    id_min: int | None
    id_max: int | None
    high_water: int | None  # the value the mark must be raised to (never lowered), or None


def id_outcome(base: int | None, stats: Stats) -> IdOutcome:
    if base is None:
        return IdOutcome(stats.id_min, stats.id_max, stats.max_valid_id)
    if stats.rows == 0:
        return IdOutcome(None, None, None)
    return IdOutcome(base + 1, base + stats.rows, base + stats.rows)


def check_room(base: int | None, data_rows_upper_bound: int) -> None:
    if base is not None and base + data_rows_upper_bound > INT4_MAX:
        raise ValueError(
            f"positional ids would exceed the integer range ({base} + {data_rows_upper_bound} rows)"
        )
