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


def test_collator_writes_each_rows_transcript_with_prompt_transcript(tiny_checkpoint):
    """`prompt_transcript`: each stage-2 row's prompt holds its own transcript (the processor's
    `prompt_ids` with it), and the labels start after it."""
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from training_ecmc.trainer import ECMCCollator

    processor = ECMCProcessor.from_pretrained(tiny_checkpoint, prompt_transcript=True)
    said = ["I feel hopeless most days.", "The weather was cloudy today.", None]
    items = [{"modality_mask": torch.tensor([False, False, True]), "text_features": torch.randn(3, 8),
              "index": i, "caption": ("The speaker sounds sad.", "No signs of cognitive impairment."),
              "language": "en", "transcript": t} for i, t in enumerate(said)]
    batch = ECMCCollator(processor, stage=2)(items)
    prompts = [processor.prompt_ids("en", t) for t in said]
    assert len(prompts[0]) > len(prompts[2]) and prompts[0] != prompts[1]
    for row, prompt in enumerate(prompts):
        assert batch["input_ids"][row, : len(prompt)].tolist() == prompt, row
        assert (batch["labels"][row, : len(prompt)] == -100).all() and batch["labels"][row, len(prompt)] != -100


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


# ----- gradient accumulation: the update and the logged loss do not depend on how a batch is split ----
def without_dropout(model):
    """Dropout off (modules, and the attention dropout the Q-Former applies functionally), so runs
    differ only in how the batch is split."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return model


def _accumulation_run(folder, out, stage: int, batch_size: int, accumulation: int):
    """One SGD step of the real `ECMCTrainer` over the same four rows (captions of different lengths),
    as `accumulation` micro-batches of `batch_size`: the trainable weights' change and the logged loss."""
    from transformers import TrainingArguments

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from training_ecmc.trainer import ECMCCollator, ECMCTrainer

    torch.manual_seed(0)
    model = without_dropout(ECMCForConditionalGeneration.from_pretrained(folder))
    freeze_for_stage(model, stage)
    g = torch.Generator().manual_seed(1)
    captions = [("The speaker sounds sad.", "No signs of cognitive impairment."),
                ("The speaker sounds calm and even, with a relaxed face and steady voice.", "Attention lapses."),
                ("Happy.", "No signs."),
                ("The speaker sounds tense; the voice trembles and the brows are raised.", "Word-finding pauses.")]
    items = [{"modality_mask": torch.tensor([False, False, True]), "text_features": torch.randn(3 + i, 24, generator=g),
              "index": i, "emotion_label": i % 2, "cognition_labels": [i % 2, 0, 1 - i % 2, 0],
              "caption": captions[i], "language": "en"} for i in range(4)]
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = TrainingArguments(str(out), per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
                             max_steps=1, learning_rate=1.0, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
                             max_grad_norm=0.0, train_sampling_strategy="sequential", logging_steps=1, report_to=[],
                             save_strategy="no", use_cpu=True, remove_unused_columns=False,
                             label_names=["labels"] if stage == 2 else ["emotion_labels", "cognition_labels"])
    trainer = ECMCTrainer(model=model, args=args, train_dataset=items, stage=stage,
                          data_collator=ECMCCollator(ECMCProcessor.from_pretrained(folder), stage=stage))
    trainer.train()
    delta = {n: p.detach() - before[n] for n, p in model.named_parameters() if n in before}
    logged = next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
    return delta, logged, model, items


def test_stage2_accumulation_gives_the_update_of_one_large_batch(tiny_checkpoint, tmp_path):
    """Accumulation 2 x micro-batch 2 = accumulation 1 x batch 4, in the weights and the logged loss:
    the caption cross-entropy is a mean over every caption token of the accumulated batch (the
    Trainer's `num_items_in_batch`). It was the sum of the micro-batches' means: 2x here, 8x with the
    paper config."""
    whole, whole_loss, _, _ = _accumulation_run(tiny_checkpoint, tmp_path / "a", 2, batch_size=4, accumulation=1)
    split, split_loss, _, _ = _accumulation_run(tiny_checkpoint, tmp_path / "b", 2, batch_size=2, accumulation=2)
    norm = lambda d: torch.sqrt(sum((v.double() ** 2).sum() for v in d.values()))  # noqa: E731
    assert norm(whole) > 0
    assert norm(split) / norm(whole) == pytest.approx(1.0, abs=1e-5)
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], atol=1e-5, rtol=1e-4, msg=name)
    assert split_loss == pytest.approx(whole_loss, rel=1e-4)


