"""``condo pipeline``: load, then ``dbt build``, then export, in one process.

One SparkSession serves the three stages: the loaders and the export use it directly,
and on the ``spark`` target dbt-spark's ``session`` method picks up the same session,
which also keeps Derby's one-process metastore happy.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spark_loaders.dbt_env import dbt_environment
from spark_loaders.domain import DEFAULT_TARGET, POSTGRES_TARGET, SPARK_TARGET, TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.fsio import as_path, is_local
from spark_loaders.paths import project_root

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    name: str
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class PipelineResult:
    stages: list[StageResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(stage.ok for stage in self.stages)


class StageFailed(CondoError):
    """A stage failed; the message names it."""

    exit_code = 1


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    failures: int
    errors: int
    warnings: int
    skipped: int
    invocation_id: str | None = None


def summarize_dbt_statuses(statuses: Sequence[str]) -> DbtOutcome:
    """Count dbt node statuses. Only ``error`` and ``fail`` fail the build; ``warn`` (a
    warn-severity test) is reported but does not stop the pipeline."""
    failures = sum(1 for s in statuses if s == "fail")
    errors = sum(1 for s in statuses if s in ("error", "runtime error"))
    warnings = sum(1 for s in statuses if s == "warn")
    skipped = sum(1 for s in statuses if s == "skipped")
    return DbtOutcome(failures + errors == 0, failures, errors, warnings, skipped)


def run_dbt_build(target: str, extra_args: Sequence[str] = ()) -> DbtOutcome:
    """``dbt build`` in this process, so the spark target shares the pipeline's session.

    Unit tests are left out: they check the SQL, not the data, run in CI, and an
    incremental model's unit test cannot even compile before its first build."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment(target))
    if not sys.stdout.isatty():
        os.environ.setdefault("DBT_USE_COLORS", "false")
    root = project_root()
    args = [
        "build",
        "--target",
        target,
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root / "profiles"),
        "--exclude-resource-type",
        "unit_test",
        *extra_args,
    ]
    from spark_loaders import ops_history

    started = ops_history.now_utc()
    result = dbtRunner().invoke(args)
    if result.exception is not None and result.result is None:
        raise CondoError(str(result.exception))
    from dbt_common.invocation import get_invocation_id

    statuses = [str(getattr(r.status, "value", r.status)) for r in (result.result or [])]
    outcome = replace(summarize_dbt_statuses(statuses), invocation_id=get_invocation_id())
    if not result.success and outcome.success:
        # dbt said no without a failing node (e.g. a compilation error).
        outcome = replace(outcome, success=False, errors=outcome.errors + 1)
    if target == POSTGRES_TARGET:
        _record_history(started, outcome)
    return outcome


