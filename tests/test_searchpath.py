"""serotiny's packaged configs serve its own commands and never leak into other Hydra apps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import cli_env, run_cli


def test_packaged_trainer_option_is_available_to_serotiny(project: Path) -> None:
    result = run_cli("train", "trainer=cpu", "--cfg", "job", cwd=project)
    assert result.returncode == 0, result.output
    assert "accelerator: cpu" in result.stdout


def test_packaged_debug_configs_are_selectable(project: Path) -> None:
    result = run_cli("train", "debug=fast", "--cfg", "job", cwd=project)
    assert result.returncode == 0, result.output
    assert "fast_dev_run: 1" in result.stdout
    assert "experiment_name: debug" in result.stdout


def test_other_hydra_apps_do_not_see_serotiny_configs(tmp_path: Path) -> None:
    (tmp_path / "conf" / "trainer").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text("defaults:\n  - trainer: null\n")
    (tmp_path / "conf" / "trainer" / "mine.yaml").write_text("x: 1\n")
    (tmp_path / "app.py").write_text(
        "import hydra\n"
        "from omegaconf import OmegaConf\n"
        "@hydra.main(config_path='conf', config_name='config', version_base='1.3')\n"
        "def main(cfg):\n"
        "    print(OmegaConf.to_yaml(cfg))\n"
        "main()\n"
    )
    env = cli_env()
    mine = subprocess.run(
        [sys.executable, "app.py", "trainer=mine"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert mine.returncode == 0, mine.stderr
    assert "x: 1" in mine.stdout
    leaked = subprocess.run(
        [sys.executable, "app.py", "trainer=cpu"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert leaked.returncode != 0
    assert "Could not find 'trainer/cpu'" in leaked.stderr
