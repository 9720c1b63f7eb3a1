"""One training stage's set-up: what trains (`stageN.train`, `stage2.lora`: `training_ecmc.freezing`),
the `TrainingArguments`, the seed, and what happens to the weights after the stage (LoRA merged, a
checksum of the trainable weights)."""

import hashlib
from pathlib import Path

import torch
from transformers import TrainingArguments

from .config import ConfigError
from .freezing import freeze_for_stage
from .trainer import LABEL_READBACK

LABEL_NAMES = {1: ["emotion_labels", "cognition_labels"], 2: ["labels"]}


def stage_seed(cfg, stage: int) -> int:
    seed = cfg[f"stage{stage}"]["seed"]
    return cfg["seed"] if seed is None else seed


def apply_stage_options(model, cfg, stage: int):
    """The stage's freezing (`stageN.train`, and `stage2.lora` on the LLM), checked against
    `stageN.learning_rates`."""
    s = cfg[f"stage{stage}"]
    freeze_for_stage(model, stage, s["train"], s.get("lora") if stage == 2 else None)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"stage{stage}: nothing to train (stage{stage}.train is empty and there is no LoRA)")
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


def trainable_checksum(model) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def native_bf16() -> bool:
    """Whether bf16 autocast runs on bf16 hardware here: a CUDA GPU that supports it, or a CPU with
    AMX or AVX512-BF16. Elsewhere it is emulated: on a 2-core AVX2 EPYC the demo's stage 1 took 23 s
    per step in bf16 against 2.5 s in fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str) -> str:
    """`training.precision`, with `auto` made bf16 or fp32 by `native_bf16`."""
    return precision if precision != "auto" else ("bf16" if native_bf16() else "fp32")


def training_arguments(cfg, stage: int, output_dir) -> TrainingArguments:
    """The stage's `TrainingArguments`: ECMC's keys, then `training.trainer_args` as given. A value
    TrainingArguments rejects is a ConfigError naming the key."""
    s, t = cfg[f"stage{stage}"], cfg["training"]
    by_loss = s.get("select_by", "loss") == "loss"  # stage 1 has no captions to read labels from
    precision = resolve_precision(t["precision"])
    ours = dict(
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
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=t["gradient_checkpointing"],
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # makes accelerate join torchrun ranks over gloo on CPU
        dataloader_num_workers=t["num_workers"],
        deepspeed=t["deepspeed"],
        optim="adamw_torch_fused" if torch.cuda.is_available() else "adamw_torch",
        report_to=list(t["report_to"]),
        save_only_model=False,
    )
    if not t["trainer_args"]:
        return TrainingArguments(**ours)
    try:  # e.g. `optim` or `eval_strategy` may be replaced; ECMC's own keys were refused by the config
        return TrainingArguments(**{**ours, **t["trainer_args"]})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"training.trainer_args {t['trainer_args']}: TrainingArguments rejects them ({error})") from None