def _record_history(started, outcome: DbtOutcome) -> None:
    """Store the build in ops.dbt_runs / ops.dbt_results; report, never hide, a failure."""
    from spark_loaders import ops_history
    from spark_loaders.export.manifest import run_results_path

    path = run_results_path()
    try:
        recorded = ops_history.record_dbt_run_file(
            path,
            started_at=started,
            finished_at=ops_history.now_utc(),
            exit_code=0 if outcome.success else 1,
            target=POSTGRES_TARGET,
            expected_invocation=outcome.invocation_id,
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("dbt run history not recorded: %s", first)
        return
    if recorded is None:
        log.warning("dbt run history not recorded: %s is not this build's", path)


def _timed(result: PipelineResult, name: str, fn: Callable[[], tuple[bool, str]], echo) -> None:
    echo(f"==> {name}")
    start = time.perf_counter()
    try:
        ok, detail = fn()
    except CondoError as exc:
        ok, detail = False, str(exc)
    except Exception:
        # A bug, not a user error: name the stage, then let the traceback through.
        echo(f"<== {name}: FAILED unexpectedly after {time.perf_counter() - start:.1f}s")
        raise
    stage = StageResult(name, time.perf_counter() - start, ok, detail)
    result.stages.append(stage)
    echo(
        f"<== {name}: {'ok' if ok else 'FAILED'} in {stage.seconds:.1f}s{' - ' + detail if detail else ''}"
    )
    if not ok:
        raise StageFailed(f"pipeline stopped: stage '{name}' failed: {detail}")


def _check_arguments(
    source: Sequence[str | Path], target: str, compact_older_than: float | None
) -> None:
    if target not in TARGETS:
        raise CondoError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if compact_older_than is not None and target != POSTGRES_TARGET:
        raise CondoError("--compact-older-than applies to the postgres target only")
    if compact_older_than is not None and compact_older_than < 0:
        raise CondoError("--compact-older-than must be zero or more days")
    for path in source:
        if is_local(path) and not as_path(path).exists():
            raise CondoError(f"source path does not exist: {path}")


def _compact(older_than_days: float, echo: Callable[[str], Any]) -> tuple[bool, str]:
    """The compaction stage: merge bronze partitions older than ``older_than_days``."""
    from spark_loaders.ingest.compact import Options, compact_all, describe

    results = compact_all(None, Options(older_than_days=older_than_days), on_wait=echo)
    for entry in results:
        echo(describe(entry))
    merged = sum(len(r.sources) for r in results if r.status == "compacted")
    failed = [r.entity for r in results if r.status == "failed"]
    detail = f"{merged} partitions merged" + (f"; failed: {', '.join(failed)}" if failed else "")
    return not failed, detail


def run_pipeline(
    *,
    source: Sequence[str | Path],
    out: Path,
    target: str = DEFAULT_TARGET,
    force: bool = False,
    echo: Callable[[str], Any] = log.info,
    compact_older_than: float | None = None,
) -> PipelineResult:
    _check_arguments(source, target, compact_older_than)
    from spark_loaders.spark_session import get_spark

    result = PipelineResult()
    state: dict[str, Any] = {}

    def start_spark() -> tuple[bool, str]:
        state["spark"] = get_spark("condo-pipeline", hive=target == SPARK_TARGET)
        if target == POSTGRES_TARGET:
            from spark_loaders import connection

            info = connection.resolve("loader")
            return True, f"database {info.url(hide_password=True)}"
        return True, f"Spark {state['spark'].version}"

    def load() -> tuple[bool, str]:
        from spark_loaders.ingest.api import ingest_files
        from spark_loaders.ingest.report import make_console, summary_table

        report = ingest_files(state["spark"], list(source), target=target, force=force)
        make_console().print(summary_table(report))
        detail = (
            f"{len(report.files)} files ({report.count('loaded')} loaded, "
            f"{report.count('skipped')} skipped, {report.count('rejected')} rejected, "
            f"{report.count('failed')} failed); rows {report.rows_loaded} loaded, "
            f"{report.rows_rejected} rejected"
        )
        return report.ok, detail

    def compact() -> tuple[bool, str]:
        assert compact_older_than is not None  # the stage runs only when it is given
        return _compact(compact_older_than, echo)

    def dbt_build() -> tuple[bool, str]:
        outcome = run_dbt_build(target)
        state["dbt_invocation_id"] = outcome.invocation_id
        detail = (
            f"{outcome.failures} failed tests, {outcome.errors} errors, "
            f"{outcome.warnings} warnings, {outcome.skipped} skipped"
        )
        return outcome.success, detail

    def export() -> tuple[bool, str]:
        from spark_loaders.export.api import ExportOptions, export_gold

        options = ExportOptions(target=target, dbt_invocation_id=state.get("dbt_invocation_id"))
        results = export_gold(state["spark"], out=out, options=options)
        state["exports"] = results
        return True, f"{len(results)} models written to {out}"

    _timed(result, "start", start_spark, echo)
    _timed(result, "load", load, echo)
    if compact_older_than is not None:
        _timed(result, "compact", compact, echo)
    _timed(result, "dbt build", dbt_build, echo)
    _timed(result, "export", export, echo)
    return result
