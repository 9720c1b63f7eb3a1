"""Training configuration: a YAML file under `configs/` merged over `DEFAULTS`, then `--set a.b=value`
overrides. Unknown keys (also inside `model.overrides` and `stage2.lora`), keys given twice, values of
the wrong type, out of range or not among a key's choices (`CHOICES`) are `ConfigError`s naming the
file (and line, for YAML syntax), raised before any long work starts."""

import copy
import math
from pathlib import Path

import yaml

from modeling_ecmc.atomic_io import read_utf8
from modeling_ecmc.components import PAPER_COMPONENTS

DEFAULTS = {
    "seed": 0,
    "output_dir": "outputs/demo",
    "model": {
        # offline: the CPU default (modeling_ecmc.presets); paper: assembled from `components` (written
        # once to <output_dir>/init, or by `ecmc init`); or `checkpoint`: a saved ECMC folder to start from
        "preset": "offline",
        "checkpoint": None,
        "overrides": {},  # ECMCConfig fields, e.g. {modalities: [audio, text], loss_variant: reference, prompt_transcript: true}
        # preset paper: each part (video, audio, text, qformer_init, llm, llm_gguf_file) by hub id or
        # local folder; the defaults are the paper's (modeling_ecmc/components.py, PAPER_COMPONENTS)
        "components": dict(PAPER_COMPONENTS),
        # preset paper (real recordings): cut the sampled frames to the patient's face (faces extra);
        # false keeps the whole frame. The offline preset always keeps it (ECMC-Synth's cartoon faces)
        "face_crop": True,
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
        # what trains: the parameter-name prefixes left trainable, all else frozen (paper: the BridgeNet;
        # the encoders stay frozen, so the feature cache holds); the one place of the freezing policy
        "train": ["model.bridge"],
        "learning_rates": {},  # parameter-name prefix -> its own learning rate, e.g. {model.bridge.emotion.heads: 3e-3}
        "seed": None,  # this stage's seed (data order, dropout, LoRA init); null: the top-level seed
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
        "contrastive_weight": 0.0,  # > 0 adds w * (L_emo + L_cog) to the caption loss (not in the paper)
        # with the transcript in the prompt (model.overrides.prompt_transcript): the share of training
        # prompts, drawn anew each epoch, that leave the words out, so that the decoder also learns to
        # read the soft tokens (not in the paper; 0: every prompt has them; validation always has them)
        "transcript_dropout": 0.0,
        # which epoch's checkpoint is kept: "loss" (lowest validation loss, the paper) or "readback"
        # (highest label read-back from greedy validation captions: the mean of emotion accuracy and
        # cognition exact match; costs one captioning pass over the validation split per evaluation)
        "select_by": "loss",
        "lora": None,  # e.g. {r: 8, alpha: 16, target_modules: [q_proj, v_proj]}: peft LoRA on the LLM
        # the parameter-name prefixes that train (paper: the BridgeNet and the LLM projections; encoders
        # and LLM frozen); the LoRA weights train as well. E.g. [language_projections] keeps the whole
        # BridgeNet as stage 1 left it; [model.bridge.cognition, language_projections, language_model.lm_head]
        "train": ["model.bridge", "language_projections"],
        "learning_rates": {},  # parameter-name prefix -> its own learning rate, e.g. {language_model: 1e-3}
        "seed": None,  # this stage's seed (data order, dropout, LoRA init); null: the top-level seed
    },
    "training": {
        # fp32 | bf16 | fp16 | auto (bf16 where it is native: a GPU that has it, or a CPU with AMX /
        # AVX512-BF16; fp32 elsewhere, where bf16 autocast is emulated and ~9x slower)
        "precision": "fp32",
        "gradient_checkpointing": False,
        "num_workers": 0,
        "deepspeed": None,  # path of a DeepSpeed config, e.g. configs/deepspeed_zero2.json
        "logging_steps": 5,
        "save_total_limit": 2,
        # where the Trainer logs: [] (nowhere but the console and log_history.json: private by default),
        # or integrations such as [tensorboard] (in the `train` extra; logs under <output_dir>/stageN/runs)
        "report_to": [],
        # any other `TrainingArguments` field, passed through as given (TrainingArguments checks the
        # values), e.g. {max_grad_norm: 0.5, dataloader_persistent_workers: true, torch_compile: true};
        # fields that have their own key above (TRAINER_ARG_KEYS) are set there instead
        "trainer_args": {},
    },
    "evaluate": {
        "split": "test",
        "max_new_tokens": None,  # new tokens per caption; null: the checkpoint's generation_config.json (128)
        "batch_size": 16,
        "num_examples": 4,  # captions shown in the report (never logged)
        "profile_subjects": 1,
        # the text-only LLM row beside ECMC: "decoder" (the checkpoint's own LLM, transcript only),
        # "default" (SmolLM2-135M-Instruct as shipped), "auto" ("default" if stage 2 merged a LoRA into
        # the decoder, else "decoder"), a causal LM hub id / local folder, or null to skip
        "text_baseline": "auto",
        # the LLM that writes profiles and answers the detection questions: the same choices (not null)
        "llm": "auto",
        "detection": True,  # depression / anxiety with and without profiles (Tables 3-4 layout)
    },
}


