"""Where Hydra finds serotiny's sweeper that leaves out finished jobs.

Hydra builds sweepers only from classes under the ``hydra_plugins`` namespace, and imports
every module there whenever any Hydra application starts, so this one only names the class;
the work is in :mod:`serotiny.search.finished_jobs` (which loads MLflow only when used).
"""

from __future__ import annotations

from serotiny.search import finished_jobs


class SkipFinishedSweeper(finished_jobs.SkipFinishedSweeper):
    """Hydra's handle on :class:`serotiny.search.finished_jobs.SkipFinishedSweeper`."""
