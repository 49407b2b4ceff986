"""Everything serotiny says to MLflow: the store, run names and claims, the run-state table,
heartbeat, provenance and artifacts. Nothing here imports Lightning."""
