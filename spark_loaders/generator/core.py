"""The synthetic extract generator: four CSV files in the source system's shape.

How it stays fast, deterministic and small in memory:

* Rows are produced in chunks of :data:`CHUNK_ROWS`. Every chunk of every file has its
  own ``random.Random`` seeded from ``(seed, file, chunk)``, so the output depends only on
  the seed and the options, never on timing or on the Python build.
* Only ``random()`` and integer arithmetic are used (no ``pow``/``log``, whose last bit
  may differ between C libraries), so a seed gives byte-identical files everywhere.
* A chunk is formatted with one f-string per row and written with one ``write``; nothing
  but the current chunk and a few small per-parent arrays (condominium of each property,
  its value, the residents of each condominium) is held in memory.

Referential integrity: rows that are not deliberately broken only ever reference parents
that are not broken either, so after the loader and silver have done their work, every
good row survives and every bad row is in quarantine.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from spark_loaders.domain import REASONS
from spark_loaders.generator import defects, vocab
from spark_loaders.generator.schema import (
    CONDOMINIOS,
    IMOVEIS,
    MORADORES,
    TRANSACOES,
    Entity,
)

CHUNK_ROWS = 50_000
FORMAT_VERSION = 1
EXPECTED_FILE = "_expected.json"

# The extract covers two calendar years.
FIRST_DAY = date(2023, 1, 1)
DAYS = (date(2025, 1, 1) - FIRST_DAY).days  # 731: 2024 is a leap year
DATES: tuple[str, ...] = tuple((FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS))

# Transaction amounts are the property's value times 0.900 .. 1.159 (in permille), plus
# centavos: one random draw gives both.
_PRICE_STEPS = 260 * 100


def sizes(transactions: int) -> dict[str, int]:
    """Rows per file for ``transactions`` transactions: about one condominium per 2,000
    transactions (at least 3), one property per 20, one resident per 15."""
    condominios = max(3, -(-transactions // 2000))
    imoveis = max(4 * condominios, -(-transactions // 20))
    moradores = max(imoveis, -(-transactions // 15))
    return {
        "condominios": condominios,
        "imoveis": imoveis,
        "moradores": moradores,
        "transacoes": transactions,
    }


@dataclass
class FileStats:
    entity: str
    rows: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    high_water: int = 0
    sum_cents: int | None = None
    bytes: int = 0
    sha256: str = ""

    def as_dict(self) -> dict:
        rejected = sum(self.rejected_by_reason.values())
        out = {
            "entity": self.entity,
            "rows": self.rows,
            "loaded": self.rows - rejected,
            "rejected": rejected,
            "rejected_by_reason": self.rejected_by_reason,
            "repaired": 0,
            "high_water": self.high_water,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }
        if self.sum_cents is not None:
            out["loaded_sum_valor"] = f"{self.sum_cents // 100}.{self.sum_cents % 100:02d}"
        return out


def _chunks(total: int) -> Iterator[tuple[int, int, int]]:
    """(chunk number, first id, id after the last) over ids 1..total."""
    for number, start in enumerate(range(1, total + 1, CHUNK_ROWS)):
        yield number, start, min(start + CHUNK_ROWS, total + 1)


class _Writer:
    """One output file: header, then chunks of lines, hashed as they are written."""

    def __init__(self, path: Path, header: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.fh = self.tmp.open("wb", buffering=1 << 20)
        self.hash = hashlib.sha256()
        self.size = 0
        self.write([header])

    def write(self, lines: list[str]) -> None:
        self.write_bytes(_encode(lines))

    def write_bytes(self, data: bytes) -> None:
        self.fh.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self, stats: FileStats) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)
        stats.bytes = self.size
        stats.sha256 = self.hash.hexdigest()


class Generator:
    def __init__(
        self, transactions: int, seed: int, error_rate: float, with_ids: bool, jobs: int = 1
    ) -> None:
        if transactions < 0:
            raise ValueError("transactions must be >= 0")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        self.transactions = transactions
        self.seed = seed
        self.error_rate = error_rate
        self.with_ids = with_ids
        self.jobs = max(1, jobs)
        self.sizes = sizes(transactions)
        # Set when every candidate parent row was broken, so good rows had to reference
        # broken ones (only possible with tiny files or error rates near 1).
        self.condo_fallback = self.imovel_fallback = self.morador_fallback = False
        # Filled as the files are written, read by the files that reference them.
        self.good_condos: list[int] = []
        self.condo_profile: list[int] = []
        self.condo_price_pct: list[int] = []
        self.imovel_condo = array("i")
        self.imovel_value = array("i")  # thousands of reais
        self.good_imoveis = array("i")
        self.moradores_by_condo: list[array] = []
        # What the transaction chunks read: candidate properties, each property's
        # possible buyers, property values.
        self._tx: tuple[array, list[array], array] = (array("i"), [], array("i"))

    # -- randomness ---------------------------------------------------------------------

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("/".join(["condo-generate", str(self.seed), *map(str, parts)]))

    def _bad_rows(
        self, entity: Entity, chunk: int, n: int
    ) -> tuple[dict[int, str], Callable[[], float]]:
        """Positions (0-based within the chunk) of the rows to break, with their reason,
        and the random source to break them with."""
        rnd = self._rng(entity.name, chunk, "errors").random
        rate = self.error_rate
        if rate <= 0.0:
            return {}, rnd
        positions = range(n) if rate >= 1.0 else [j for j in range(n) if rnd() < rate]
        reasons = entity.reasons(self.with_ids)
        return {j: reasons[int(rnd() * len(reasons))] for j in positions}, rnd

    def _finish_chunk(
        self,
        entity: Entity,
        chunk: int,
        first_id: int,
        lines: list[str],
        stats: FileStats,
        *,
        fields_of: Callable[[int], list[str]] | None = None,
        on_bad: Callable[[int, list[str]], None] | None = None,
    ) -> list[int]:
        """Prefix ids, break the chosen rows, update the counts; returns the ids of the
        rows left intact."""
        n = len(lines)
        if self.with_ids:
            lines[:] = [f"{first_id + j},{line}" for j, line in enumerate(lines)]
        bad, rnd = self._bad_rows(entity, chunk, n)
        columns = entity.header(self.with_ids)
        # High-water mark: the largest valid id among rows with the right field count
        # (with ids); the number of data rows (positional).
        id_lost: set[int] = set()
        for j, reason in bad.items():
            # Lines of entities without free text are never quoted and split on commas.
            fields = fields_of(j) if fields_of is not None else lines[j].split(",")
            if on_bad is not None:
                on_bad(first_id + j, fields)
            broken = defects.apply(entity, columns, fields, reason, rnd)
            if self.with_ids and (reason == "field_count" or broken[0] != fields[0]):
                id_lost.add(j)
            lines[j] = defects.csv_line(broken)
            stats.rejected_by_reason[reason] += 1
        stats.rows += n
        if self.with_ids:
            for j in range(n - 1, -1, -1):
                if j not in id_lost:
                    stats.high_water = max(stats.high_water, first_id + j)
                    break
        else:
            stats.high_water = stats.rows
        return [first_id + j for j in range(n) if j not in bad]

    def _header(self, entity: Entity) -> str:
        return ",".join(c.name for c in entity.header(self.with_ids))

    # -- files --------------------------------------------------------------------------

    def write_all(self, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        # An _expected.json describes a complete set of files: drop the previous one
        # first, so an interrupted run never leaves it next to files it does not describe.
        (out / EXPECTED_FILE).unlink(missing_ok=True)
        try:
            stats = [
                self._condominios(out),
                self._imoveis(out),
                self._moradores(out),
                self._transacoes(out),
            ]
        except BaseException:
            # Interrupted or failed: leave no half-written temporary files behind (the
            # finished files of this run are complete, each was renamed into place).
            for entity in (CONDOMINIOS, IMOVEIS, MORADORES, TRANSACOES):
                (out / f".{entity.file_name}.tmp").unlink(missing_ok=True)
            raise
        good = {s.entity: s.rows - sum(s.rejected_by_reason.values()) for s in stats}
        parents_intact = not (
            (self.condo_fallback and (good["imoveis"] or good["moradores"]))
            or ((self.imovel_fallback or self.morador_fallback) and good["transacoes"])
        )
        expected = {
            "format": FORMAT_VERSION,
            "generator": {
                "transactions": self.transactions,
                "seed": self.seed,
                "error_rate": self.error_rate,
                "with_ids": self.with_ids,
                "chunk_rows": CHUNK_ROWS,
            },
            "notes": (
                "Each rejected row has exactly one reason. Rows not rejected reference only "
                "parents that are not rejected, unless good_rows_reference_loaded_parents is "
                "false (possible only when nearly every parent row is broken)."
            ),
            "good_rows_reference_loaded_parents": parents_intact,
            "files": {f"{s.entity}.csv": s.as_dict() for s in stats},
        }
        tmp = out / f".{EXPECTED_FILE}.tmp"
        tmp.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, out / EXPECTED_FILE)
        return expected

    def _condominios(self, out: Path) -> FileStats:
        entity = CONDOMINIOS
        stats = FileStats(entity.name)
        writer = _Writer(out / entity.file_name, self._header(entity))
        profile_pool = [
            i for i, (share, _) in enumerate(vocab.CONDO_PROFILES) for _ in range(share)
        ]
        total = self.sizes[entity.name]
        self.condo_profile = [0] * (total + 1)
        self.condo_price_pct = [100] * (total + 1)
        for chunk, first, stop in _chunks(total):
            rnd = self._rng(entity.name, chunk).random
            rows: list[list[str]] = []
            for cid in range(first, stop):
                self.condo_profile[cid] = profile_pool[int(rnd() * len(profile_pool))]
                self.condo_price_pct[cid] = 65 + int(rnd() * 91)  # neighbourhood price level
                rows.append([_condo_name(rnd), _address(rnd)])
            lines = [defects.csv_line(r) for r in rows]
            # Condominium lines may be quoted: break the fields they were formatted from.
            ids = [str(first + j) for j in range(len(rows))] if self.with_ids else None

            def fields_of(j: int, rows=rows, ids=ids) -> list[str]:
                return [ids[j], *rows[j]] if ids else list(rows[j])

            good = self._finish_chunk(entity, chunk, first, lines, stats, fields_of=fields_of)
            self.good_condos.extend(good)
            writer.write(lines)
        writer.close(stats)
        return stats

    def _imoveis(self, out: Path) -> FileStats:
        entity = IMOVEIS
        stats = FileStats(entity.name, sum_cents=0)
        writer = _Writer(out / entity.file_name, self._header(entity))
        total = self.sizes[entity.name]
        owners = self.good_condos
        if not owners:
            owners = list(range(1, self.sizes["condominios"] + 1))
            self.condo_fallback = True
        self.imovel_condo = _blocks(self._rng(entity.name, "blocks").random, total, owners)
        self.imovel_value = array("i", bytes(4 * (total + 1)))
        type_pools = [
            [t for t, pct in enumerate(weights) for _ in range(pct)]
            for _, weights in vocab.CONDO_PROFILES
        ]
        types = vocab.PROPERTY_TYPES
        condo_of, value_of = self.imovel_condo, self.imovel_value
        profile, price_pct = self.condo_profile, self.condo_price_pct
        sum_ref = [0]

        def on_bad(imovel_id: int, fields: list[str]) -> None:
            sum_ref[0] -= int(fields[-1].replace(".", ""))

        for chunk, first, stop in _chunks(total):
            rnd = self._rng(entity.name, chunk).random
            lines: list[str] = []
            for iid in range(first, stop):
                cid = condo_of[iid]
                pool = type_pools[profile[cid]]
                name, low, high = types[pool[int(rnd() * len(pool))]]
                u = rnd()
                value = max(30, (low + int(u * u * (high - low))) * price_pct[cid] // 100)
                value_of[iid] = value
                sum_ref[0] += value * 100_000
                lines.append(f"{name},{cid},{value}000.00")
            good = self._finish_chunk(entity, chunk, first, lines, stats, on_bad=on_bad)
            self.good_imoveis.extend(good)
            writer.write(lines)
        stats.sum_cents = sum_ref[0]
        writer.close(stats)
        return stats

    def _moradores(self, out: Path) -> FileStats:
        entity = MORADORES
        stats = FileStats(entity.name)
        writer = _Writer(out / entity.file_name, self._header(entity))
        total = self.sizes[entity.name]
        n_imoveis = len(self.imovel_condo) - 1
        by_condo = [array("i") for _ in range(self.sizes["condominios"] + 1)]
        first_names, surnames, particles = vocab.FIRST_NAMES, vocab.SURNAMES, vocab.NAME_PARTICLES
        nf, ns, np_ = len(first_names), len(surnames), len(particles)
        condo_of = self.imovel_condo
        for chunk, first, stop in _chunks(total):
            rnd = self._rng(entity.name, chunk).random
            lines: list[str] = []
            condos: list[int] = []
            for mid in range(first, stop):
                # Residents live where the properties are: the condominium of a random unit.
                cid = condo_of[1 + int(rnd() * n_imoveis)]
                condos.append(cid)
                name = first_names[int(rnd() * nf)]
                u = rnd()
                if u < 0.12:
                    name += " " + first_names[int(rnd() * nf)]
                elif u < 0.30:
                    name += " " + particles[int(rnd() * np_)]
                name += " " + surnames[int(rnd() * ns)]
                if rnd() < 0.55:
                    name += " " + surnames[int(rnd() * ns)]
                # Ids follow registration order, as a SERIAL column would.
                day = (mid - 1) * DAYS // total
                lines.append(f"{name},{cid},{DATES[day]}")
            for mid in self._finish_chunk(entity, chunk, first, lines, stats):
                by_condo[condos[mid - first]].append(mid)
            writer.write(lines)
        self.moradores_by_condo = by_condo
        writer.close(stats)
        return stats

    def _transacoes(self, out: Path) -> FileStats:
        entity = TRANSACOES
        stats = FileStats(entity.name, sum_cents=0)
        writer = _Writer(out / entity.file_name, self._header(entity))
        total = self.sizes[entity.name]
        imoveis = self.good_imoveis
        if not imoveis:
            imoveis = array("i", range(1, len(self.imovel_condo)))
            self.imovel_fallback = True
        everyone = array("i")
        for residents in self.moradores_by_condo:
            everyone.extend(residents)
        if not everyone:
            everyone = array("i", range(1, self.sizes["moradores"] + 1))
            self.morador_fallback = True
        # A condominium whose residents were all broken borrows from everyone: the row
        # stays referentially valid, only less realistic.
        residents_of = [r if len(r) else everyone for r in self.moradores_by_condo]
        condo_of, value_of = self.imovel_condo, self.imovel_value
        # One lookup per row instead of two: each property's list of possible buyers.
        residents_of_imovel = [
            everyone,
            *(residents_of[condo_of[i]] for i in range(1, len(condo_of))),
        ]
        self._tx = (imoveis, residents_of_imovel, value_of)
        for data, part in self._map_chunks(_transacoes_chunk, list(_chunks(total))):
            writer.write_bytes(data)
            stats.rows += part.rows
            stats.sum_cents += part.sum_cents or 0
            stats.high_water = max(stats.high_water, part.high_water)
            for reason, count in part.rejected_by_reason.items():
                stats.rejected_by_reason[reason] += count
        if not self.with_ids:
            stats.high_water = stats.rows
        writer.close(stats)
        return stats

    def _map_chunks(
        self, func: Callable[[Generator, int, int, int], tuple[bytes, FileStats]], chunks: list
    ) -> Iterator[tuple[bytes, FileStats]]:
        """``func(self, chunk, first, stop)`` for every chunk, in order. With ``jobs`` > 1
        the chunks are computed by forked worker processes (which inherit this generator's
        state), a few at a time so memory stays bounded; the output is the same bytes."""
        jobs = min(self.jobs, len(chunks))
        # fork shares the parent arrays for free; elsewhere (macOS, Windows) stay serial.
        if jobs <= 1 or not sys.platform.startswith("linux"):
            for chunk, first, stop in chunks:
                yield func(self, chunk, first, stop)
            return
        global _ACTIVE
        _ACTIVE = (self, func)
        try:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                window = 2 * jobs
                for i in range(0, len(chunks), window):
                    yield from pool.map(_run_active, chunks[i : i + window])
        finally:
            _ACTIVE = None


_CENTS: tuple[str, ...] = tuple(f"{c:02d}" for c in range(100))

# The generator and chunk function a forked worker runs (inherited, never pickled).
_ACTIVE: tuple[Generator, Callable] | None = None


def _run_active(item: tuple[int, int, int]) -> tuple[bytes, FileStats]:
    assert _ACTIVE is not None
    generator, func = _ACTIVE
    return func(generator, *item)


def _transacoes_chunk(gen: Generator, chunk: int, first: int, stop: int) -> tuple[bytes, FileStats]:
    """One chunk of transacoes.csv, encoded, and its counts."""
    entity = TRANSACOES
    imoveis, residents_of_imovel, value_of = gen._tx
    total = gen.sizes[entity.name]
    n_imoveis = len(imoveis)
    dates = DATES
    steps = _PRICE_STEPS
    rnd = gen._rng(entity.name, chunk).random
    lines: list[str] = []
    append = lines.append
    cents = 0
    # Ids follow time (the extract is in transaction order): row `tid` falls on day
    # (tid - 1) * DAYS // total, so rows come in runs that share one date.
    tid = first
    while tid < stop:
        day = (tid - 1) * DAYS // total
        run_end = min(stop, -(-(day + 1) * total // DAYS) + 1)
        date_text = dates[day]
        for _ in range(run_end - tid):
            iid = imoveis[int(rnd() * n_imoveis)]
            residents = residents_of_imovel[iid]
            mid = residents[int(rnd() * len(residents))]
            permille, centavos = divmod(int(rnd() * steps), 100)
            reais = value_of[iid] * (900 + permille)
            cents += reais * 100 + centavos
            append(f"{iid},{mid},{date_text},{reais}.{_CENTS[centavos]}")
        tid = run_end
    part = FileStats(entity.name, sum_cents=cents)

    def on_bad(transacao_id: int, fields: list[str]) -> None:
        part.sum_cents -= int(fields[-1].replace(".", ""))  # type: ignore[operator]

    gen._finish_chunk(entity, chunk, first, lines, part, on_bad=on_bad)
    return _encode(lines), part


def _encode(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _blocks(rnd: Callable[[], float], total: int, owners: list[int]) -> array:
    """Assign ``total`` items (ids 1..total) to ``owners`` in contiguous blocks of random
    sizes, each owner getting at least one item when there are enough: the units of a
    building get consecutive ids, as they do when a building is registered at once."""
    result = array("i", bytes(4 * (total + 1)))
    if total == 0 or not owners:
        return result
    weights = [40 + int(rnd() * 121) for _ in owners]
    base = 1 if total >= len(owners) else 0
    spare = total - base * len(owners)
    weight_sum = sum(weights)
    item = 1
    running = 0
    for owner, weight in zip(owners, weights, strict=True):
        before = spare * running // weight_sum
        running += weight
        count = base + spare * running // weight_sum - before
        for _ in range(count):
            result[item] = owner
            item += 1
    return result


def _condo_name(rnd: Callable[[], float]) -> str:
    prefix = vocab.CONDO_PREFIXES[int(rnd() * len(vocab.CONDO_PREFIXES))]
    core = vocab.CONDO_NAMES[int(rnd() * len(vocab.CONDO_NAMES))]
    suffix = vocab.CONDO_SUFFIXES[int(rnd() * len(vocab.CONDO_SUFFIXES))]
    if rnd() < 0.03:
        core = f'"{core}"'  # some names carry quotes, which CSV must escape
    return f"{prefix} {core}{suffix}"


def _address(rnd: Callable[[], float]) -> str:
    kind = vocab.STREET_KINDS[int(rnd() * len(vocab.STREET_KINDS))]
    street = vocab.STREET_NAMES[int(rnd() * len(vocab.STREET_NAMES))]
    number = 1 + int(rnd() * rnd() * 4000)
    bairro = vocab.NEIGHBOURHOODS[int(rnd() * len(vocab.NEIGHBOURHOODS))]
    city = vocab.CITIES[int(rnd() * len(vocab.CITIES))]
    form = int(rnd() * 20)
    if form < 7:  # the sample's shape, with commas
        return f"{kind} {street}, {number}, {bairro}"
    if form < 11:
        return f"{kind} {street}, {number} - {bairro}, {city}"
    if form < 15:  # no comma at all
        return f"{kind} {street} {number} - {bairro}"
    if form < 17:
        block = 1 + int(rnd() * 40)
        lot = 1 + int(rnd() * 30)
        return f"{kind} {street}, Quadra {block}, Lote {lot}, {bairro}, {city}"
    if form < 18:
        return f"{kind} {street}, s/n - {bairro}"
    return f"{kind} {street} nº {number} - {bairro} - {city}"


def generate(
    out: Path | str,
    transactions: int,
    *,
    seed: int = 42,
    error_rate: float = 0.0,
    with_ids: bool = False,
    jobs: int = 1,
) -> dict:
    """Write condominios.csv, imoveis.csv, moradores.csv, transacoes.csv and
    _expected.json into ``out``; returns what _expected.json holds. ``jobs`` worker
    processes share the transactions (the files do not depend on it)."""
    return Generator(transactions, seed, error_rate, with_ids, jobs).write_all(Path(out))
