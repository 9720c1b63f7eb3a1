"""The training config (training_ecmc/config.py): every shipped YAML loads, `--set` overrides, numbers
given as text, wrong types, choices, and the freezing keys. File-level errors (YAML syntax, bytes that
are not UTF-8, keys given twice): test_bad_inputs.py."""

from pathlib import Path

import pytest

from training_ecmc.config import DEFAULTS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


# every training config we ship (accelerate_*.yaml are accelerate's own launcher configs)
@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")
                                        if not p.name.startswith("accelerate")))
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg["stage1"]["epochs"] > 0 and cfg["stage2"]["epochs"] > 0


def test_override_syntax():
    cfg = load_config(None, ["stage1.epochs=3", "model.overrides={modalities: [audio, text]}"])
    assert cfg["stage1"]["epochs"] == 3 and cfg["model"]["overrides"] == {"modalities": ["audio", "text"]}
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(None, ["stage1.epochs"])


def test_numbers_as_text_and_wrong_types():
    assert load_config(None, ["stage1.learning_rate=1e-3"])["stage1"]["learning_rate"] == 1e-3
    with pytest.raises(ConfigError, match="stage1.epochs must be a number"):
        load_config(None, ["stage1.epochs=many"])
    with pytest.raises(ConfigError, match="stage1.balanced_sampler"):
        load_config(None, ["stage1.balanced_sampler=[1]"])


def test_select_by_choices():
    with pytest.raises(ConfigError, match="stage2.select_by 'accuracy' is not one of"):
        load_config(None, ["stage2.select_by=accuracy"])
    with pytest.raises(ConfigError, match="unknown key 'select_by' in stage1"):  # stage 1 writes no captions
        load_config(None, ["stage1.select_by=readback"])


def test_what_trains_is_one_key_per_stage():
    """`stageN.train` lists the parameter-name prefixes that train (the paper's split by default);
    the former freeze / unfreeze keys are unknown keys that point to it."""
    assert DEFAULTS["stage1"]["train"] == ["model.bridge"]
    assert DEFAULTS["stage2"]["train"] == ["model.bridge", "language_projections"]
    demo = load_config(ROOT / "configs" / "offline_demo.yaml")
    assert demo["stage2"]["train"] == ["language_projections"] and demo["stage1"]["train"] == ["model.bridge"]
    for key in ("freeze", "unfreeze"):
        with pytest.raises(ConfigError, match=f"unknown key '{key}' in stage2 .*stageN.train"):
            load_config(None, [f"stage2.{key}=[model.bridge]"])
    with pytest.raises(ConfigError, match="stage1.train must list parameter-name prefixes"):
        load_config(None, ["stage1.train=[1]"])
    with pytest.raises(ConfigError, match="stage2.train must be a list"):
        load_config(None, ["stage2.train=model.bridge"])


def test_trainer_args_pass_any_trainingarguments_field_through(tmp_path):
    """`training.trainer_args` reaches TrainingArguments as given (TrainingArguments checks the
    values); `training.report_to` chooses the loggers (none by default); a field ECMC sets from its own
    key, a name that is no field, or a value TrainingArguments rejects is a ConfigError naming it."""
    from training_ecmc.stages import training_arguments

    cfg = load_config(None, ["training.trainer_args={max_grad_norm: 0.25, dataloader_drop_last: true, optim: sgd}",
                             "training.report_to=[tensorboard]"])
    args = training_arguments(cfg, 1, tmp_path)
    assert (args.max_grad_norm, args.dataloader_drop_last, args.optim.value) == (0.25, True, "sgd")
    assert args.report_to == ["tensorboard"]
    assert training_arguments(load_config(), 1, tmp_path).report_to == []  # private by default
    with pytest.raises(ConfigError, match="trainer_args.learning_rate is set by stageN.learning_rate"):
        load_config(None, ["training.trainer_args={learning_rate: 1.0}"])
    with pytest.raises(ConfigError, match="trainer_args.max_grad_nrom is not a TrainingArguments field"):
        load_config(None, ["training.trainer_args={max_grad_nrom: 1.0}"])
    with pytest.raises(ConfigError, match="TrainingArguments rejects them"):
        training_arguments(load_config(None, ["training.trainer_args={optim: no_such_optimizer}"]), 1, tmp_path)
    with pytest.raises(ConfigError, match="report_to must list integration names"):
        load_config(None, ["training.report_to=[1]"])


