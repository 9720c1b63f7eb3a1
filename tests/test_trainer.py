"""One stage's parts (training_ecmc/stages.py, freezing.py, trainer.py): what trains (`stageN.train`,
LoRA), per-prefix learning rates in the optimizer, and the stage-2 collator's prompts."""

import pytest
import torch

from training_ecmc.config import ConfigError, load_config
from training_ecmc.freezing import freeze_for_stage
from training_ecmc.stages import apply_stage_options


def test_stage_train_prefixes_decide_what_trains():
    """`stageN.train`: exactly the parameters under the listed prefixes train; the default is the
    paper's (stage 1 the BridgeNet; stage 2 the BridgeNet and the LLM projections), also for a bare
    ECMCModel; a prefix that names no parameter is an error."""
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config

    model = ECMCForConditionalGeneration(tiny_config())
    names = [n for n, _ in model.named_parameters()]
    trainable = lambda: [n for n, p in model.named_parameters() if p.requires_grad]  # noqa: E731
    freeze_for_stage(model, 1)
    assert trainable() == [n for n in names if n.startswith("model.bridge")]
    freeze_for_stage(model, 2)
    assert trainable() == [n for n in names if n.startswith(("model.bridge", "language_projections"))]
    bare = freeze_for_stage(model.model, 1)
    assert bare is model.model and all(p.requires_grad == n.startswith("bridge") for n, p in bare.named_parameters())
    cfg = load_config(None, ["stage2.train=[model.bridge.cognition, language_model.model.norm]"])
    apply_stage_options(model, cfg, 2)
    assert trainable() == [n for n in names if n.startswith(("model.bridge.cognition", "language_model.model.norm"))]
    with pytest.raises(ConfigError, match="stage2.train: no parameter starts with 'nothing.here'"):
        apply_stage_options(model, load_config(None, ["stage2.train=[nothing.here]"]), 2)
    with pytest.raises(ConfigError, match="stage1: nothing to train"):
        apply_stage_options(model, load_config(None, ["stage1.train=[]"]), 1)


def test_stage2_train_with_lora_keeps_the_bridgenet_frozen():
    """The demo's stage 2 (`train: [language_projections]` + a LoRA): the projections and the LoRA
    weights train, in the model's own parameter order; nothing of the BridgeNet or the base LLM."""
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config

    model = ECMCForConditionalGeneration(tiny_config())
    apply_stage_options(model, load_config(None, ["stage2.train=[language_projections]", "stage2.lora={r: 2}"]), 2)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    projections = [n for n in trainable if n.startswith("language_projections")]
    lora = [n for n in trainable if ".lora_" in n]
    assert projections and lora and trainable == projections + lora


def test_collator_gives_each_row_its_own_languages_prompt(tiny_checkpoint):
    """A mixed en / zh stage-2 batch: every row starts with its own language's caption prompt (it was
    the first row's language for the whole batch), and only the caption tokens are labels."""
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from training_ecmc.trainer import ECMCCollator

    processor = ECMCProcessor.from_pretrained(tiny_checkpoint)
    languages = ["en", "zh", None, "zh"]  # None: the default language
    items = [{"modality_mask": torch.tensor([False, False, True]), "text_features": torch.randn(3, 8),
              "index": i, "emotion_label": 0, "cognition_labels": [0, 0, 0, 0],
              "caption": ("The speaker sounds sad.", "No signs of cognitive impairment."), "language": lang}
             for i, lang in enumerate(languages)]
    batch = ECMCCollator(processor, stage=2)(items)
    assert processor.prompt_ids("en") != processor.prompt_ids("zh")
    for row, lang in enumerate(languages):
        prompt = processor.prompt_ids(lang or "en")
        assert batch["input_ids"][row, : len(prompt)].tolist() == prompt, (row, lang)
        assert (batch["labels"][row, : len(prompt)] == -100).all()
        assert (batch["labels"][row, len(prompt)] != -100).item()


def test_learning_rates_per_parameter_prefix(tmp_path):
    """stage2.learning_rates: parameters under a prefix get their own rate in the Trainer's optimizer;
    a prefix that names no trainable parameter, or a rate that is not a positive number, is an error."""
    from transformers import TrainingArguments

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config
    from training_ecmc.trainer import ECMCTrainer

    model = ECMCForConditionalGeneration(tiny_config())
    cfg = load_config(None, ['stage2.learning_rates={"language_projections": "1e-2", "model.bridge.emotion": 2e-3}'])
    assert cfg["stage2"]["learning_rates"] == {"language_projections": 1e-2, "model.bridge.emotion": 2e-3}
    apply_stage_options(model, cfg, 2)
    trainer = ECMCTrainer(model=model, args=TrainingArguments(str(tmp_path), learning_rate=1e-4, report_to=[]),
                          stage=2, learning_rates=cfg["stage2"]["learning_rates"])
    optimizer = trainer.create_optimizer()
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, p in model.named_parameters():
        if p.requires_grad:
            expected = 1e-2 if name.startswith("language_projections") else 2e-3 if name.startswith(
                "model.bridge.emotion") else 1e-4
            assert lr_of[id(p)] == expected, name
    assert len(lr_of) == sum(p.requires_grad for p in model.parameters())
    with pytest.raises(ConfigError, match="no trainable parameter starts with 'language_model'"):
        apply_stage_options(model, load_config(None, ['stage2.learning_rates={"language_model": 1e-3}']), 2)
    with pytest.raises(ConfigError, match="stage2.learning_rates.x must be > 0"):
        load_config(None, ['stage2.learning_rates={"x": -1}'])
