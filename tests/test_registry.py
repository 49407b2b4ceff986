"""The model registry: trained runs (and a cross-validation's ensemble) registered as versions
of an MLflow registered model with an alias, and loaded, tested and predicted by
``models:/NAME@ALIAS``, on the embedded SQLite store and on an mlflow server on PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from cli_helpers import CliResult, run_cli
from inprocess import Workspace
from mlflow import MlflowClient
from omegaconf import OmegaConf
from services import MlflowServer

from serotiny.errors import SerotinyUserError
from serotiny.ml_ops.mlflow_utils import get_run_by_name, load_model_from_checkpoint
from serotiny.models.ensemble import EnsembleModule
from serotiny.settings.reading import read_settings
from serotiny.settings.resolvers import job_label
from serotiny.tracking.registry import RegistryError, register_if_configured

pytestmark = pytest.mark.slow
REGISTER = ("register", "++registry.name=cells")


def train(workspace: Workspace, name: str, *extra: str, client: MlflowClient | None = None) -> str:
    """Train run ``name`` for two epochs; its id (found through ``client`` if not local)."""
    workspace.run("train", f"++mlflow.run_name={name}", "++trainer.max_epochs=2", *extra)
    if client is None:
        return workspace.run_named(name).info.run_id
    return get_run_by_name(client, "default", name).info.run_id


def same_weights(one: torch.nn.Module, other: torch.nn.Module) -> bool:
    theirs = other.state_dict()
    return all(torch.equal(value, theirs[key]) for key, value in one.state_dict().items())


def version_count(client: MlflowClient, name: str = "cells") -> int:
    return len(client.search_model_versions(f"name = '{name}'"))


def test_a_registered_run_is_loaded_tested_and_predicted_by_its_alias(
    workspace: Workspace,
) -> None:
    first = train(workspace, "first")
    second = train(workspace, "second", "++seed=7")
    client = workspace.client()

    version = workspace.run(*REGISTER, "++mlflow.run_name=first", "++registry.alias=champion")
    assert (version.version, version.run_id, version.checkpoint) == ("1", first, "best")
    stored = client.get_model_version("cells", "1")
    assert stored.source == f"runs:/{first}/checkpoints/best.ckpt"
    assert stored.run_id == first
    assert stored.tags["serotiny.ensemble"] == "false"
    assert stored.tags["serotiny.run_name"] == "first"
    # Registering it again is the same version: the command is as safe to rerun as train.
    again = workspace.run(*REGISTER, "++mlflow.run_name=first", "++registry.alias=champion")
    assert again.version == "1" and version_count(client) == 1

    by_run = load_model_from_checkpoint(workspace.uri, first)
    for uri in ("models:/cells@champion", "models:/cells/1", "models:/cells/latest"):
        assert same_weights(load_model_from_checkpoint(workspace.uri, uri), by_run), uri

    metrics = workspace.run("test", "++mlflow.run_id=models:/cells@champion")
    assert client.get_run(first).data.metrics["test_accuracy"] == metrics["test_accuracy"]
    path = workspace.run("predict", "++mlflow.run_id=models:/cells@champion")
    assert len(pd.read_parquet(path)) == 300
    artifacts = {item.path for item in client.list_artifacts(first, "predictions")}
    assert "predictions/predictions.parquet" in artifacts

    # Another run takes the alias; the first version stays what it was.
    promoted = workspace.run(*REGISTER, "++mlflow.run_name=second", "++registry.alias=champion")
    assert (promoted.version, promoted.run_id) == ("2", second)
    assert str(client.get_model_version_by_alias("cells", "champion").version) == "2"
    champion = load_model_from_checkpoint(workspace.uri, "models:/cells@champion")
    assert same_weights(champion, load_model_from_checkpoint(workspace.uri, second))
    assert not same_weights(champion, by_run)
    assert same_weights(load_model_from_checkpoint(workspace.uri, "models:/cells/1"), by_run)


def test_a_version_is_the_checkpoint_it_was_registered_with(workspace: Workspace) -> None:
    run_id = train(workspace, "both")
    best = workspace.run(*REGISTER, "++mlflow.run_name=both")
    last = workspace.run(*REGISTER, "++mlflow.run_name=both", "++checkpoint.use=last")
    assert (best.version, best.checkpoint, last.version, last.checkpoint) == (
        "1",
        "best",
        "2",
        "last",
    )
    client = workspace.client()
    assert client.get_model_version("cells", "2").source == f"runs:/{run_id}/checkpoints/last.ckpt"
    loaded = load_model_from_checkpoint(workspace.uri, "models:/cells/2")
    assert same_weights(
        loaded, load_model_from_checkpoint(workspace.uri, run_id, checkpoint="last")
    )
    # A version's checkpoint is fixed: asking it for the other one is a mistake, said so.
    with pytest.raises(RegistryError, match="is the last checkpoint of run"):
        load_model_from_checkpoint(workspace.uri, "models:/cells/2", checkpoint="best")
    # checkpoint.use is the run's setting; a version named by its URI keeps its own.
    workspace.run("test", "++mlflow.run_id=models:/cells/2", "++checkpoint.use=best")


def test_a_cross_validation_registers_its_folds_as_one_ensemble_when_it_finishes(
    workspace: Workspace,
) -> None:
    workspace.run(
        "train",
        "++cv.folds=2",
        "++trainer.max_epochs=1",
        "++mlflow.run_name=cv",
        "++registry.name=cells",
        "++registry.alias=ensemble",
        "++registry.register_after_training=true",
    )
    client = workspace.client()
    parent = workspace.run_named("cv").info.run_id
    assert version_count(client) == 1  # the parent; its folds are not versions of their own
    stored = client.get_model_version_by_alias("cells", "ensemble")
    assert (stored.run_id, stored.source) == (parent, f"runs:/{parent}")
    assert stored.tags["serotiny.ensemble"] == "true"
    model = load_model_from_checkpoint(workspace.uri, "models:/cells@ensemble")
    assert isinstance(model, EnsembleModule) and len(model.members) == 2
    for member, fold in zip(model.members, ("cv-fold0", "cv-fold1"), strict=True):
        run_id = workspace.run_named(fold).info.run_id
        assert same_weights(member, load_model_from_checkpoint(workspace.uri, run_id))
    # Registering the parent by hand gives the version it already is.
    assert workspace.run(*REGISTER, "++mlflow.run_name=cv").version == str(stored.version)


def test_training_registers_its_run_when_configured(workspace: Workspace) -> None:
    configured = ("++registry.name=cells", "++registry.alias=fresh")
    run_id = train(workspace, "auto", *configured, "++registry.register_after_training=true")
    client = workspace.client()
    # What `serotiny train` calls once the run is FINISHED (see commands/train.py).
    settings = read_settings(
        workspace.compose(
            "train",
            "++mlflow.run_name=auto",
            *configured,
            "++registry.register_after_training=true",
        )
    )
    version = register_if_configured(client, run_id, settings)
    assert version is not None and version.run_id == run_id
    assert client.get_model_version_by_alias("cells", "fresh").run_id == run_id
    assert version_count(client) == 1

    unset = read_settings(workspace.compose("train", "++mlflow.run_name=auto", *configured))
    assert register_if_configured(client, run_id, unset) is None
    folded = read_settings(
        workspace.compose(
            "train",
            *configured,
            "++registry.register_after_training=true",
            f"++mlflow.parent_run_id={run_id}",
        )
    )
    assert register_if_configured(client, run_id, folded) is None
    assert version_count(client) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("register", "++mlflow.run_name=x"), "which registered model"),
        (("test", "++mlflow.run_id=models:/cells@champion"), "no registered model 'cells'"),
        (("predict", "++mlflow.run_id=models:/gold"), "not a model URI"),
        ((*REGISTER, "++registry.alias=v2", "++mlflow.run_name=x"), "registry.alias='v2'"),
        (("train", "++registry.register_after_training=true"), "add \\+\\+registry.name=NAME"),
        (("register", "++registry.name=a/b", "++mlflow.run_name=x"), "registry.name='a/b'"),
    ],
)
def test_registry_mistakes_are_one_clear_error(
    workspace: Workspace, overrides: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SerotinyUserError, match=message):
        workspace.run(*overrides)
    assert workspace.client().search_registered_models() == []


def test_unknown_aliases_and_versions_and_unfit_runs_are_refused(workspace: Workspace) -> None:
    client = workspace.client()
    client.create_registered_model("cells")
    with pytest.raises(RegistryError, match="no alias 'gold' \\(its aliases: none\\)"):
        workspace.run("test", "++mlflow.run_id=models:/cells@gold")
    with pytest.raises(RegistryError, match="no version 4 \\(its versions: none yet\\)"):
        load_model_from_checkpoint(workspace.uri, "models:/cells/4")

    experiment = client.get_experiment_by_name("default") or client.create_experiment("default")
    experiment_id = experiment if isinstance(experiment, str) else experiment.experiment_id
    client.create_run(experiment_id, run_name="running")
    with pytest.raises(RegistryError, match="'running' .* is RUNNING, not FINISHED"):
        workspace.run(*REGISTER, "++mlflow.run_name=running")
    empty = client.create_run(experiment_id, run_name="empty").info.run_id
    client.set_terminated(empty, "FINISHED")
    with pytest.raises(RegistryError, match="has no checkpoint under 'checkpoints/'"):
        workspace.run(*REGISTER, "++mlflow.run_name=empty")
    assert version_count(client) == 0  # nothing half-registered


def test_the_templates_commented_registry_section_is_a_valid_one(workspace: Workspace) -> None:
    train_yaml = workspace.root / "a_tiny_project" / "config" / "train.yaml"
    lines = train_yaml.read_text().splitlines()
    start = lines.index("# registry:")
    section = [line.removeprefix("# ") for line in lines[start : start + 4]]
    train_yaml.write_text("\n".join([*lines[:start], *section, *lines[start + 4 :]]) + "\n")
    registry = read_settings(workspace.compose("train")).registry
    assert (registry.name, registry.register_after_training) == ("cells", True)


def assert_one_line_error(result: CliResult, fragment: str) -> None:
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_the_command_line_registers_and_refuses_unknown_aliases(workspace: Workspace) -> None:
    run_id = train(workspace, "cli")
    project = workspace.root
    result = run_cli(
        *REGISTER,
        "++mlflow.run_name=cli",
        "++registry.alias=champion",
        cwd=project,
        project=project,
    )
    assert result.returncode == 0, result.output
    assert f"registered run 'cli' ({run_id}) as version 1 of model 'cells'" in result.output
    assert "load it as models:/cells@champion" in result.output
    unknown = run_cli("predict", "++mlflow.run_id=models:/cells@gold", cwd=project, project=project)
    assert_one_line_error(unknown, "registered model 'cells' has no alias 'gold'")


def test_registry_on_a_server_backed_by_postgres(
    workspace: Workspace, mlflow_postgres_server: MlflowServer
) -> None:
    server = f"++mlflow.tracking_uri={mlflow_postgres_server.uri}"
    client = MlflowClient(tracking_uri=mlflow_postgres_server.uri)
    run_id = train(workspace, "remote", server, client=client)
    version = workspace.run(*REGISTER, server, "++mlflow.run_name=remote", "++registry.alias=prod")
    assert (version.version, version.run_id) == ("1", run_id)
    stored = client.get_model_version_by_alias("cells", "prod")
    assert stored.source == f"runs:/{run_id}/checkpoints/best.ckpt"
    assert workspace.run(*REGISTER, server, "++mlflow.run_name=remote").version == "1"

    champion = load_model_from_checkpoint(mlflow_postgres_server.uri, "models:/cells@prod")
    assert same_weights(champion, load_model_from_checkpoint(mlflow_postgres_server.uri, run_id))
    metrics = workspace.run("test", server, "++mlflow.run_id=models:/cells@prod")
    assert client.get_run(run_id).data.metrics["test_accuracy"] == metrics["test_accuracy"]
    with pytest.raises(RegistryError, match="no alias 'staging' \\(its aliases: prod\\)"):
        load_model_from_checkpoint(mlflow_postgres_server.uri, "models:/cells@staging")
    with pytest.raises(RegistryError, match="no registered model 'other'"):
        load_model_from_checkpoint(mlflow_postgres_server.uri, "models:/other/1")
    assert not (workspace.root / "mlruns.db").with_name("mlartifacts").exists()


def test_a_commands_folder_names_the_registered_model_it_loads() -> None:
    cfg = OmegaConf.create({"mlflow": {"run_id": "models:/cells@champion"}, "model": {}})
    assert job_label(_root_=cfg) == "cells-champion"
