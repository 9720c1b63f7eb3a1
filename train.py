"""ECMC training, both stages, with the Hugging Face `Trainer` (paper §Training Process).

    python train.py --config configs/offline_demo.yaml                 # data -> cache -> stage 1 -> stage 2
    python train.py --config configs/offline_demo.yaml --stage 1       # one stage
    python train.py --config configs/offline_demo.yaml --resume        # continue after an interruption
    python train.py --config configs/offline_demo.yaml --set stage1.epochs=3 --set seed=1
    torchrun --nproc_per_node 2 train.py --config ...                  # several processes (gloo on CPU)
    accelerate launch train.py --config ...                            # GPUs; DeepSpeed via training.deepspeed

Top to bottom: config -> data (ECMC-Synth is built if the data set is missing) -> model -> feature
cache (the encoders are frozen: run once) -> stage 1 (BridgeNet, L_emo + L_cog, encoders frozen) ->
stage 2 (BridgeNet + projections, caption cross-entropy, encoders and LLM frozen). Each stage keeps
the checkpoint with the lowest validation loss (`<output_dir>/stageN/best`; `stage2.select_by:
readback` keeps the one whose validation captions read back the labels best); stage 2 starts from
stage 1's best; the final model + processor go to `<output_dir>/checkpoint`; the resolved config
(overrides included) to `<output_dir>/config.yaml`, which `--config` takes back to repeat the run.
"""

import argparse
import json
import logging
import os
import warnings
from pathlib import Path

import torch
import yaml
from transformers import EarlyStoppingCallback, TrainingArguments, set_seed

from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.atomic_io import write_text
from processing_ecmc.feature_cache import cached_dataset
from training_ecmc.config import ConfigError, load_config
from training_ecmc.sampler import ContrastiveBatchSampler
from training_ecmc.trainer import (
    LABEL_READBACK,
    CompleteCheckpointMarker,
    ECMCCollator,
    ECMCTrainer,
    ReadBack,
    WithCaptions,
    is_complete,
    last_complete_checkpoint,
    save_complete,
)

logger = logging.getLogger("ecmc.train")
LABEL_NAMES = {1: ["emotion_labels", "cognition_labels"], 2: ["labels"]}


# ----- data ---------------------------------------------------------------------------------
def prepare_data(cfg):
    """The DatasetDict of `data.dataset`; built from ECMC-Synth when missing and `synth_preset` is set."""
    from processing_ecmc.datasets_ecmc import build_dataset, load_dataset_dict, save_dataset

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


# ----- model --------------------------------------------------------------------------------
def build_model(cfg):
    model_cfg = cfg["model"]
    if model_cfg["checkpoint"]:
        from modeling_ecmc.processing_ecmc import ECMCProcessor

        # `model.overrides` apply here too, e.g. a modality subset of a saved model (Table 5 ablations):
        # BridgeNet layers whose shape the overrides change (Eq. 8 heads, W_3) start fresh
        overrides = model_cfg["overrides"]
        model = ECMCForConditionalGeneration.from_pretrained(model_cfg["checkpoint"], **overrides,
                                                             ignore_mismatched_sizes=bool(overrides))
        # our installed code, never the code inside the checkpoint (SECURITY.md)
        return model, ECMCProcessor.from_pretrained(model_cfg["checkpoint"], trust_remote_code=False)
    if model_cfg["preset"] != "offline":
        raise ConfigError(
            f"model.preset {model_cfg['preset']!r}: only 'offline' can be assembled here; for other presets "
            "build a checkpoint with modeling_ecmc.presets.from_pretrained_components and set model.checkpoint"
        )
    from modeling_ecmc.presets import build_offline_default

    return build_offline_default(**model_cfg["overrides"])


def cached_splits(cfg, model, processor, dsd) -> dict:
    """Run the frozen encoders once per utterance (resumable) and wrap each split."""
    data = cfg["data"]
    return {
        name: WithCaptions(cached_dataset(model, processor, split, data["cache_dir"], data["cache_batch_size"]), split)
        for name, split in dsd.items() if len(split)
    }


# ----- one stage ----------------------------------------------------------------------------
def stage_seed(cfg, stage: int) -> int:
    seed = cfg[f"stage{stage}"]["seed"]
    return cfg["seed"] if seed is None else seed


