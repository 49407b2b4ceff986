"""Searching hyperparameters with Optuna, through Hydra's ``--multirun``.

``serotiny train --multirun hparams_search=optuna`` runs :class:`~serotiny.search.sweeper.
OptunaSweeper`: a study stored in the project (so a killed search resumes it), search spaces
in Hydra's sweep syntax (:mod:`~serotiny.search.space`), every trial an MLflow run under one
parent run (:mod:`~serotiny.search.parent_run`), and pruning of trials that cannot win
(:mod:`~serotiny.search.pruning`). Nothing is imported here, so that naming the package
costs nothing.
"""