class ConfigError(ValueError):
    pass


# Values with a fixed set of choices, and numbers with a lower bound: checked when the config is
# loaded, so a typo fails in a second instead of silently changing the run (e.g. `precision: fp8`
# training in fp32) or crashing after the data set and the feature cache were built.
CHOICES = {
    "model.preset": ("offline", "paper"),
    "data.synth_preset": ("tiny", "demo", None),
    "training.precision": ("fp32", "bf16", "fp16", "auto"),
    "evaluate.split": ("train", "validation", "test"),
    "stage2.select_by": ("loss", "readback"),
}
FREE_FORM_TYPES = {  # keys whose default is None: the type a value must have
    "model.checkpoint": str, "model.components.llm_gguf_file": str, "data.synth_preset": str, "training.deepspeed": str, "stage2.lora": dict,
    "stage1.seed": int, "stage2.seed": int, "evaluate.max_new_tokens": int,
}
NULLABLE = ("data.synth_preset", "evaluate.text_baseline")  # keys with a non-null default that may be set to null
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")
REPLACED = {key: "the prefixes that train are listed in stageN.train" for key in ("freeze", "unfreeze")}
FREE_FORM_SECTIONS = ("overrides", "lora", "learning_rates", "trainer_args")  # mappings whose keys are not ours to list
# `TrainingArguments` fields that ECMC sets from its own keys: one place for each, so trainer_args may not set them
TRAINER_ARG_KEYS = {
    "output_dir": "output_dir", "num_train_epochs": "stageN.epochs", "per_device_train_batch_size": "stageN.batch_size",
    "per_device_eval_batch_size": "stageN.batch_size", "gradient_accumulation_steps": "stageN.gradient_accumulation_steps",
    "learning_rate": "stageN.learning_rate", "weight_decay": "stageN.weight_decay", "warmup_steps": "stageN.warmup_ratio",
    "lr_scheduler_type": "stageN.lr_scheduler", "seed": "stageN.seed", "data_seed": "stageN.seed",
    "bf16": "training.precision", "fp16": "training.precision", "gradient_checkpointing": "training.gradient_checkpointing",
    "activation_checkpointing": "training.gradient_checkpointing", "dataloader_num_workers": "training.num_workers",
    "deepspeed": "training.deepspeed", "logging_steps": "training.logging_steps",
    "save_total_limit": "training.save_total_limit", "report_to": "training.report_to",
    "metric_for_best_model": "stage2.select_by", "greater_is_better": "stage2.select_by",
    "label_names": "the stage (fixed)", "remove_unused_columns": "the stage (fixed)",
}
_POSITIVE = ("epochs", "batch_size", "learning_rate", "gradient_accumulation_steps",
             "cache_batch_size", "logging_steps", "max_new_tokens")
_NON_NEGATIVE = ("weight_decay", "warmup_ratio", "early_stopping_patience", "contrastive_weight", "transcript_dropout",
                 "min_duration", "num_workers", "save_total_limit", "num_examples", "profile_subjects")