def test_stage1_accumulation_steps_and_logs_the_mean_over_micro_batches(tiny_checkpoint, tmp_path):
    """Stage 1 (contrastive losses, which depend on the batch): with accumulation 2 the update is the
    mean of the two micro-batches' gradients and the logged loss the mean of their losses."""
    split, split_loss, model, items = _accumulation_run(tiny_checkpoint, tmp_path / "s1", 1, batch_size=2,
                                                        accumulation=2)
    from modeling_ecmc import ECMCForConditionalGeneration
    from processing_ecmc.cached_dataset import collate_cached

    reference = without_dropout(ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint))
    freeze_for_stage(reference, 1)
    reference.train()
    losses = []
    for half in (items[:2], items[2:]):
        batch = collate_cached(half)
        batch.pop("index")
        loss = reference(**batch).loss
        (loss / 2).backward()
        losses.append(loss.item())
    for name, p in reference.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(split[name], -p.grad, atol=1e-6, rtol=1e-4, msg=name)
    assert split_loss == pytest.approx(sum(losses) / 2, rel=1e-4)


@pytest.mark.slow
def test_two_processes_sample_disjoint_rows_and_new_batches_every_epoch(tiny_checkpoint, tmp_path):
    """`torchrun` with two CPU processes (gloo) through the real Trainer and the contrastive sampler:
    within an epoch the ranks train on disjoint rows; each epoch's batches differ from the last (on
    several processes the sampler used to replay epoch 0: accelerate's wrapper hid its `set_epoch`);
    every rank's workers are seeded the Trainer's way, with its own rank."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=f"{root}{os.pathsep}{root / 'tests'}", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
         str(root / "tests" / "distributed_sampler_run.py"), str(tiny_checkpoint), str(tmp_path)],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["batches_per_epoch"] == 4 for r in ranks)  # 24 rows / 2 ranks / 3
    for epoch in (0, 1):
        rows = [{i for batch in r["epochs"][epoch] for i in batch} for r in ranks]
        assert len(ranks[0]["epochs"][epoch]) == len(ranks[1]["epochs"][epoch]) == 4
        assert rows[0] and rows[1] and not rows[0] & rows[1], (epoch, rows)
    for r in ranks:
        assert r["epochs"][0] != r["epochs"][1]
    assert [r["worker_init"]["rank"] for r in ranks] == [0, 1]


def test_contrastive_dataloader_keeps_the_trainers_loader_settings(tmp_path):
    """With the contrastive sampler the training DataLoader has the Trainer's own worker seeding,
    pinning and worker settings (the override used to drop them), and the sampler's batches."""
    from transformers import TrainingArguments

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config
    from training_ecmc.sampler import ContrastiveBatchSampler
    from training_ecmc.trainer import ECMCTrainer

    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=2, dataloader_num_workers=2,
                             dataloader_persistent_workers=True, dataloader_prefetch_factor=3, report_to=[],
                             use_cpu=True, remove_unused_columns=False)
    data = [{"x": i} for i in range(8)]
    sampler = ContrastiveBatchSampler([0, 1] * 4, [[0, 0, 0, 0]] * 8, batch_size=2)
    model = ECMCForConditionalGeneration(tiny_config())
    plain = ECMCTrainer(model=model, args=args, train_dataset=data, stage=1, data_collator=list).get_train_dataloader()
    ours = ECMCTrainer(model=model, args=args, train_dataset=data, stage=1, data_collator=list,
                       contrastive_sampler=sampler).get_train_dataloader()
    for attribute in ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor"):
        assert getattr(ours, attribute) == getattr(plain, attribute), attribute
    assert ours.worker_init_fn.func is plain.worker_init_fn.func
    assert ours.worker_init_fn.keywords == plain.worker_init_fn.keywords
    assert list(ours.batch_sampler) == list(sampler)


