"""Which file is which: expand the given paths and match files to entities by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.errors import CondoError
from spark_loaders.fsio import HadoopPath, as_path


@dataclass(frozen=True)
class SourceFile:
    entity: str
    path: Path | HadoopPath
    symlink: bool = False  # refused without being opened (reason ``symlink``)

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


# Names of files still being written or downloaded: never loaded from a directory.
IN_PROGRESS_PREFIXES = (".", "~", "_")
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".crdownload", ".filepart")


def is_in_progress_name(name: str) -> bool:
    """Hidden, ``_``/``~``-prefixed, or ending in a partial-transfer suffix."""
    return name.startswith(IN_PROGRESS_PREFIXES) or name.lower().endswith(IN_PROGRESS_SUFFIXES)


def _is_link(path: Path | HadoopPath) -> bool:
    """Only local paths can be symbolic links here (Hadoop file systems resolve their own)."""
    return isinstance(path, Path) and path.is_symlink()


def _is_candidate(path: Path | HadoopPath) -> bool:
    # Hidden files and editor/partial-download leftovers inside a directory are not extracts.
    # A symbolic link is a candidate only to be refused by name (is_file would follow it).
    return (_is_link(path) or path.is_file()) and not is_in_progress_name(path.name)


def _source(entity: str, path: Path | HadoopPath) -> SourceFile:
    """Symbolic links keep their own (absolute, unresolved) path and are never followed."""
    if isinstance(path, Path) and path.is_symlink():
        absolute = path.parent.resolve() / path.name
        return SourceFile(entity, absolute, symlink=True)
    return SourceFile(entity, path.resolve())


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
                    source = _source(entity, child)
                    found.setdefault(source.path, source)
        elif path.is_file() or _is_link(path):
            entity = entity_of(path.name)
            if entity is None:
                raise CondoError(
                    f"{path}: the file name does not start with an entity name "
                    f"({', '.join(ENTITY_ORDER)})"
                )
            source = _source(entity, path)
            found.setdefault(source.path, source)
        else:
            raise CondoError(f"{path}: no such file or directory")
    return sorted(found.values(), key=lambda f: (ENTITY_ORDER.index(f.entity), f.name, str(f.path)))
