"""Server-side ideas for the bulk load's COPY, measured against each other in one run.

The loader's client side (parse, check, encode) costs about 0.5 CPU-s per million rows since
the vectorised path; what is left is PostgreSQL's: the COPY of the staging rows and the id
btree. This benchmark takes the rows the loader sends for a generated transactions file and
times, against the same server in the same run, each variant's COPY plus the id btree on a
fresh table:

* ``raw``              : the baseline of bench_load.py, ``COPY (FORMAT csv)`` of the source
                         file into a four-column table, no index;
* ``csv+lineage``      : the staging layout before this round: CSV lines that carry the
                         file name and the load id in every line, one stream;
* ``csv``              : CSV lines without them (the load id a column default with its CHECK
                         from the start, the file name added after the COPY as a
                         catalogue-only column), one stream;
* ``binary``           : the same rows as ``COPY (FORMAT binary)``, as the loader sends them
                         (copy_binary), one stream;
* ``binary, 2 streams``: the same, split in two parallel streams as the loader's two writers.

    .venv/bin/python bench/bench_copy_variants.py --rows 10000000 --repeat 3

Only same-run ratios mean anything on a shared machine; ``--repeat`` alternates the order,
and the table gives the median and the minimum of each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_load import raw_copy  # noqa: E402

from spark_loaders.ingest.copy_binary import SIGNATURE, TRAILER  # noqa: E402

COLUMNS = (
    "transacao_id integer not null, imovel_id integer not null, morador_id integer not null, "
    "data_transacao date not null, valor_transacao numeric(15,2) not null, "
    "_source_line bigint not null, _repaired boolean not null"
)
LEAN = ", _load_id bigint not null default 7 check (_load_id = 7)"
LINEAGE = ", _source_file text not null, _load_id bigint not null check (_load_id = 7)"
SHORT = (
    "transacao_id, imovel_id, morador_id, data_transacao, valor_transacao, _source_line, _repaired"
)
FULL = f"{SHORT}, _source_file, _load_id"
TAIL = b',"transacoes.csv",7\n'


def loader_rows(source: Path, work: Path) -> tuple[Path, Path, Path]:
    """What the loader's vectorised path makes of ``source``: CSV lines with the lineage
    tail, CSV lines without it, and the binary rows (without signature and trailer)."""
    from spark_loaders.ingest.copy_stream import line_bytes
    from spark_loaders.ingest.records_arrow import Chunk, Layout, check_block, read_blocks

    def layout(binary: bool) -> Layout:
        return Layout(
            entity="transacoes",
            positions=(
                ("imovel_id", 0),
                ("morador_id", 1),
                ("data_transacao", 2),
                ("valor_transacao", 3),
            ),
            width=4,
            overflow_index=None,
            id_base=0,
            header_line=1,
            source_file="transacoes.csv",
            load_id=7,
            binary=binary,
        )

    full, short, binary = work / "full.csv", work / "short.csv", work / "rows.bin"
    with source.open("rb") as handle:
        start = len(handle.readline())
    chunk = Chunk(start, source.stat().st_size, 2)
    with full.open("wb") as f_full, short.open("wb") as f_short, binary.open("wb") as f_bin:
        for first, block in read_blocks(str(source), chunk, 8 << 20):
            data = bytes(line_bytes(check_block(block, first, layout(False)).column("_ok_line")))
            f_short.write(data)
            f_full.write(data.replace(b"\n", TAIL))
            rows = check_block(block, first, layout(True)).column("_ok_line")
            f_bin.write(line_bytes(rows))
    return full, short, binary


def _copy_in(
    conninfo: dict,
    sql: str,
    path: Path,
    span: tuple[int, int] | None = None,
    framing: tuple[bytes, bytes] = (b"", b""),
) -> None:
    import psycopg

    start, end = span or (0, path.stat().st_size)
    left = end - start
    with (
        psycopg.connect(**conninfo, autocommit=True) as conn,
        conn.cursor().copy(sql) as copy,
        path.open("rb") as handle,
    ):
        copy.write(framing[0])
        handle.seek(start)
        while left > 0 and (chunk := handle.read(min(1 << 20, left))):
            copy.write(chunk)
            left -= len(chunk)
        copy.write(framing[1])


def _binary_halves(path: Path) -> list[tuple[int, int]]:
    """Two spans of whole rows (every transactions row has the same width)."""
    size, row = path.stat().st_size, _row_width(path)
    middle = (size // row // 2) * row
    return [(0, middle), (middle, size)]


def _row_width(path: Path) -> int:
    with path.open("rb") as handle:
        fields = int.from_bytes(handle.read(2), "big")
        width = 2
        for _ in range(fields):
            length = int.from_bytes(handle.read(4), "big")
            handle.read(length)
            width += 4 + length
    return width


class Variants:
    """Each variant on a fresh table of the scratch database; each returns its seconds."""

    def __init__(self, conninfo: dict, full: Path, short: Path, binary: Path) -> None:
        self.conninfo, self.full, self.short, self.binary = conninfo, full, short, binary

    def runs(self) -> dict[str, Callable[[], float]]:
        return {
            "csv+lineage": lambda: self.one("v_full", LINEAGE, FULL, self.full, "csv"),
            "csv": lambda: self.one("v_csv", LEAN, SHORT, self.short, "csv"),
            "binary": lambda: self.one("v_bin", LEAN, SHORT, self.binary, "binary"),
            "binary, 2 streams": self.two_binary_streams,
        }

    def _fresh(self, name: str, extra: str):
        import psycopg

        conn = psycopg.connect(**self.conninfo, autocommit=True)
        conn.execute(f"drop table if exists {name}")
        conn.execute(f"create table {name} ({COLUMNS}{extra})")
        return conn

    @staticmethod
    def _finish(conn, name: str, lean: bool) -> None:
        """What the loader does after its COPY: the file name column (lean layout), the btree."""
        if lean:
            conn.execute(
                f"alter table {name} add column _source_file text not null default 'transacoes.csv'"
            )
            conn.execute(f"alter table {name} alter column _source_file drop default")
        conn.execute(f"create index on {name} (transacao_id)")

    def one(self, name: str, extra: str, columns: str, path: Path, kind: str) -> float:
        framing = (SIGNATURE, TRAILER) if kind == "binary" else (b"", b"")
        with self._fresh(name, extra) as conn:
            started = time.monotonic()
            sql = f"copy {name} ({columns}) from stdin (format {kind})"
            _copy_in(self.conninfo, sql, path, framing=framing)
            self._finish(conn, name, lean=extra == LEAN)
            return time.monotonic() - started

    def two_binary_streams(self) -> float:
        name = "v_bin2"
        with self._fresh(name, LEAN) as conn:
            started = time.monotonic()
            sql = f"copy {name} ({SHORT}) from stdin (format binary)"
            threads = [
                threading.Thread(
                    target=_copy_in,
                    args=(self.conninfo, sql, self.binary, span, (SIGNATURE, TRAILER)),
                )
                for span in _binary_halves(self.binary)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self._finish(conn, name, lean=True)
            return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/condo-bench-load"))
    args = parser.parse_args()

    import psycopg

    from spark_loaders import connection
    from spark_loaders.generator.core import generate

    data = args.work_dir / f"n{args.rows}"
    source = data / "transacoes.csv"
    if not source.is_file():
        generate(data, args.rows)
    admin = connection.resolve().psycopg_kwargs()
    name = "bench_copy_variants"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    conninfo = {**admin, "dbname": name}
    times: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
            work = Path(tmp)
            full, short, binary = loader_rows(source, work)
            runs = {
                "raw": lambda: raw_copy(conninfo, source),
                **Variants(conninfo, full, short, binary).runs(),
            }
            for attempt in range(args.repeat):
                order = list(runs) if attempt % 2 == 0 else list(runs)[::-1]
                for label in order:
                    with psycopg.connect(**conninfo, autocommit=True) as conn:
                        conn.execute("drop table if exists raw_transacoes")
                    seconds = runs[label]()
                    times.setdefault(label, []).append(seconds)
                    print(f"{label:26} {seconds:6.2f}s", flush=True)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
    median = {k: sorted(v)[(len(v) - 1) // 2] for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(
        f"\n| N = {args.rows:,} | median of {args.repeat} s | / raw | / csv+lineage "
        "| min s | / raw | / csv+lineage |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in median:
        m, b = median[label], best[label]
        print(
            f"| {label} | {m:.2f} | {m / median['raw']:.2f} | {m / median['csv+lineage']:.2f} "
            f"| {b:.2f} | {b / best['raw']:.2f} | {b / best['csv+lineage']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
