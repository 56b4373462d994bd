"""Where the project lives on disk and where it keeps its local state."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def project_root() -> Path:
    """The project directory: ``$CONDO_HOME`` if set, else the nearest ancestor of the
    working directory that holds ``dbt_project.yml``, else the source checkout."""
    env = os.environ.get("CONDO_HOME")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Git-ignored directory for local state: the embedded database, Spark's warehouse,
    streaming checkpoints. ``$CONDO_STATE_DIR`` overrides it."""
    env = os.environ.get("CONDO_STATE_DIR")
    return Path(env).resolve() if env else project_root() / ".condo"


def sample_dir() -> Path:
    return project_root() / "data" / "sample"


def lake_dir() -> Path:
    return project_root() / "data" / "lake"


def landing_dir() -> Path:
    return project_root() / "data" / "landing"
