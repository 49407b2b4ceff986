"""Which trained model a command or a notebook means: a run by name or id, or a version of a
registered model by its ``models:/`` URI, with the checkpoint to load.

A run is loaded with the checkpoint ``checkpoint.use`` asks for; a registered version with
the checkpoint it was registered with (its ``serotiny.checkpoint`` tag), since a version
stands for one fixed model. ``models:/cells@champion`` names the version an alias points
at, ``models:/cells/3`` a version by number, ``models:/cells/latest`` the newest one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from serotiny.errors import RunLookupError
from serotiny.settings.schema import Settings
from serotiny.tracking.registry import MODELS_PREFIX, RegisteredVersion, RegistryError
from serotiny.tracking.run_names import get_run_by_name, quoted
from serotiny.tracking.store import redacted_uri


@dataclass(frozen=True)
class ModelSource:
    """A trained run and which of its checkpoints to load; ``version`` when it was named
    through the registry."""

    run: Run
    checkpoint: str
    version: RegisteredVersion | None = None


def is_model_uri(text: str | None) -> bool:
    """Whether ``text`` is a ``models:/`` URI rather than a run id."""
    return bool(text) and str(text).startswith(MODELS_PREFIX)


def parse_model_uri(uri: str) -> tuple[str, str]:
    """``models:/cells@champion`` -> ``("cells", "@champion")``; ``models:/cells/3`` ->
    ``("cells", "3")``; ``models:/cells/latest`` -> ``("cells", "latest")``."""
    rest = uri[len(MODELS_PREFIX) :] if is_model_uri(uri) else ""
    if "@" in rest and "/" not in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, f"@{alias}"
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and (version.isdigit() or version == "latest"):
            return name, version
    raise RegistryError(
        f"'{uri}' is not a model URI serotiny reads: write models:/NAME@ALIAS, "
        "models:/NAME/VERSION or models:/NAME/latest"
    )


def registered_model(client: MlflowClient, name: str) -> dict[str, str]:
    """The model's aliases (alias -> version); one clear error when there is no such model."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise RegistryError(
            f"no registered model '{name}' at {redacted_uri(client)}; register a run first "
            f"(serotiny register ++mlflow.run_name=NAME ++registry.name={name})"
        ) from error
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def version_numbers(client: MlflowClient, name: str) -> list[int]:
    """The model's version numbers, in order."""
    found = client.search_model_versions(f"name = {quoted(name)}")
    return sorted(int(version.version) for version in found)


def resolve_model_uri(client: MlflowClient, uri: str) -> RegisteredVersion:
    """The version ``uri`` names, with its run and checkpoint; a one-line error if none."""
    name, which = parse_model_uri(uri)
    aliases = registered_model(client, name)
    if which.startswith("@"):
        version = aliases.get(which[1:])
        if version is None:
            known = ", ".join(sorted(aliases)) or "none"
            raise RegistryError(
                f"registered model '{name}' has no alias '{which[1:]}' (its aliases: {known}); "
                f"set it with serotiny register ++registry.name={name} ++registry.alias=ALIAS"
            )
        return RegisteredVersion.of(client.get_model_version(name, version))
    numbers = version_numbers(client, name)
    if which == "latest" and numbers:
        which = str(numbers[-1])
    if not which.isdigit() or int(which) not in numbers:
        shown = ", ".join(map(str, numbers)) or "none yet"
        raise RegistryError(
            f"registered model '{name}' has no version {which} (its versions: {shown})"
        )
    return RegisteredVersion.of(client.get_model_version(name, which))


def version_run(client: MlflowClient, version: RegisteredVersion) -> Run:
    """The run a registered version stands for; one clear error when it was deleted."""
    try:
        run = client.get_run(version.run_id)
    except MlflowException as error:
        raise RegistryError(
            f"version {version.version} of registered model '{version.name}' stands for run "
            f"{version.run_id}, which is gone from {redacted_uri(client)}"
        ) from error
    if run.info.lifecycle_stage == "deleted":
        raise RegistryError(
            f"version {version.version} of registered model '{version.name}' stands for run "
            f"'{run.info.run_name}' ({version.run_id}), which is deleted: restore the run"
        )
    return run


def find_model_source(client: MlflowClient, settings: Settings) -> ModelSource:
    """The model ``mlflow.run_id`` (a run id or a ``models:/`` URI) or ``mlflow.run_name``
    names, with the checkpoint to load; one clear error when it names nothing."""
    tracking = settings.mlflow
    if is_model_uri(tracking.run_id):
        version = resolve_model_uri(client, str(tracking.run_id))
        return ModelSource(version_run(client, version), version.checkpoint, version)
    checkpoint = settings.checkpoint.use.value
    if tracking.run_id:
        try:
            return ModelSource(client.get_run(tracking.run_id), checkpoint)
        except MlflowException as error:
            raise RunLookupError(
                f"no run with id '{tracking.run_id}' at {redacted_uri(client)}; check "
                "++mlflow.run_id (a run id, or models:/NAME@ALIAS for a registered model)"
            ) from error
    if not tracking.run_name:
        raise RunLookupError(
            "which run? give the trained run's name with ++mlflow.run_name=NAME (or a "
            "registered model's version with ++mlflow.run_id=models:/NAME@ALIAS)"
        )
    return ModelSource(
        get_run_by_name(client, tracking.experiment_name, tracking.run_name), checkpoint
    )