def training_arguments(cfg, stage: int, output_dir: Path) -> TrainingArguments:
    s, t = cfg[f"stage{stage}"], cfg["training"]
    by_loss = s.get("select_by", "loss") == "loss"  # stage 1 has no captions to read labels from
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=s["epochs"],
        per_device_train_batch_size=s["batch_size"],
        per_device_eval_batch_size=s["batch_size"],
        gradient_accumulation_steps=s.get("gradient_accumulation_steps", 1),
        learning_rate=s["learning_rate"],
        weight_decay=s["weight_decay"],
        warmup_steps=s["warmup_ratio"],  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=s["lr_scheduler"],
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,  # the paper keeps the checkpoint with the lowest validation loss
        metric_for_best_model="eval_loss" if by_loss else f"eval_{LABEL_READBACK}",
        greater_is_better=not by_loss,
        label_names=LABEL_NAMES[stage],
        remove_unused_columns=False,
        logging_steps=t["logging_steps"],
        save_total_limit=t["save_total_limit"],
        seed=stage_seed(cfg, stage),
        data_seed=stage_seed(cfg, stage),
        bf16=t["precision"] == "bf16",
        fp16=t["precision"] == "fp16",
        activation_checkpointing=t["gradient_checkpointing"],
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # makes accelerate join torchrun ranks over gloo on CPU
        dataloader_num_workers=t["num_workers"],
        deepspeed=t["deepspeed"],
        optim="adamw_torch_fused" if torch.cuda.is_available() else "adamw_torch",
        report_to=[],
        save_only_model=False,
    )


def apply_stage_options(model, cfg, stage: int):
    """Freeze for the stage, then the options: LoRA on the LLM (peft) and extra unfrozen prefixes."""
    model.freeze_for_stage(stage)
    s = cfg[f"stage{stage}"]
    if stage == 2 and s.get("lora"):
        from peft import LoraConfig, get_peft_model

        lora = dict(s["lora"])
        with warnings.catch_warnings():  # peft 0.21 still asks transformers for a deprecated property
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            model.language_model = get_peft_model(model.language_model, LoraConfig(
                r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.0),
                target_modules=lora.get("target_modules", ["q_proj", "v_proj"]),
            ))
    for option, trainable in (("unfreeze", True), ("freeze", False)):
        for prefix in s.get(option, []):
            matched = [p for n, p in model.named_parameters() if n.startswith(prefix)]
            if not matched:
                raise ConfigError(f"stage{stage}.{option}: no parameter starts with {prefix!r}")
            for p in matched:
                p.requires_grad_(trainable)
    for prefix in s["learning_rates"]:
        if not any(n.startswith(prefix) and p.requires_grad for n, p in model.named_parameters()):
            raise ConfigError(f"stage{stage}.learning_rates: no trainable parameter starts with {prefix!r}")


def finish_lora(model):
    """Merge LoRA weights into the LLM so the checkpoint is a plain ECMC model; the config records
    that its decoder is no longer the pretrained one (`decoder_lora`, shown on the model card)."""
    if hasattr(model.language_model, "merge_and_unload"):
        lora = model.language_model.peft_config["default"]
        model.config.decoder_lora = {"r": lora.r, "alpha": lora.lora_alpha,
                                     "target_modules": sorted(lora.target_modules)}
        model.language_model = model.language_model.merge_and_unload()


def run_stage(stage: int, cfg, model, processor, splits: dict, dsd, resume: bool):
    stage_dir = Path(cfg["output_dir"]) / f"stage{stage}"
    best = stage_dir / "best"
    # seeded here, not only at start-up: stage 2 alone (--stage 2) then repeats the full run's stage 2
    set_seed(stage_seed(cfg, stage))
    apply_stage_options(model, cfg, stage)
    s = cfg[f"stage{stage}"]
    sampler = None
    if s["balanced_sampler"]:
        train = dsd["train"]
        sampler = ContrastiveBatchSampler(train["emotion_label"], train["cognition_labels"], s["batch_size"],
                                          seed=stage_seed(cfg, stage))
    trainer = ECMCTrainer(
        model=model,
        args=training_arguments(cfg, stage, stage_dir),
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=ECMCCollator(processor, stage, keep_labels=bool(s.get("contrastive_weight"))),
        callbacks=[CompleteCheckpointMarker(), EarlyStoppingCallback(s["early_stopping_patience"])],
        stage=stage,
        contrastive_sampler=sampler,
        contrastive_weight=s.get("contrastive_weight", 0.0),
        learning_rates=s["learning_rates"],
        readback=ReadBack(processor, cfg["evaluate"]["batch_size"], cfg["evaluate"]["max_new_tokens"])
        if s.get("select_by") == "readback" else None,
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


def trainable_checksum(model) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def run(cfg, stages=(1, 2), resume=False):
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
        if stage == 1 and not (model.config.emotion_loss_weight or model.config.cognition_loss_weight):
            logger.info("stage 1: no contrastive loss (both weights 0, the Table 5 ablation): BridgeNet kept as initialised")
            if int(os.environ.get("RANK", "0")) == 0:
                save_complete(model, processor, best)
            continue
        _, histories[stage] = run_stage(stage, cfg, model, processor, splits, dsd, resume)
    final = output_dir / "checkpoint"
    if int(os.environ.get("RANK", "0")) == 0:
        save_complete(model, processor, final)
    return final, histories


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML under configs/ (defaults: training_ecmc/config.py)")
    parser.add_argument("--stage", choices=["1", "2", "all"], default="all", help="which stage(s) to run")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.set)
    stages = (1, 2) if args.stage == "all" else (int(args.stage),)
    final, _ = run(cfg, stages, args.resume)
    print(f"[ecmc] trained checkpoint written to {final.resolve()}")


if __name__ == "__main__":
    main()
