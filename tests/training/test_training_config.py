"""training.config: the typed config, YAML files, overrides, and every shipped config."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import TrainConfig, config_from_dict, help_text, load_config, parse_overrides

CONFIG_DIR = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_config_every_shipped_config_loads(path: Path) -> None:
    import yaml

    if "train_config" in yaml.safe_load(path.read_text(encoding="utf-8")):
        pytest.skip("a self_training config; it names a training config, tested here")
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    assert cfg.model or cfg.model_config
    assert cfg.train_files


def test_config_ships_tiny_and_base() -> None:
    assert {p.name for p in CONFIG_DIR.glob("*.yaml")} >= {"tiny.yaml", "base.yaml"}
    assert load_config(CONFIG_DIR / "tiny.yaml").model_config["model_type"]
    assert load_config(CONFIG_DIR / "base.yaml").model


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["lr=1e-3"], {"lr": "1e-3"}),  # YAML 1.1 reads 1e-3 as a string; the config types it
        (["--lr", "0.5", "--max-steps=7"], {"lr": 0.5, "max_steps": 7}),
        (["compile=true", "tasks=[SCNM, TCREE]"], {"compile": True, "tasks": ["SCNM", "TCREE"]}),
        (["train_files=a.jsonl,b.jsonl"], {"train_files": "a.jsonl,b.jsonl"}),
        (["resume="], {"resume": ""}),
    ],
)
def test_config_parse_overrides(args: list[str], expected: dict[str, object]) -> None:
    assert parse_overrides(args) == expected


def test_config_overrides_win_over_the_file_and_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: some/model\nlr: 3.0e-4\nmax_steps: 5\n", encoding="utf-8")
    cfg = load_config(path, ["max_steps=9", "--lr", "1e-3", "train_files=a.jsonl,b.jsonl"])
    assert (cfg.max_steps, cfg.lr, cfg.train_files) == (9, 1e-3, ["a.jsonl", "b.jsonl"])
    assert isinstance(cfg.lr, float) and isinstance(cfg.max_steps, int)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "m", "learning_rate": 1}, "unknown config key 'learning_rate'"),
        ({"model": "m", "max_stpes": 1}, "did you mean 'max_steps'"),
        ({"model": "m", "max_steps": "ten"}, "max_steps: expected an integer"),
        ({"model": "m", "compile": "maybe"}, "compile: expected true or false"),
        ({"model": "m", "precision": "fp8"}, "precision: expected one of"),
        ({"model": "m", "compile": True, "liger": True}, "compile and liger cannot be combined"),
        ({}, "set either model"),
        ({"model": "m", "rows_per_batch": 0}, "rows_per_batch must be at least 1"),
    ],
)
def test_config_rejects_bad_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(values)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: m\nmax_steps: many\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml: max_steps"):
        load_config(path)


def test_config_help_lists_every_field() -> None:
    text = help_text()
    for name in TrainConfig.__dataclass_fields__:
        assert f"  {name} (" in text
    assert all(f.metadata.get("help") for f in TrainConfig.__dataclass_fields__.values())