def _merge(base: dict, update: dict, source: str, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            hint = f" ({REPLACED[key]})" if key in REPLACED and "train" in base else ""
            raise ConfigError(f"{source}: unknown key {key!r}{' in ' + prefix[:-1] if prefix else ''}{hint}; "
                              f"known keys: {sorted(base)}")
        free_form = key in FREE_FORM_SECTIONS or base[key] is None
        if isinstance(base[key], dict) and not free_form:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, source, f"{dotted}.")
        else:
            out[key] = _typed(value, base[key], f"{source}: {dotted}")
    return out


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _typed(value, default, where: str):
    """Numbers given as text (YAML reads `1e-3` as a string) become numbers; a value of the wrong
    type for its key is an error now, not a crash deep inside training."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
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
        raise ConfigError(f"{where} must be {_a(type(default).__name__)}, got {value!r}")
    return value


def _flatten(config: dict, prefix: str = ""):
    for key, value in config.items():
        if isinstance(value, dict) and key not in FREE_FORM_SECTIONS:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def validate(config: dict, source: str = "config") -> dict:
    """Values in range, choices among the known ones, free-form sections with known keys."""
    defaults = dict(_flatten(DEFAULTS))
    for dotted, value in _flatten(config):
        name = dotted.rsplit(".", 1)[-1]
        if value is None and defaults.get(dotted) is not None and dotted not in NULLABLE:
            raise ConfigError(f"{source}: {dotted} must be set (default {defaults[dotted]!r}), got null")
        if dotted in CHOICES and value not in CHOICES[dotted]:
            raise ConfigError(f"{source}: {dotted} {value!r} is not one of {list(CHOICES[dotted])}")
        if dotted in FREE_FORM_TYPES and value is not None and not isinstance(value, FREE_FORM_TYPES[dotted]):
            raise ConfigError(f"{source}: {dotted} must be {_a(FREE_FORM_TYPES[dotted].__name__)} or null, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{source}: {dotted} must be a finite number, got {value!r}")
            if name in _POSITIVE and value <= 0:
                raise ConfigError(f"{source}: {dotted} must be > 0, got {value!r}")
            if name in _NON_NEGATIVE and value < 0:
                raise ConfigError(f"{source}: {dotted} must be >= 0, got {value!r}")
            if name == "warmup_ratio" and value >= 1:
                raise ConfigError(f"{source}: {dotted} is a fraction of the training steps: use 0 <= value < 1")
            if name == "transcript_dropout" and value >= 1:
                raise ConfigError(f"{source}: {dotted} is a share of the training prompts: use 0 <= value < 1")
    for stage in ("stage1", "stage2"):
        rates = config[stage]["learning_rates"]  # a mapping: `_merge` checked its type
        for prefix, lr in rates.items():
            lr = _typed(lr, 1.0, f"{source}: {stage}.learning_rates.{prefix}")
            if not math.isfinite(lr) or lr <= 0:
                raise ConfigError(f"{source}: {stage}.learning_rates.{prefix} must be > 0, got {lr!r}")
            rates[prefix] = lr
        train = config[stage]["train"]
        if not all(isinstance(prefix, str) and prefix for prefix in train):
            raise ConfigError(f"{source}: {stage}.train must list parameter-name prefixes, got {train!r}")
        scheduler = config[stage]["lr_scheduler"]
        from transformers import SchedulerType

        names = [s.value for s in SchedulerType]
        if scheduler not in names:
            raise ConfigError(f"{source}: {stage}.lr_scheduler {scheduler!r} is not one of {names}")
    check_trainer_args(config["training"], source)
    if config["training"]["deepspeed"] is not None:
        check_deepspeed_config(config["training"]["deepspeed"], source, config)
    lora = config["stage2"]["lora"] or {}
    unknown = sorted(set(lora) - set(LORA_KEYS))
    if unknown:
        raise ConfigError(f"{source}: stage2.lora has unknown key(s) {unknown}; known keys: {list(LORA_KEYS)}")
    overrides = config["model"]["overrides"]
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: model.overrides must be a mapping of ECMCConfig fields, got {overrides!r}")
    if overrides:
        import dataclasses

        from modeling_ecmc.configuration_ecmc import ECMCConfig

        fields = {f.name for f in dataclasses.fields(ECMCConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"{source}: model.overrides has unknown ECMCConfig field(s) {unknown}; "
                              f"ECMC's own fields: {sorted(ECMCConfig.__annotations__)}")
    return config


def check_trainer_args(training: dict, source: str):
    """`training.report_to` a list of names; `training.trainer_args` only `TrainingArguments` fields,
    none of those ECMC sets from its own keys. The values are checked by `TrainingArguments` itself,
    when the first stage's arguments are built (before the data set and the cache)."""
    import dataclasses

    from transformers import TrainingArguments

    report_to = training["report_to"]
    if not all(isinstance(name, str) and name for name in report_to):
        raise ConfigError(f"{source}: training.report_to must list integration names, e.g. [tensorboard], got {report_to!r}")
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key in training["trainer_args"]:
        if key in TRAINER_ARG_KEYS:
            raise ConfigError(f"{source}: training.trainer_args.{key} is set by {TRAINER_ARG_KEYS[key]}; use that key")
        if key not in fields:
            raise ConfigError(f"{source}: training.trainer_args.{key} is not a TrainingArguments field")


DEEPSPEED_BATCH_KEYS = {"train_micro_batch_size_per_gpu": "batch_size",
                        "gradient_accumulation_steps": "gradient_accumulation_steps"}


