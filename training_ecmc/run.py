"""Both training stages from a resolved config (`training_ecmc.config.load_config`): data (ECMC-Synth
is built if the data set is missing) -> model -> feature cache (the encoders are frozen: run once) ->
stage 1 -> stage 2. `run_training` is what `train.py` and `ecmc train` run, and what the ablation
calls; the command line is `training_ecmc.cli`.

`stage2.select_by: readback` needs a read-back scorer, which training does not define (it reads the
labels back with the evaluation's caption parsing, a layer above): pass `readback`, a factory
`(processor, cfg) -> scorer`, with `scorer(model, dataset) -> float` (higher is better; `dataset` is
a `WithCaptions` split), e.g. `evaluation_ecmc.selection.readback_scorer`. It is called once, with
the run's processor, only when some stage selects by read-back.
"""

import json
import logging
import os
from pathlib import Path

import torch
import yaml
from transformers import EarlyStoppingCallback, set_seed

from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.atomic_io import write_text
from processing_ecmc.cached_dataset import cached_dataset

from .config import ConfigError
from .sampler import ContrastiveBatchSampler
from .stages import apply_stage_options, finish_lora, stage_seed, trainable_checksum, training_arguments
from .trainer import (
    CompleteCheckpointMarker,
    ECMCCollator,
    ECMCTrainer,
    WithCaptions,
    is_complete,
    last_complete_checkpoint,
    save_complete,
)

logger = logging.getLogger("ecmc.train")


# ----- data and model -----------------------------------------------------------------------
def prepare_data(cfg):
    """The DatasetDict of `data.dataset`; built from ECMC-Synth when missing and `synth_preset` is set."""
    from processing_ecmc.dataset_build import build_dataset
    from processing_ecmc.dataset_io import load_dataset_dict, save_dataset

    data = cfg["data"]
    path = Path(data["dataset"])
    if not path.exists():
        if not data["synth_preset"]:
            raise ConfigError(f"data.dataset {path} does not exist (build it with processing_ecmc.data_cli)")
        from processing_ecmc.synth import generate_synth

        manifest = generate_synth(data["synth_dir"], preset=data["synth_preset"], seed=cfg["seed"])
        dsd, dropped = build_dataset(manifest, min_duration=data["min_duration"], seed=cfg["seed"])
        save_dataset(dsd, path)
        logger.info("built %s from ECMC-Synth (%d rows dropped with reasons)", path, len(dropped))
    dsd = load_dataset_dict(path)
    for split in ("train", "validation"):
        if split not in dsd or len(dsd[split]) == 0:
            raise ConfigError(f"data set {path} has an empty {split!r} split: nothing to train or select on")
    return dsd


def build_model(cfg):
    """(model, processor) the run starts from: `model.checkpoint`, else the preset (`paper`: assembled
    from `model.components` once, into <output_dir>/init, which later runs and ranks reuse)."""
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    model_cfg = cfg["model"]
    overrides = model_cfg["overrides"]
    checkpoint = model_cfg["checkpoint"]
    if not checkpoint and model_cfg["preset"] == "paper":
        checkpoint = initial_checkpoint(cfg)
        overrides = {}  # already applied when the components were assembled
    if checkpoint:
        # `model.overrides` apply here too, e.g. a modality subset of a saved model (Table 5 ablations):
        # BridgeNet layers whose shape the overrides change (Eq. 8 heads, W_3) start fresh
        model = ECMCForConditionalGeneration.from_pretrained(checkpoint, **overrides,
                                                             ignore_mismatched_sizes=bool(overrides))
        # our installed code, never the code inside the checkpoint (SECURITY.md)
        processor = ECMCProcessor.from_pretrained(checkpoint, trust_remote_code=False)
    else:
        from modeling_ecmc.presets import build_offline_default

        model, processor = build_offline_default(**overrides)
    return model, prompts_like(model, processor)


