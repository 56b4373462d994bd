"""A generated extract with injected defects: the loader's reject counts per file and reason
match what the generator says it broke (spark_loaders.generator, independent of the loader)."""

from __future__ import annotations

import pytest
from load_helpers import load, rows

from spark_loaders.generator.core import generate


@pytest.mark.parametrize("path_kind", ["small-file paths", "large-file paths"])
def test_generated_error_rate_matches(spark, fresh_db, tmp_path, monkeypatch, path_kind) -> None:
    if path_kind == "large-file paths":
        monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
        monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    expected = generate(tmp_path, 3000, seed=11, error_rate=0.08)
    report = load(spark, tmp_path)
    assert report.ok
    assert len(report.files) == 4
    for result in report.files:
        want = expected["files"][result.path.name]
        got_reasons = {r: result.rejects_by_reason.get(r, 0) for r in want["rejected_by_reason"]}
        assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (
            want["rows"],
            want["loaded"],
            want["rejected"],
        ), result.path.name
        assert got_reasons == want["rejected_by_reason"], result.path.name
        assert result.rows_repaired == want["repaired"], result.path.name
    marks = dict(rows(fresh_db, "select entity, high_water from ops.id_watermarks"))
    for name, want in expected["files"].items():
        assert marks[want["entity"]] == want["high_water"], name
    assert sum(f["rejected"] for f in expected["files"].values()) > 0