def check_deepspeed_config(path, source: str = "config", config: dict | None = None):
    """`training.deepspeed`: a JSON file without `optimizer` / `scheduler` blocks. With them the Trainer
    hands both to DeepSpeed, and `stageN.learning_rates` (per-prefix rates), `weight_decay`'s
    exclusions and `lr_scheduler` would be silently replaced by DeepSpeed's own. ZeRO stage 3 is
    refused: the LoRA merge and the final save need whole parameters on rank 0. Batch fields given
    as numbers must agree with both stages of `config` (one file serves both): the micro-batch and
    accumulation equal to each stage's, `train_batch_size` a multiple of each stage's micro-batch ×
    accumulation, with the same number of processes for both; DeepSpeed itself only says so after
    the model is loaded."""
    import json

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{source}: training.deepspeed: {path} is not a file")
    try:
        ds = json.loads(read_utf8(path, "DeepSpeed config", error=ConfigError))
    except ValueError as error:
        raise ConfigError(f"{source}: training.deepspeed: {path} is not valid JSON ({error})") from None
    blocks = [key for key in ("optimizer", "scheduler") if isinstance(ds, dict) and key in ds]
    if blocks:
        raise ConfigError(f"{source}: training.deepspeed: {path} defines {' and '.join(blocks)}; remove "
                          f"{'them' if len(blocks) > 1 else 'it'}: the Trainer's optimizer (stageN.learning_rates) "
                          "and scheduler (stageN.lr_scheduler) are the ones ECMC trains with")
    zero = ds.get("zero_optimization", {}) if isinstance(ds, dict) else {}
    if isinstance(zero, dict) and zero.get("stage") == 3:
        raise ConfigError(f"{source}: training.deepspeed: {path} asks for ZeRO stage 3, which ECMC does not "
                          "support (the LoRA merge and the final save need whole parameters on one process); "
                          "use stage 2 (configs/deepspeed_zero2.json): the frozen decoder is not sharded")
    if config is None or not isinstance(ds, dict):
        return
    worlds = set()
    for stage in ("stage1", "stage2"):
        s = config[stage]
        values = {"batch_size": s["batch_size"], "gradient_accumulation_steps": s.get("gradient_accumulation_steps", 1)}
        for key, field in DEEPSPEED_BATCH_KEYS.items():
            if ds.get(key, "auto") not in ("auto", values[field]):
                raise ConfigError(f"{source}: training.deepspeed: {path} sets {key} = {ds[key]}, but {stage}.{field} "
                                  f"is {values[field]}; write \"auto\" there (one file serves both stages)")
        total = ds.get("train_batch_size", "auto")
        if total != "auto":
            step = values["batch_size"] * values["gradient_accumulation_steps"]
            if not isinstance(total, int) or total % step:
                raise ConfigError(f"{source}: training.deepspeed: {path} sets train_batch_size = {total}, which "
                                  f"{stage}'s batch_size {values['batch_size']} x gradient_accumulation_steps "
                                  f"{values['gradient_accumulation_steps']} = {step} per process does not divide; "
                                  'write "auto" there')
            worlds.add(total // step)
    if len(worlds) > 1:
        raise ConfigError(f"{source}: training.deepspeed: {path} sets train_batch_size = {ds['train_batch_size']}, "
                          f"which means {sorted(worlds)} processes for the two stages; write \"auto\" there")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, but a key given twice in one mapping is an error (YAML keeps the last silently)."""


def _unique_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(path: Path):
    if not path.is_file():
        raise ConfigError(f"config file {path} not found" if not path.exists() else f"config file {path} is not a file")
    text = read_utf8(path, "config file", error=ConfigError)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except ConfigError as error:
        raise ConfigError(f"{path}, {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None


def _parse_override(text: str, config: dict):
    """`--set key.path=value` as a nested update of `config`. A path that goes on into a free-form
    mapping sets one entry of it and keeps the others (`model.overrides.prompt_transcript=true`; the
    rest of the path is that entry's key, dots and all: `stage2.learning_rates.model.bridge=3e-4`);
    a path that ends at the mapping replaces it (`model.overrides={...}`)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key.path=value, got {text!r}")
    path, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text}: the value is not valid YAML ({getattr(error, 'problem', error)})") from None
    keys, node = path.split("."), config
    for i, key in enumerate(keys[:-1]):
        node = node.get(key) if isinstance(node, dict) else None
        if key in FREE_FORM_SECTIONS:
            keys, value = keys[: i + 1], {**(node if isinstance(node, dict) else {}), ".".join(keys[i + 1:]): value}
            break
    nested = value
    for key in reversed(keys):
        nested = {key: nested}
    return nested


def load_config(path=None, overrides=()) -> dict:
    config = copy.deepcopy(DEFAULTS)
    source = "config"
    if path is not None:
        path = Path(path)
        loaded = _read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        config = _merge(config, loaded, str(path))
        source = str(path)
    for text in overrides:
        config = _merge(config, _parse_override(text, config), f"--set {text}")
    return validate(config, source + (" with --set overrides" if overrides else ""))
