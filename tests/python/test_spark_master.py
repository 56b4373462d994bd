"""--master on every Spark command, and the settings a non-local master adds."""

from __future__ import annotations

import sys
import zipfile

import pytest

from spark_loaders import jobs
from spark_loaders.cli import build_parser
from spark_loaders.errors import CondoError
from spark_loaders.spark_master import apply_master, check_master, configured_master
from spark_loaders.spark_session import cluster_settings, package_zip

SPARK_COMMANDS = (
    ["load"], ["export"], ["stream", "--available-now"], ["pipeline"], ["thrift"],
)  # fmt: skip


@pytest.mark.parametrize("command", SPARK_COMMANDS, ids=lambda c: c[0])
def test_every_spark_command_takes_master(command, monkeypatch) -> None:
    # setenv first, so that monkeypatch restores what apply_master writes
    for key in ("CONDO_SPARK_MASTER", "CONDO_SPARK_MASTER_EXPLICIT"):
        monkeypatch.setenv(key, "")
    args = build_parser().parse_args([*command, "--master", "spark://h:7077"])
    apply_master(args)
    assert configured_master() == "spark://h:7077"


@pytest.mark.parametrize("job", jobs.JOBS, ids=lambda job: job.script)
def test_entry_scripts_take_master(job) -> None:
    assert jobs.script_parser(job).parse_args(["--master", "local[1]"]).master == "local[1]"


def test_default_env_and_bad_urls(monkeypatch) -> None:
    monkeypatch.delenv("CONDO_SPARK_MASTER", raising=False)
    assert configured_master() == "local[*]"
    monkeypatch.setenv("CONDO_SPARK_MASTER", "local[2]")
    assert configured_master() == "local[2]"
    with pytest.raises(CondoError, match="not a Spark master URL"):
        check_master("http://h:7077")


def test_cluster_settings_only_off_local(monkeypatch) -> None:
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.setenv("CONDO_SPARK_EXECUTOR_MEMORY", "1g")
    assert cluster_settings("local[2]") == {}
    settings = cluster_settings("spark://h:7077")
    assert settings["spark.pyspark.python"] == sys.executable
    assert settings["spark.executor.memory"] == "1g"


def test_package_zip_holds_the_importable_package(tmp_path) -> None:
    with zipfile.ZipFile(package_zip(tmp_path)) as archive:
        names = set(archive.namelist())
    assert {
        "spark_loaders/__init__.py",
        "spark_loaders/ingest/api.py",
        "spark_loaders/fsio.py",
    } <= names
