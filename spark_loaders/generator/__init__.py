"""Synthetic CondoManage extracts: see :mod:`spark_loaders.generator.core`."""
