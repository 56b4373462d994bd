"""Server-side ideas for the bulk load's COPY, measured against each other in one run.

The loader's client side (parse, check, format) costs about 0.5 CPU-s per million rows since
the vectorised path; what is left is PostgreSQL's: the COPY of the staging rows and the id
btree. This benchmark takes the COPY lines the loader sends for a generated transactions
file and times, against the same server in the same run:

* ``raw``        : the baseline of bench_load.py, ``COPY (FORMAT csv)`` of the source file
                   into a four-column table;
* ``loader``     : the loader's staging layout (nine columns, lineage in every line), one
                   stream, then the id btree, as the loader does;
* ``binary``     : the same rows as ``COPY (FORMAT binary)``, which skips the text input
                   functions of int, date and numeric;
* ``missing``    : ``_source_file`` and ``_load_id`` left out of the lines and added after
                   the COPY as columns with a default (stored once, in the catalogue), plus
                   the CHECK that ATTACH PARTITION needs, which has to scan the table;
* ``index-first``: the id btree created before two parallel COPY streams instead of after
                   them (two streams, as the loader's tasks).

    .venv/bin/python bench/bench_copy_variants.py --rows 10000000

Only same-run ratios mean anything on a shared machine; ``--repeat`` alternates the order.
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

COLUMNS = (
    "transacao_id integer not null, imovel_id integer not null, morador_id integer not null, "
    "data_transacao date not null, valor_transacao numeric(15,2) not null, "
    "_source_line bigint not null, _repaired boolean not null"
)
LINEAGE = ", _source_file text not null, _load_id bigint not null check (_load_id = 7)"
SHORT = (
    "transacao_id, imovel_id, morador_id, data_transacao, valor_transacao, _source_line, _repaired"
)
FULL = f"{SHORT}, _source_file, _load_id"
TAIL = b',"transacoes.csv",7\n'


def copy_lines(source: Path, work: Path) -> tuple[Path, Path]:
    """The loader's COPY lines for ``source`` (vectorised path), with and without the
    lineage tail."""
    from spark_loaders.ingest.copy_stream import line_bytes
    from spark_loaders.ingest.records_arrow import Chunk, Layout, check_block, read_blocks

    layout = Layout(
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
    )
    full, short = work / "full.csv", work / "short.csv"
    with source.open("rb") as handle:
        start = len(handle.readline())
    with full.open("wb") as f_full, short.open("wb") as f_short:
        chunk = Chunk(start, source.stat().st_size, 2)
        for first, block in read_blocks(str(source), chunk, 8 << 20):
            data = bytes(line_bytes(check_block(block, first, layout).column("_ok_line")))
            f_full.write(data)
            f_short.write(data.replace(TAIL, b"\n"))
    return full, short


def _copy_in(conninfo: dict, sql: str, path: Path, start: int = 0, end: int | None = None) -> None:
    import psycopg

    left = (end if end is not None else path.stat().st_size) - start
    with (
        psycopg.connect(**conninfo, autocommit=True) as conn,
        conn.cursor().copy(sql) as copy,
        path.open("rb") as handle,
    ):
        handle.seek(start)
        while left > 0 and (chunk := handle.read(min(1 << 20, left))):
            copy.write(chunk)
            left -= len(chunk)


def _halves(path: Path) -> list[tuple[int, int]]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(size // 2)
        middle = size // 2 + len(handle.readline())
    return [(0, middle), (middle, size)]


class Variants:
    """Each variant on a fresh table of the scratch database; each returns its seconds."""

    def __init__(self, conninfo: dict, full: Path, short: Path, work: Path) -> None:
        self.conninfo, self.full, self.short = conninfo, full, short
        self.binary_file = work / "full.bin"

    def runs(self) -> dict[str, Callable[[], float]]:
        return {
            "loader": self.loader,
            "binary": self.binary,
            "missing": self.missing,
            "index-after (2 streams)": lambda: self.two_streams("v_after", index_first=False),
            "index-first (2 streams)": lambda: self.two_streams("v_first", index_first=True),
            "lean": lambda: self.lean("v_lean", streams=1),
            "lean (2 streams)": lambda: self.lean("v_lean2", streams=2),
        }

    def _fresh(self, name: str, extra: str = LINEAGE):
        import psycopg

        conn = psycopg.connect(**self.conninfo, autocommit=True)
        conn.execute(f"drop table if exists {name}")
        conn.execute(f"create table {name} ({COLUMNS}{extra})")
        return conn

    @staticmethod
    def _index(conn, name: str) -> None:
        conn.execute(f"create index on {name} (transacao_id)")

    def loader(self) -> float:
        with self._fresh("v_loader") as conn:
            started = time.monotonic()
            _copy_in(self.conninfo, f"copy v_loader ({FULL}) from stdin (format csv)", self.full)
            self._index(conn, "v_loader")
            return time.monotonic() - started

    def _make_binary(self) -> None:
        """The binary stream of the same rows, made once (COPY TO from a loaded table)."""
        with self._fresh("v_source") as conn:
            _copy_in(self.conninfo, f"copy v_source ({FULL}) from stdin (format csv)", self.full)
            sql = f"copy v_source ({FULL}) to stdout (format binary)"
            with self.binary_file.open("wb") as out, conn.cursor().copy(sql) as copy:
                for data in copy:
                    out.write(data)
            conn.execute("drop table v_source")

    def binary(self) -> float:
        if not self.binary_file.exists():
            self._make_binary()
        with self._fresh("v_binary") as conn:
            started = time.monotonic()
            sql = f"copy v_binary ({FULL}) from stdin (format binary)"
            _copy_in(self.conninfo, sql, self.binary_file)
            self._index(conn, "v_binary")
            return time.monotonic() - started

    def missing(self) -> float:
        with self._fresh("v_missing", extra="") as conn:
            started = time.monotonic()
            _copy_in(self.conninfo, f"copy v_missing ({SHORT}) from stdin (format csv)", self.short)
            conn.execute(
                "alter table v_missing add column _source_file text not null "
                "default 'transacoes.csv', add column _load_id bigint not null default 7, "
                "add constraint v_missing_load check (_load_id = 7)"
            )
            self._index(conn, "v_missing")
            return time.monotonic() - started

    def lean(self, name: str, *, streams: int) -> float:
        """The load id as a column default whose CHECK exists from the start (so COPY checks
        each row as it goes and nothing is scanned afterwards), and the file name added after
        the COPY with a default (a catalogue change only)."""
        extra = ", _load_id bigint not null default 7 check (_load_id = 7)"
        with self._fresh(name, extra=extra) as conn:
            started = time.monotonic()
            sql = f"copy {name} ({SHORT}) from stdin (format csv)"
            ranges = _halves(self.short) if streams == 2 else [(0, self.short.stat().st_size)]
            threads = [
                threading.Thread(target=_copy_in, args=(self.conninfo, sql, self.short, a, b))
                for a, b in ranges
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            conn.execute(
                f"alter table {name} add column _source_file text not null default 'transacoes.csv'"
            )
            conn.execute(f"alter table {name} alter column _source_file drop default")
            self._index(conn, name)
            return time.monotonic() - started

    def two_streams(self, name: str, *, index_first: bool) -> float:
        with self._fresh(name) as conn:
            started = time.monotonic()
            if index_first:
                self._index(conn, name)
            sql = f"copy {name} ({FULL}) from stdin (format csv)"
            threads = [
                threading.Thread(target=_copy_in, args=(self.conninfo, sql, self.full, a, b))
                for a, b in _halves(self.full)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if not index_first:
                self._index(conn, name)
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
            full, short = copy_lines(source, work)
            runs = {
                "raw": lambda: raw_copy(conninfo, source),
                **Variants(conninfo, full, short, work).runs(),
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
    print("min of each:", {k: round(min(v), 2) for k, v in times.items()})
    print(
        f"\n| N = {args.rows:,} | seconds (median of {args.repeat}) | / raw COPY | / loader layout |"
    )
    print("|---|---:|---:|---:|")
    for label, seconds in median.items():
        print(
            f"| {label} | {seconds:.2f} | {seconds / median['raw']:.2f} | "
            f"{seconds / median['loader']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
