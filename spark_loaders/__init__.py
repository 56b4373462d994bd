"""CondoManage lakehouse: loaders, CLI and Spark jobs."""
