"""What trains in each stage. The policy is written once, as the config's `stageN.train` (the
parameter-name prefixes that train; defaults in `training_ecmc.config.DEFAULTS`), and applied here:
`freeze_for_stage(model, stage)` for the defaults, or with a config's own prefixes and LoRA.

Imports only `modeling_ecmc` and the config module (PyYAML), so the GPU benchmark can use it."""

import warnings

from modeling_ecmc.modeling_ecmc import ECMCModel

from .config import DEFAULTS, ConfigError


def _named_parameters(model):
    """The parameters under the names of the full `ECMCForConditionalGeneration` (`model.bridge...`),
    also for a bare `ECMCModel` (whose own names lack the `model.` prefix)."""
    prefix = "model." if isinstance(model, ECMCModel) else ""
    return ((prefix + name, p) for name, p in model.named_parameters())


def freeze_for_stage(model, stage: int, train=None, lora: dict | None = None):
    """Freeze every parameter, add the LoRA (stage 2, peft), then let the parameters under the
    prefixes `train` train (default: `DEFAULTS["stageN"]["train"]`; paper §Training Process: stage 1
    the BridgeNet, stage 2 the BridgeNet and the LLM projections, encoders and LLM frozen). A prefix
    that names no parameter is a ConfigError. Returns `model`."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    model.requires_grad_(False)
    if lora:
        from peft import LoraConfig, get_peft_model

        with warnings.catch_warnings():  # peft 0.21 still asks transformers for a deprecated property
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            model.language_model = get_peft_model(model.language_model, LoraConfig(
                r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.0),
                target_modules=lora.get("target_modules", ["q_proj", "v_proj"]),
            ))
    for prefix in DEFAULTS[f"stage{stage}"]["train"] if train is None else train:
        matched = [p for name, p in _named_parameters(model) if name.startswith(prefix)]
        if not matched:
            raise ConfigError(f"stage{stage}.train: no parameter starts with {prefix!r}")
        for p in matched:
            p.requires_grad_(True)
    return model
