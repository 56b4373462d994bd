"""Which file is which: expand the given paths and match files to entities by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_loaders.errors import CondoError
from spark_loaders.fsio import HadoopPath, as_path
from spark_loaders.ingest.entities import ENTITY_ORDER


@dataclass(frozen=True)
class SourceFile:
    entity: str
    path: Path | HadoopPath

    @property
    def name(self) -> str:
        return self.path.name


def entity_of(name: str) -> str | None:
    """The entity a file belongs to: its base name starts with the entity's name
    (case-insensitive)."""
    lowered = name.lower()
    for entity in ENTITY_ORDER:
        if lowered.startswith(entity):
            return entity
    return None


def _is_candidate(path: Path | HadoopPath) -> bool:
    # Hidden files and editor/partial-download leftovers inside a directory are not extracts.
    return path.is_file() and not path.name.startswith((".", "~", "_"))


def discover(paths: Sequence[str | Path]) -> list[SourceFile]:
    """Files to load, in dependency order of their entity, then by name.

    A directory contributes its files (not recursive) whose names match an entity; other
    files in it are ignored. A file named explicitly must match an entity.
    """
    found: dict[Path, SourceFile] = {}
    for raw in paths:
        path = as_path(raw)  # a local Path, or a HadoopPath for hdfs://, s3a://, ...
        if path.is_dir():
            for child in sorted(path.iterdir()):
                entity = entity_of(child.name)
                if entity and _is_candidate(child):
                    found.setdefault(child.resolve(), SourceFile(entity, child.resolve()))
        elif path.is_file():
            entity = entity_of(path.name)
            if entity is None:
                raise CondoError(
                    f"{path}: the file name does not start with an entity name "
                    f"({', '.join(ENTITY_ORDER)})"
                )
            found.setdefault(path.resolve(), SourceFile(entity, path.resolve()))
        else:
            raise CondoError(f"{path}: no such file or directory")
    return sorted(found.values(), key=lambda f: (ENTITY_ORDER.index(f.entity), f.name, str(f.path)))