def test_precision_auto_is_bf16_only_where_bf16_is_native(tmp_path, monkeypatch):
    """`training.precision: auto` (the demo's): bf16 autocast where the hardware has bf16 units, fp32
    elsewhere (emulated bf16 was ~9x slower on an AVX2 CPU); the explicit values stay as given."""
    from training_ecmc import stages

    cfg = load_config(None, ["training.precision=auto"])
    for native, bf16 in ((True, True), (False, False)):
        monkeypatch.setattr(stages, "native_bf16", lambda native=native: native)
        assert stages.training_arguments(cfg, 1, tmp_path).bf16 is bf16
    assert stages.resolve_precision("fp16") == "fp16" and stages.resolve_precision("bf16") == "bf16"
    with pytest.raises(ConfigError, match="not one of"):
        load_config(None, ["training.precision=fp8"])


DEEPSPEED_BATCHES = {  # DeepSpeed JSON fields -> the error (None: accepted), for the paper config's stages
    "auto everywhere": ({}, None),
    "numbers that agree with both stages": ({"train_batch_size": 128, "train_micro_batch_size_per_gpu": "auto"}, None),
    "a micro-batch for one stage only": ({"train_micro_batch_size_per_gpu": 8}, "stage1.batch_size is 64"),
    "accumulation for one stage only": ({"gradient_accumulation_steps": 8}, "stage1.gradient_accumulation_steps is 1"),
    "a total that does not divide": ({"train_batch_size": 100}, "64 x gradient_accumulation_steps 1 = 64 per process does not divide"),
    "a total meaning two world sizes": ({"train_batch_size": 128}, r"means \[2, 4\] processes"),  # stage 2: 8 x 4
    "ZeRO-3": ({"zero_optimization": {"stage": 3}}, "ZeRO stage 3, which ECMC does not support"),
}


@pytest.mark.parametrize("case", list(DEEPSPEED_BATCHES))
def test_deepspeed_batch_fields_must_agree_with_both_stages(case, tmp_path):
    """The paper config (stage 1: 64 per process; stage 2: 8 x accumulation 8) with a DeepSpeed file whose
    batch fields are numbers: refused at load time, not after the model is loaded on every GPU."""
    import json

    fields, error = DEEPSPEED_BATCHES[case]
    ds = json.loads((ROOT / "configs" / "deepspeed_zero2.json").read_text())
    ds.update(fields)
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(ds))
    overrides = [f"training.deepspeed={path}"] + (["stage2.gradient_accumulation_steps=4"] if "two" in case else [])
    if error is None:
        load_config(ROOT / "configs" / "paper.yaml", overrides)
    else:
        with pytest.raises(ConfigError, match=error):
            load_config(ROOT / "configs" / "paper.yaml", overrides)


def test_a_set_path_into_a_free_form_mapping_sets_one_entry():
    """`--set model.overrides.<field>=v` adds to the config file's overrides (the demo config's
    `prompt_transcript` stays; it was dropped, so a run 'with one more override' lost the
    transcript); the rest of the path is one key (learning-rate prefixes hold dots); a whole
    mapping replaces."""
    demo = ROOT / "configs" / "offline_demo.yaml"
    cfg = load_config(demo, ["model.overrides.modality_loss_weight=1.0", "stage2.learning_rates.model.bridge=3e-4",
                             "stage2.lora.r=4"])
    assert cfg["model"]["overrides"] == {**load_config(demo)["model"]["overrides"], "modality_loss_weight": 1.0}
    assert cfg["model"]["overrides"]["prompt_transcript"] is True
    assert cfg["stage2"]["learning_rates"] == {"model.bridge": 3e-4}
    assert cfg["stage2"]["lora"] == {**load_config(demo)["stage2"]["lora"], "r": 4}
    assert load_config(demo, ["model.overrides={soft_tokens: per_modality}"])["model"]["overrides"] == {
        "soft_tokens": "per_modality"}
    assert load_config(None, ["stage2.lora.r=4"])["stage2"]["lora"] == {"r": 4}
