"""Everything serotiny says to MLflow: the store, run names and claims, the run-state table,
heartbeat, provenance and artifacts. Nothing here imports Lightning.

This package's own module stays light (no MLflow): what lives here, other layers may read
without paying for MLflow's import.
"""

#: The prefix of a tracking URI naming an embedded SQLite store.
SQLITE_PREFIX = "sqlite:///"
#: Where a training run keeps its checkpoints (``best.ckpt``, ``last.ckpt``) among its artifacts.
CHECKPOINT_ARTIFACT_DIR = "checkpoints"
