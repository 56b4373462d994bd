"""spark_loaders.fsio: loader inputs as URIs, read, listed and hashed through Hadoop's
FileSystem API (here on file:// URIs, with the real JVM of the shared session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_loaders.errors import CondoError
from spark_loaders.fsio import HadoopPath, as_path, is_local, scheme_of
from spark_loaders.ingest.discover import discover
from spark_loaders.ingest.prescan import prescan, read_header
from spark_loaders.ingest.records_exact import exact_table

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_scheme_and_local_fast_path(monkeypatch) -> None:
    monkeypatch.delenv("CONDO_FILE_ACCESS", raising=False)
    assert scheme_of("/x/y.csv") == "" and scheme_of("C:/x") == ""
    assert scheme_of("S3A://bucket/x") == "s3a"
    assert as_path("file:///tmp/a%20b.csv") == Path("/tmp/a b.csv")
    assert isinstance(as_path("hdfs://nn:8020/x"), HadoopPath)
    assert str(as_path("s3a://bucket/dir/")) == "s3a://bucket/dir"  # '//' kept, not Path's '/'
    assert as_path("abfss://c@acct.dfs.core.windows.net/x/moradores.csv").name == "moradores.csv"
    assert is_local("file:/x") and not is_local("s3a://b/x")
    monkeypatch.setenv("CONDO_FILE_ACCESS", "hadoop")
    assert isinstance(as_path("file:///tmp/x.csv"), HadoopPath)


def test_hadoop_path_reads_lists_and_hashes_like_the_local_file(spark, tmp_path) -> None:
    text = 'nome,endereco\nA,"Rua 1,\nsegunda"\nB,Rua 2\n' * 50_000  # ~2 MB: several reads
    local = tmp_path / "condominios_big.csv"
    local.write_text(text, encoding="utf-8")
    (tmp_path / ".hidden.csv").write_text("x\n")
    remote = HadoopPath(local.as_uri())
    assert remote.is_file() and not remote.is_dir()
    assert HadoopPath(tmp_path.as_uri()).is_dir()
    assert remote.stat().st_size == local.stat().st_size
    assert abs(remote.stat().st_mtime - local.stat().st_mtime) < 1
    with remote.open("rb") as handle:
        assert handle.read() == local.read_bytes()
        handle.seek(3)
        assert handle.read(5) == local.read_bytes()[3:8]
    assert prescan(remote) == prescan(local)
    scan = prescan(remote)
    assert scan.newlines_before(remote, 1_500_000) == scan.newlines_before(local, 1_500_000)
    assert read_header(remote) == read_header(local)
    assert exact_table(remote, header_last_line=1).equals(exact_table(local, header_last_line=1))
    found = discover([HadoopPath(tmp_path.as_uri())])
    assert [(f.entity, f.name) for f in found] == [("condominios", "condominios_big.csv")]
    assert isinstance(found[0].path, HadoopPath)


def test_discover_sample_through_hadoop(spark, monkeypatch) -> None:
    monkeypatch.setenv("CONDO_FILE_ACCESS", "hadoop")
    names = [f.name for f in discover([SAMPLE.as_uri()])]
    assert names == [f.name for f in discover([SAMPLE])]
    assert len(names) == 4


def test_bad_uris_are_one_line_errors(spark, tmp_path) -> None:
    with pytest.raises(CondoError, match="cannot open the file system"):
        discover(["nosuchfs://host/x.csv"])
    with pytest.raises(CondoError, match="no such file or directory"):
        discover([HadoopPath((tmp_path / "missing").as_uri())])
