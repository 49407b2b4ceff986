"""Finding runs by their name, which serotiny treats as unique under an experiment.

MLflow's run names are not unique; serotiny's are, and a run is found by name with one
``search_runs`` query rather than by listing every run.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

from serotiny.errors import RunLookupError
from serotiny.tracking.store import redacted_uri

RUN_NAME_TAG = "mlflow.runName"


def quoted(value: str) -> str:
    """``value`` as a string literal of MLflow's search syntax."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise RunLookupError(f"run name {value!r} mixes both quote characters; rename the run")


def find_runs_by_name(client: MlflowClient, experiment_id: str, run_name: str) -> list[Run]:
    """All active runs named ``run_name`` in the experiment, newest first (one query)."""
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_NAME_TAG}` = {quoted(run_name)}",
            order_by=["attributes.start_time DESC"],
            max_results=100,
        )
    )


def get_run_by_name(client: MlflowClient, experiment_name: str, run_name: str) -> Run:
    """The single run named ``run_name`` under ``experiment_name``; one clear error if not."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise RunLookupError(
            f"no run named '{run_name}': there is no MLflow experiment '{experiment_name}' at "
            f"{redacted_uri(client)}; check ++mlflow.experiment_name and ++mlflow.tracking_uri"
        )
    runs = find_runs_by_name(client, experiment.experiment_id, run_name)
    if not runs:
        raise RunLookupError(
            f"no run named '{run_name}' in experiment '{experiment_name}' at "
            f"{redacted_uri(client)}; train it first or check ++mlflow.run_name"
        )
    if len(runs) > 1:
        ids = ", ".join(run.info.run_id for run in runs)
        raise RunLookupError(
            f"run name '{run_name}' is not unique in experiment '{experiment_name}' "
            f"(runs {ids}); delete the extra runs or pick one by id"
        )
    return runs[0]


def resolve_run_id(
    client: MlflowClient,
    run_id: str | None,
    run_name: str | None,
    experiment_name: str | None,
) -> str:
    """A run id, given either the id or a run name with its experiment."""
    if run_id:
        try:
            return client.get_run(run_id).info.run_id
        except Exception as error:
            if run_name is None and experiment_name is not None:
                # Allow passing a run *name* positionally together with an experiment.
                return get_run_by_name(client, experiment_name, run_id).info.run_id
            raise RunLookupError(f"no run with id '{run_id}' at {redacted_uri(client)}") from error
    if run_name and experiment_name:
        return get_run_by_name(client, experiment_name, run_name).info.run_id
    raise RunLookupError("give a run_id, or a run_name together with an experiment_name")
