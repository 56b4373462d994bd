"""What a run did, per file: the result objects, the progress log lines and the summary
table."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from spark_loaders.domain import REASONS

log = logging.getLogger(__name__)

STATUSES = ("loaded", "rejected", "failed", "skipped")


@dataclass
class FileResult:
    entity: str
    path: Path
    status: str  # loaded | rejected (whole file) | failed (an error) | skipped (already loaded)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    rows_repaired: int = 0
    warnings: list[str] = field(default_factory=list)
    load_id: int | None = None
    seconds: float = 0.0
    error: str | None = None
    content_hash: str | None = None
    reason: str | None = None  # ops.loads.reason
    duplicate_of: int | None = None  # a skip: the load with the same records
    id_min: int | None = None
    id_max: int | None = None
    parser: str | None = None  # how the rows were read: vectorised, parallel(-planned), exact

    @property
    def ok(self) -> bool:
        return self.status in ("loaded", "skipped")

    @property
    def reject_rate(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No file was rejected whole and no error occurred."""
        return all(f.ok for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_repaired(self) -> int:
        return sum(f.rows_repaired for f in self.files)

    def by_entity(self, entity: str) -> list[FileResult]:
        return [f for f in self.files if f.entity == entity]

    def over_reject_rate(self, max_rate: float | None) -> list[FileResult]:
        if max_rate is None:
            return []
        return [f for f in self.files if f.status == "loaded" and f.reject_rate > max_rate]


def make_console() -> Console:
    """A console that stays readable when the output is not a terminal (CI logs, pipes).

    Markup is off: everything printed here carries user text (file names, headers, error
    messages that quote them), and ``[/]`` or ``[bold]`` in it must print as is, not be
    interpreted (or crash the output after the load has committed)."""
    console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False, width=200)
    return console


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 and rows else "-"


class Progress:
    """One log line when a file starts and one when it ends; nothing in between. A file
    rejected whole or failed ends with a WARNING line, every other line is INFO."""

    def __init__(self, enabled: bool, total_files: int) -> None:
        self.enabled = enabled
        self.total = total_files
        self.done = 0
        self.rows = 0

    def note(self, message: str) -> None:
        if self.enabled:
            log.info("%s", message)

    def start(self, index: int, entity: str, path: Path, size: int) -> None:
        if self.enabled:
            log.info(
                "[%d/%d] %-11s %s (%s MB) ...",
                index,
                self.total,
                entity,
                path.name,
                f"{size / 1e6:,.1f}",
            )

    def finish(self, index: int, result: FileResult, elapsed_total: float) -> None:
        self.done += 1
        self.rows += result.rows_read
        if not self.enabled:
            return
        detail = {
            "loaded": f"{result.rows_loaded:,} loaded, {result.rows_rejected:,} rejected",
            "skipped": "already loaded (same content), skipped",
            "rejected": f"REJECTED: {result.error}",
            "failed": f"FAILED: {result.error}",
        }[result.status]
        level = logging.WARNING if result.status in ("rejected", "failed") else logging.INFO
        log.log(
            level,
            "%s",
            f"[{index}/{self.total}] {result.entity:<11} {result.path.name}: {detail} "
            f"in {result.seconds:.1f}s ({_rate(result.rows_read, result.seconds)}); "
            f"total {self.rows:,} rows, {_rate(self.rows, elapsed_total)}",
        )


def summary_table(report: IngestReport) -> Table:
    table = Table(title="condo load", title_justify="left")
    for name, justify in (
        ("file", "left"),
        ("entity", "left"),
        ("status", "left"),
        ("read", "right"),
        ("loaded", "right"),
        ("rejected", "right"),
        ("rejects by reason", "left"),
        ("repaired", "right"),
        ("ids", "right"),
        ("time", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in report.files:
        reasons = ", ".join(
            f"{r} {f.rejects_by_reason[r]:,}" for r in REASONS if f.rejects_by_reason.get(r)
        )
        notes = [reasons] if reasons else []
        notes += f.warnings
        if f.error and f.status in ("rejected", "failed"):
            notes.append(f.error)
        ids = f"{f.id_min}..{f.id_max}" if f.id_min is not None else ""
        table.add_row(
            f.path.name,
            f.entity,
            f.status,
            f"{f.rows_read:,}",
            f"{f.rows_loaded:,}",
            f"{f.rows_rejected:,}",
            "; ".join(notes),
            f"{f.rows_repaired:,}",
            ids,
            f"{f.seconds:.1f}s",
        )
    table.add_section()
    table.add_row(
        f"{len(report.files)} file(s)",
        "",
        ", ".join(f"{report.count(s)} {s}" for s in STATUSES if report.count(s)),
        f"{report.rows_read:,}",
        f"{report.rows_loaded:,}",
        f"{report.rows_rejected:,}",
        "",
        f"{report.rows_repaired:,}",
        "",
        f"{report.seconds:.1f}s",
    )
    return table
