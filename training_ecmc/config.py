"""Training configuration: a YAML file under `configs/` merged over `DEFAULTS`, then `--set a.b=value`
overrides. Unknown keys are errors, raised before any long work starts."""

import copy
from pathlib import Path

import yaml

DEFAULTS = {
    "seed": 0,
    "output_dir": "outputs/demo",
    "model": {
        "preset": "offline",  # offline | paper; or `checkpoint`: a saved ECMC folder to start from
        "checkpoint": None,
        "overrides": {},  # ECMCConfig fields, e.g. {modalities: [audio, text], loss_variant: reference}
    },
    "data": {
        "synth_preset": "demo",  # build ECMC-Synth when `dataset` does not exist yet (null: never)
        "synth_dir": "outputs/ecmc-synth",
        "dataset": "outputs/ecmc-synth-dataset",  # a saved DatasetDict (processing_ecmc.data_cli)
        "cache_dir": "outputs/feature-cache",
        "min_duration": 2.0,
        "cache_batch_size": 8,
    },
    "stage1": {
        "epochs": 20,
        "batch_size": 32,
        "learning_rate": 1.3e-5,  # paper
        "weight_decay": 1e-6,  # paper
        "warmup_ratio": 0.0,
        "lr_scheduler": "linear",  # any transformers scheduler name: linear, cosine, constant, ...
        "balanced_sampler": True,
        "early_stopping_patience": 5,
        "eval_every_epochs": 1,
    },
    "stage2": {
        "epochs": 2,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-4,  # paper
        "weight_decay": 0.0,
        "warmup_ratio": 0.0,
        "lr_scheduler": "linear",
        "balanced_sampler": False,
        "early_stopping_patience": 3,
        "eval_every_epochs": 1,
        "contrastive_weight": 0.0,  # > 0 adds w * (L_emo + L_cog) to the caption loss (not in the paper)
        "lora": None,  # e.g. {r: 8, alpha: 16, target_modules: [q_proj, v_proj]}: peft LoRA on the LLM
        "unfreeze": [],  # extra parameter-name prefixes to train, e.g. [language_model.lm_head]
        "freeze": [],  # parameter-name prefixes to keep frozen, e.g. [model.bridge.emotion.qformers]
    },
    "training": {
        "precision": "fp32",  # fp32 | bf16 | fp16
        "gradient_checkpointing": False,
        "num_workers": 0,
        "deepspeed": None,  # path of a DeepSpeed config, e.g. configs/deepspeed_zero2.json
        "logging_steps": 5,
        "save_total_limit": 2,
    },
    "evaluate": {
        "split": "test",
        "max_new_tokens": 96,
        "batch_size": 16,
        "num_examples": 4,  # captions shown in the report (never logged)
        "profile_subjects": 1,
    },
}


class ConfigError(ValueError):
    pass


def _merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys: {sorted(base)}")
        free_form = key in ("overrides", "lora") or base[key] is None
        if isinstance(base[key], dict) and not free_form:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            out[key] = _typed(value, base[key], f"{where}.{key}")
    return out


def _typed(value, default, where: str):
    """Numbers given as text (YAML reads `1e-3` as a string) become numbers; a value of the wrong
    type for its key is an error now, not a crash deep inside training."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, type(default)):
        raise ConfigError(f"{where} must be a {type(default).__name__}, got {value!r}")
    return value


def _parse_override(text: str):
    if "=" not in text:
        raise ConfigError(f"--set expects key.path=value, got {text!r}")
    path, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    nested = value
    for key in reversed(path.split(".")):
        nested = {key: nested}
    return nested


def load_config(path=None, overrides=()) -> dict:
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        config = _merge(config, loaded, str(path))
    for text in overrides:
        config = _merge(config, _parse_override(text), f"--set {text}")
    return config