def prompts_like(model, processor):
    """`processor`, writing the prompts `model`'s config asks for (an override may turn the
    transcript on, drop text, or give each modality its own soft tokens): the one place a run sets
    the processor's `prompt_transcript` and placeholder count."""
    processor.prompt_transcript = model.config.transcript_in_prompt
    processor.num_query_tokens = model.config.soft_tokens_per_stream
    return processor


def check_components(cfg):
    """Before any long work: the components' sources exist and their configs read (nothing loaded)."""
    if cfg["model"]["checkpoint"] or cfg["model"]["preset"] != "paper" or is_complete(Path(cfg["output_dir"]) / "init"):
        return
    from modeling_ecmc.components import ComponentError, components_config

    try:
        components_config(cfg["model"]["components"], **cfg["model"]["overrides"])
    except ComponentError as error:
        raise ConfigError(str(error)) from None
    if cfg["model"]["face_crop"]:
        import importlib.util

        if importlib.util.find_spec("cv2") is None:
            raise ConfigError("model.face_crop (on for the paper preset) needs OpenCV's face detector: "
                              "pip install 'opencv-python-headless>=4.14,<5' (the faces extra), or set "
                              "model.face_crop: false to keep whole frames")


def initial_checkpoint(cfg) -> Path:
    """<output_dir>/init: the model assembled from `model.components` (with `model.overrides`) and its
    processor, built once. A component that cannot be used is a ConfigError naming it."""
    from modeling_ecmc.components import ComponentError, assemble_from_components

    folder = Path(cfg["output_dir"]) / "init"
    if is_complete(folder):
        return folder
    logger.info("assembling the %s preset from its components into %s", cfg["model"]["preset"], folder)
    try:
        model, processor = assemble_from_components(cfg["model"]["components"], face_crop=cfg["model"]["face_crop"],
                                                    **cfg["model"]["overrides"])
    except ComponentError as error:
        raise ConfigError(str(error)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        save_complete(model, processor, folder)
    return folder


def cached_splits(cfg, model, processor, dsd) -> dict:
    """Run the frozen encoders once per utterance (resumable) and wrap each split."""
    data = cfg["data"]
    return {
        name: WithCaptions(cached_dataset(model, processor, split, data["cache_dir"], data["cache_batch_size"]), split)
        for name, split in dsd.items() if len(split)
    }


# ----- one stage ----------------------------------------------------------------------------
def run_stage(stage: int, cfg, model, processor, splits: dict, dsd, resume: bool, scorer=None):
    """Train one stage; `scorer` (a `ReadBackScorer`) is the read-back of `select_by: readback`."""
    stage_dir = Path(cfg["output_dir"]) / f"stage{stage}"
    best = stage_dir / "best"
    # seeded here, not only at start-up: stage 2 alone (--stage 2) then repeats the full run's stage 2
    set_seed(stage_seed(cfg, stage))
    apply_stage_options(model, cfg, stage)
    s = cfg[f"stage{stage}"]
    args = training_arguments(cfg, stage, stage_dir)
    sampler = None
    if s["balanced_sampler"]:
        train = dsd["train"]
        sampler = ContrastiveBatchSampler(train["emotion_label"], train["cognition_labels"], s["batch_size"],
                                          seed=stage_seed(cfg, stage), num_replicas=args.world_size,
                                          rank=args.process_index)
    train_split = splits["train"]
    if s.get("transcript_dropout"):  # stage 2 only: some prompts without the words (the soft tokens must speak)
        train_split = train_split.with_transcript_dropout(s["transcript_dropout"], stage_seed(cfg, stage))
    trainer = ECMCTrainer(
        model=model,
        args=args,
        train_dataset=train_split,
        eval_dataset=splits["validation"],
        data_collator=ECMCCollator(processor, stage, keep_labels=bool(s.get("contrastive_weight"))),
        callbacks=[CompleteCheckpointMarker(), EarlyStoppingCallback(s["early_stopping_patience"])],
        stage=stage,
        contrastive_sampler=sampler,
        contrastive_weight=s.get("contrastive_weight", 0.0),
        learning_rates=s["learning_rates"],
        readback=scorer if s.get("select_by") == "readback" else None,
    )
    checkpoint = last_complete_checkpoint(stage_dir) if resume else None
    if checkpoint:
        logger.info("stage %d: resuming from %s", stage, checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finish_lora(model)
    history = trainer.state.log_history
    # Every rank records a checksum of its trainable weights: a desynchronised run is visible.
    write_text(stage_dir / f"rank{trainer.args.process_index}.weights.sha256", trainable_checksum(model))
    if trainer.is_world_process_zero():
        save_complete(model, processor, best)
        write_text(stage_dir / "log_history.json", json.dumps(history, indent=1))
    trainer.accelerator.wait_for_everyone()
    logger.info("stage %d: best checkpoint (%s %s) saved to %s", stage, trainer.args.metric_for_best_model,
                trainer.state.best_metric, best)
    return best, history


# ----- both stages --------------------------------------------------------------------------
def run_training(cfg, stages=(1, 2), resume=False, readback=None):
    """Run `stages` of the resolved config `cfg`; returns (the final checkpoint folder, {stage: the
    Trainer's log history}). `readback`: the scorer factory `(processor, cfg) -> scorer` that
    `stage2.select_by: readback` needs (module docstring); without it that setting is a ConfigError."""
    if 2 in stages and cfg["stage2"]["select_by"] == "readback" and readback is None:
        raise ConfigError("stage2.select_by: readback needs a read-back scorer, and none was given: run train.py "
                          "or `ecmc train`, or pass readback=evaluation_ecmc.selection.readback_scorer")
    if cfg["training"]["deepspeed"] is not None and not torch.cuda.is_available():
        raise ConfigError(f"training.deepspeed ({cfg['training']['deepspeed']}) needs a GPU, and none is visible; "
                          "drop the key (--set training.deepspeed=null) to train on CPU")
    check_components(cfg)
    set_seed(cfg["seed"])
    output_dir = Path(cfg["output_dir"])
    stage1_best = output_dir / "stage1" / "best"
    if stages == (2,) and not is_complete(stage1_best):
        raise ConfigError(f"stage 2 needs a finished stage-1 checkpoint at {stage1_best}; run --stage 1 first")
    # TrainingArguments set up the process group (torchrun / accelerate launch); one process builds
    # the data set and the feature cache while the others wait, then reuse them.
    with training_arguments(cfg, stages[0], output_dir / f"stage{stages[0]}").main_process_first(desc="data"):
        dsd = prepare_data(cfg)
        model, processor = build_model(cfg)
        splits = cached_splits(cfg, model, processor, dsd)
    if int(os.environ.get("RANK", "0")) == 0:  # once the inputs are known good: what this run was, overrides included
        output_dir.mkdir(parents=True, exist_ok=True)
        write_text(output_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    histories = {}
    for stage in stages:
        best = output_dir / f"stage{stage}" / "best"
        if resume and is_complete(best):
            logger.info("stage %d already finished (%s); skipping", stage, best)
            model = ECMCForConditionalGeneration.from_pretrained(best)
            continue
        if stage == 2 and (1 not in stages or resume):  # start from stage 1's best on disk
            model = ECMCForConditionalGeneration.from_pretrained(stage1_best)
            processor = prompts_like(model, processor)  # as stage 1 was configured
        if stage == 1 and not (model.config.emotion_loss_weight or model.config.cognition_loss_weight):
            logger.info("stage 1: no contrastive loss (both weights 0, the Table 5 ablation): BridgeNet kept as initialised")
            if int(os.environ.get("RANK", "0")) == 0:
                save_complete(model, processor, best)
            continue
        scorer = readback(processor, cfg) if stage == 2 and cfg["stage2"]["select_by"] == "readback" else None
        _, histories[stage] = run_stage(stage, cfg, model, processor, splits, dsd, resume, scorer)
    final = output_dir / "checkpoint"
    if int(os.environ.get("RANK", "0")) == 0:
        save_complete(model, processor, final)
    return final, histories
