"""CondoManage lakehouse: loaders, CLI and Spark jobs.

A map of the package, by layer (the dbt project for silver and gold is outside it, in
``models/``, ``macros/`` and ``seeds/``):

==============================  ==========================================================
where                           what
==============================  ==========================================================
``domain``                      the domain's constants, defined once: the entities and
                                their columns, load order, reject reasons, lineage
                                columns, targets
``cli``, ``commands/``          the ``condo`` command: one module per sub-command
``ingest/``                     bronze: CSV files -> ``bronze.*``, the quarantine and the
                                load ledger ``ops.loads`` (entry: ``ingest.api``)
``streaming/``                  bronze: Structured Streaming over the landing directory,
                                each micro-batch handed to ``ingest``
``pipeline``                    load, ``dbt build``, export, in one process
``export/``                     gold -> Parquet datasets under ``data/lake/gold``
``monitor``                     health checks over the ledger, quarantine, freshness and
                                the stream's status
``generator/``, ``generate``    synthetic extracts of any size, for tests and benchmarks
``connection``, ``embedded_pg``  which PostgreSQL to use; the embedded server
``dbt_env``, ``shell_env``      the environment dbt runs in; ``condo db env``
``spark_session``,              the one way to get a SparkSession; Java check
``java_check``
``paths``, ``errors``           project and state directories; ``CondoError``
``spark_internals``             every private PySpark call, with why and its public
                                replacement
``fault_injection``             TEST-ONLY: the kill points the crash tests set
``jobs``                        the load, export and stream jobs: their options (shared
                                by ``condo`` and the entry scripts) and the entry wrapper
``logs``                        the jobs' logging: one format on stderr, one level
``load_files``, ``export_gold``,  thin ``spark-submit`` entry scripts
``stream_files``
==============================  ==========================================================
"""
