"""Public entry point of the synthetic data generator (``condo generate``).

``generate(out, transactions, seed=..., error_rate=..., with_ids=...)`` writes the four
source files and ``_expected.json`` (rows per file, expected rejects by reason, the sum
of the amounts that should load) into ``out``. See :mod:`spark_loaders.generator.core`
for how it works and ``docs/`` for the file format.
"""

from spark_loaders.generator.core import CHUNK_ROWS, EXPECTED_FILE, generate, sizes

__all__ = ["CHUNK_ROWS", "EXPECTED_FILE", "generate", "sizes"]
