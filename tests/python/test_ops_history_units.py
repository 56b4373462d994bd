"""Pure parts of the run history: node names, the invocation's status, rows from a
run_results.json document."""

from __future__ import annotations

from spark_loaders.ops_history import node_name, result_rows, run_status

RUN_RESULTS = {
    "metadata": {"invocation_id": "inv-1", "dbt_version": "1.11.0"},
    "args": {"which": "build", "target": "postgres"},
    "results": [
        {
            "unique_id": "model.condomanage.stg_imoveis",
            "status": "success",
            "execution_time": 0.5,
            "failures": None,
            "message": "SELECT 38",
            "relation_name": '"db"."silver"."imoveis"',
            "timing": [
                {"name": "compile", "completed_at": "2026-01-10T11:00:00.100000Z"},
                {"name": "execute", "completed_at": "2026-01-10T11:00:01.500000Z"},
            ],
        },
        {
            "unique_id": "test.condomanage.accepted_values_from_seed_stg_imoveis_tipo.0a1b2c",
            "status": "warn",
            "execution_time": 0.1,
            "failures": 2,
            "message": "Got 2 results, configured to warn if != 0",
            "timing": [],
        },
    ],
}


def test_node_names_drop_the_generic_test_hash() -> None:
    assert node_name("model.condomanage.transacoes_por_morador") == "transacoes_por_morador"
    assert node_name("test.condomanage.unique_x_id.deadbeef") == "unique_x_id"
    assert node_name("test.condomanage.orfaos_sao_reportados") == "orfaos_sao_reportados"


def test_run_status_from_nodes_and_exit_code() -> None:
    assert run_status(["success", "pass"]) == "success"
    assert run_status(["success", "warn"]) == "warn"
    assert run_status(["warn", "fail"]) == "error"
    assert run_status(["success"], exit_code=2) == "error"  # e.g. a compilation error


def test_result_rows() -> None:
    model, test = result_rows(RUN_RESULTS)
    assert (model["name"], model["resource_type"], model["status"]) == (
        "stg_imoveis",
        "model",
        "success",
    )
    assert model["completed_at"].isoformat() == "2026-01-10T11:00:01.500000+00:00"
    assert (test["name"], test["resource_type"], test["failures"]) == (
        "accepted_values_from_seed_stg_imoveis_tipo",
        "test",
        2,
    )
    assert test["completed_at"] is None


def test_run_results_follow_the_project_dir_dbt_was_given(tmp_path) -> None:
    # Cosmos runs each task in a temporary copy of the project named by --project-dir.
    from spark_loaders.commands.dbt import run_results_file
    from spark_loaders.paths import project_root

    copy = tmp_path / "copy"
    assert run_results_file(["run", "--project-dir", str(copy)], {}) == (
        copy / "target" / "run_results.json"
    )
    assert run_results_file([f"--project-dir={copy}", "--target-path", "t2"], {}) == (
        copy / "t2" / "run_results.json"
    )
    assert run_results_file(["build"], {"DBT_PROJECT_DIR": str(copy)}) == (
        copy / "target" / "run_results.json"
    )
    absolute = tmp_path / "elsewhere"
    assert run_results_file(
        ["build", "--project-dir", str(copy)], {"DBT_TARGET_PATH": str(absolute)}
    ) == (absolute / "run_results.json")
    assert run_results_file(["build"], {}) == project_root() / "target" / "run_results.json"