def test_deepspeed_uses_the_trainers_optimizer_groups_and_scheduler(tmp_path, monkeypatch):
    """Under DeepSpeed, transformers' `deepspeed_optim_sched` keeps the Trainer's optimizer (the
    per-prefix rates) and scheduler only if the DeepSpeed config defines neither: the shipped
    `configs/deepspeed_zero2.json` defines neither (it defined both: WarmupDecayLR and DeepSpeed's
    AdamW silently replaced `stageN.learning_rates` and `lr_scheduler`), and a config that does is a
    ConfigError. Runs transformers' real selection code on CPU; DeepSpeed's engine itself needs a GPU
    (and the `deepspeed` package), so `deepspeed.initialize` does not run here."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    import accelerate.utils
    from accelerate.utils.deepspeed import DummyOptim, DummyScheduler
    from transformers import TrainingArguments

    # accelerate exports its DeepSpeed placeholders only when the deepspeed package is installed (it
    # is not here); register the same classes where transformers' selection code imports them from
    monkeypatch.setattr(accelerate.utils, "DummyOptim", DummyOptim, raising=False)
    monkeypatch.setattr(accelerate.utils, "DummyScheduler", DummyScheduler, raising=False)
    from transformers.integrations.deepspeed import deepspeed_optim_sched

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config
    from training_ecmc.trainer import ECMCTrainer

    shipped = Path(__file__).resolve().parents[1] / "configs" / "deepspeed_zero2.json"
    model = ECMCForConditionalGeneration(tiny_config())
    rates = {"language_projections": 1e-2}
    apply_stage_options(model, load_config(None, ['stage2.learning_rates={"language_projections": 1e-2}']), 2)
    args = TrainingArguments(str(tmp_path), learning_rate=1e-4, lr_scheduler_type="cosine", report_to=[], use_cpu=True)
    chosen = {}
    for name, ds in (("shipped", json.loads(shipped.read_text())),
                     ("with blocks", {**json.loads(shipped.read_text()), "optimizer": {"type": "AdamW"},
                                      "scheduler": {"type": "WarmupDecayLR"}})):
        trainer = ECMCTrainer(model=model, args=args, stage=2, learning_rates=rates)
        holder = SimpleNamespace(config=ds, is_offload=lambda: False)  # the parsed JSON, as HfTrainerDeepSpeedConfig holds it
        chosen[name] = deepspeed_optim_sched(trainer, holder, args, 10, [p for p in model.parameters() if p.requires_grad])
    optimizer, scheduler = chosen["shipped"]
    assert not isinstance(optimizer, DummyOptim) and scheduler is None  # the Trainer builds its cosine schedule
    assert sorted({g["lr"] for g in optimizer.param_groups}) == [1e-4, 1e-2]
    assert isinstance(chosen["with blocks"][0], DummyOptim) and isinstance(chosen["with blocks"][1], DummyScheduler)
    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps({"zero_optimization": {"stage": 2}, "scheduler": {"type": "WarmupLR"}}))
    with pytest.raises(ConfigError, match="defines scheduler; remove it"):
        load_config(None, [f"training.deepspeed={bad}"])
    load_config(None, [f"training.deepspeed={shipped}"])  # the shipped one is accepted


def test_transcript_dropout_drops_other_rows_at_every_read():
    """`WithCaptions.with_transcript_dropout`: about that share of items read without a transcript,
    other rows on the next pass (an epoch), the same rows again for the same seed; the data set it
    was made from keeps every transcript."""
    from training_ecmc.trainer import WithCaptions

    n = 400
    rows = {"emotion_caption": ["e"] * n, "cognition_caption": ["c"] * n, "language": ["en"] * n,
            "transcript": [f"words {i}" for i in range(n)], "emotion_label": [0] * n, "cognition_labels": [[0] * 4] * n}
    base = WithCaptions([{"index": i} for i in range(n)], rows)
    dropped = base.with_transcript_dropout(0.3, seed=0)
    passes = [[dropped[i]["transcript"] is None for i in range(n)] for _ in range(2)]
    assert all(0.24 < sum(p) / n < 0.36 for p in passes) and passes[0] != passes[1]
    again = base.with_transcript_dropout(0.3, seed=0)
    assert [again[i]["transcript"] is None for i in range(n)] == passes[0]
    kept = [dropped[i]["transcript"] for i in range(n)]
    assert all(t is None or t == f"words {i}" for i, t in enumerate(kept))
    assert [base[i]["transcript"] for i in range(n)] == rows["transcript"]
