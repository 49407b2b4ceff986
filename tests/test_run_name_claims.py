"""Two commands started at once with one run name: only one of them gets to train it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from serotiny.errors import RunLookupError
from serotiny.settings.reading import read_settings
from serotiny.tracking import claims
from serotiny.tracking.claims import claim_training_run
from serotiny.tracking.run_names import find_runs_by_name
from serotiny.tracking.store import connect


def test_simultaneous_commands_never_both_claim_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    cfg = OmegaConf.create(
        {
            "seed": 1,
            "model": {"_target_": "serotiny.models.BasicModel"},
            "paths": {"root": str(tmp_path), "output_dir": str(tmp_path / "out")},
            "mlflow": {"tracking_uri": uri, "experiment_name": "race", "run_name": "same"},
        }
    )
    # Widen the gap between looking the name up and acting on it, so that without the
    # store's lock both commands would see no run and both create one.
    looked_up = find_runs_by_name

    def slow_lookup(*args: object) -> list:
        runs = looked_up(*args)  # type: ignore[arg-type]
        time.sleep(1.0)
        return runs

    monkeypatch.setattr(claims, "find_runs_by_name", slow_lookup)
    connect(uri)  # the store exists before the race, as after a first command
    claimed: list[str] = []
    refused: list[str] = []

    def command() -> None:
        try:
            claimed.append(claim_training_run(cfg, read_settings(cfg)).run_id)
        except RunLookupError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=command) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(claimed) == 1 and len(refused) == 1, (claimed, refused)
    assert "cannot be trained now" in refused[0]
    client = connect(uri)
    experiment = client.get_experiment_by_name("race")
    runs = find_runs_by_name(client, experiment.experiment_id, "same")
    assert [run.info.run_id for run in runs] == claimed
