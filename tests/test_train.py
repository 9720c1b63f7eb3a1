"""Training end to end (`training_ecmc.run.run_training`, and train.py as a process) on a tiny random
ECMC and ECMC-Synth's tiny preset: both stages learn, the best checkpoint is the lowest validation
loss, a killed run resumes onto the same losses, two processes agree on the weights, and bad configs
fail before any long work. The config alone: test_config.py; one stage's parts: test_trainer.py."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from training_ecmc.config import ConfigError, load_config
from training_ecmc.run import run_training
from training_ecmc.trainer import is_complete

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, **sections):
    config = {
        "output_dir": str(tmp_path / "out"),
        "model": {"checkpoint": str(tiny_checkpoint)},
        "data": {"synth_preset": None, "dataset": str(tiny_synth_dataset), "cache_dir": str(tmp_path / "cache")},
        "stage1": {"epochs": 4, "batch_size": 4, "learning_rate": 1e-3, "early_stopping_patience": 10},
        "stage2": {"epochs": 3, "batch_size": 4, "learning_rate": 3e-3, "early_stopping_patience": 10},
        "training": {"logging_steps": 1, "save_total_limit": 10},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_losses(history):
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


def test_both_stages_lower_the_training_loss_and_keep_the_best(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    cfg = load_config(write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset))
    final, histories = run_training(cfg, stages=(1, 2))
    for stage in (1, 2):
        losses = [loss for _, loss in train_losses(histories[stage])]
        steps_per_epoch = len(losses) // cfg[f"stage{stage}"]["epochs"]
        first, last = losses[:steps_per_epoch], losses[-steps_per_epoch:]
        assert sum(last) / len(last) < sum(first) / len(first), (stage, losses)
        # best = the epoch with the lowest validation loss, and that checkpoint's weights were exported
        evals = [(h["eval_loss"], h["step"]) for h in histories[stage] if "eval_loss" in h]
        state = json.loads(sorted((tmp_path / "out" / f"stage{stage}").glob("checkpoint-*/trainer_state.json"),
                                  key=lambda p: int(p.parent.name.split("-")[1]))[-1].read_text())
        assert state["best_global_step"] == min(evals)[1]
        assert is_complete(tmp_path / "out" / f"stage{stage}" / "best")
    assert is_complete(final) and (final / "modeling_ecmc.py").is_file()
    assert load_config(tmp_path / "out" / "config.yaml") == cfg  # the run's resolved config, reloadable


def run_train(config, *extra, **kwargs):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--config", str(config), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.slow
def test_resume_after_kill_reproduces_the_uninterrupted_losses(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    (tmp_path / "a").mkdir()
    reference = write_config(tmp_path / "a", tiny_checkpoint, tiny_synth_dataset)
    out = run_train(reference, "--stage", "1")
    assert out.wait(timeout=600) == 0, out.stdout.read()[-3000:]
    expected = train_losses(json.loads((tmp_path / "a" / "out" / "stage1" / "log_history.json").read_text()))

    (tmp_path / "b").mkdir()
    config = write_config(tmp_path / "b", tiny_checkpoint, tiny_synth_dataset)
    stage_dir = tmp_path / "b" / "out" / "stage1"
    proc = run_train(config, "--stage", "1")
    deadline = time.time() + 600
    while not list(stage_dir.glob("checkpoint-*/ecmc_complete.json")):  # killed once the first epoch is saved
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (stage_dir / "best").exists()
    resumed = run_train(config, "--stage", "1", "--resume")
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log[-3000:]
    assert "resuming from" in log
    got = train_losses(json.loads((stage_dir / "log_history.json").read_text()))
    # the restored history plus the steps run after the resume: the same steps and losses as the
    # uninterrupted run (same data order, same RNG), not a restart from step 1
    assert [step for step, _ in got] == [step for step, _ in expected]
    assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=1e-5)
    resumed_from = int(log.split("resuming from")[1].split("checkpoint-")[1].split()[0])
    assert 0 < resumed_from < expected[-1][0]


@pytest.mark.slow
def test_two_cpu_processes_agree_on_the_weights(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, stage1={"epochs": 2})
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         str(ROOT / "train.py"), "--config", str(config), "--stage", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stage_dir = tmp_path / "out" / "stage1"
    checksums = {p.name: p.read_text() for p in stage_dir.glob("rank*.weights.sha256")}
    assert set(checksums) == {"rank0.weights.sha256", "rank1.weights.sha256"}
    assert len(set(checksums.values())) == 1


def test_stage2_select_by_readback_keeps_the_epoch_whose_captions_read_best(tmp_path, tiny_checkpoint,
                                                                              tiny_synth_dataset):
    """stage2.select_by: readback scores every epoch by the labels read back from greedy validation
    captions (through the LoRA-wrapped decoder) and keeps the best; the score is the evaluation's."""
    from evaluation_ecmc.run_evaluation import evaluate
    from evaluation_ecmc.selection import readback_scorer

    cfg = load_config(write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, stage1={"epochs": 1},
                                   stage2={"epochs": 2, "lora": {"r": 2, "alpha": 4}, "select_by": "readback"},
                                   evaluate={"max_new_tokens": 8, "text_baseline": None, "detection": False}))
    final, histories = run_training(cfg, stages=(1, 2), readback=readback_scorer)
    scores = [(h["eval_label_readback"], h["step"]) for h in histories[2] if "eval_loss" in h]
    assert len(scores) == 2 and all(0 <= score <= 1 for score, _ in scores)
    state = json.loads(sorted((tmp_path / "out" / "stage2").glob("checkpoint-*/trainer_state.json"),
                              key=lambda p: int(p.parent.name.split("-")[1]))[-1].read_text())
    best_score = max(score for score, _ in scores)
    assert state["best_metric"] == best_score
    assert state["best_global_step"] == next(step for score, step in scores if score == best_score)  # first best
    # the captioning passes leave the training itself untouched: the same losses as loss selection
    by_loss = dict(cfg, output_dir=str(tmp_path / "by_loss"), stage2={**cfg["stage2"], "select_by": "loss"})
    _, loss_histories = run_training(by_loss, stages=(1, 2))
    assert train_losses(loss_histories[2]) == train_losses(histories[2])
    _, report = evaluate(final, cfg, output=tmp_path / "eval", split="validation", profile_subjects=0)
    readback = report["readback"]
    assert best_score == pytest.approx((readback["emotion"]["accuracy"] + readback["cognition"]["exact_match"]) / 2)


def test_select_by_readback_without_a_scorer_is_an_error(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    """Training defines no read-back scorer (it is the evaluation's): run_training needs one injected."""
    cfg = load_config(write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, stage2={"select_by": "readback"}))
    with pytest.raises(ConfigError, match="stage2.select_by: readback needs a read-back scorer"):
        run_training(cfg)
    assert not (tmp_path / "cache").exists()


BAD_CONFIGS = {
    "unknown key": ({"stage1": {"epochz": 3}}, "unknown key 'epochz'"),
    "unknown section": ({"stage3": {}}, "unknown key 'stage3'"),
    "missing data set": ({"data": {"dataset": "/nonexistent/ds", "synth_preset": None}}, "does not exist"),
    "deepspeed without a GPU": ({"training": {"deepspeed": str(ROOT / "configs" / "deepspeed_zero2.json")}},
                                "needs a GPU, and none is visible"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_configs_fail_before_work(tmp_path, tiny_checkpoint, tiny_synth_dataset, case):
    sections, message = BAD_CONFIGS[case]
    if case == "deepspeed without a GPU" and __import__("torch").cuda.is_available():
        pytest.skip("a GPU is visible")
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, **sections)
    with pytest.raises(ConfigError, match=message):
        run_training(load_config(config), stages=(1,))
    assert not (tmp_path / "cache").exists()


def test_stage2_without_stage1_checkpoint_is_an_error(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset)
    with pytest.raises(ConfigError, match="stage 2 needs a finished stage-1 checkpoint"):
        run_training(load_config(config), stages=(2,))


def test_empty_split_is_an_error(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    from processing_ecmc.dataset_io import load_dataset_dict, save_dataset

    dsd = load_dataset_dict(tiny_synth_dataset)
    dsd["validation"] = dsd["validation"].select([])
    save_dataset(dsd, tmp_path / "ds")
    config = write_config(tmp_path, tiny_checkpoint, tmp_path / "ds")
    with pytest.raises(ConfigError, match="empty 'validation' split"):
        run_training(load_config(config), stages=(1,))


def test_stage2_lora_trains_the_llm_and_saves_a_plain_checkpoint(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    """stage2.lora (peft, off by default): the LoRA weights train and are merged into the decoder, so
    the saved checkpoint is a plain ECMC model that loads without peft; stage 2 alone repeats it."""
    from safetensors import safe_open

    from modeling_ecmc import ECMCForConditionalGeneration

    cfg = load_config(write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset,
                                   stage1={"epochs": 1}, stage2={"epochs": 1, "lora": {"r": 2, "alpha": 4}}))
    final, histories = run_training(cfg, stages=(1, 2))
    with safe_open(str(final / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora" in k]
    # each stage is seeded where it starts: stage 2 alone from the stage-1 best repeats the full run's
    # stage 2 (LoRA initialisation included)
    import shutil

    alone = dict(cfg, output_dir=str(tmp_path / "alone"))
    shutil.copytree(tmp_path / "out" / "stage1" / "best", tmp_path / "alone" / "stage1" / "best")
    _, alone_histories = run_training(alone, stages=(2,))
    assert train_losses(alone_histories[2]) == train_losses(histories[2])
    before = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint).language_model.state_dict()
    after = ECMCForConditionalGeneration.from_pretrained(final).language_model.state_dict()
    changed = {k for k in before if not before[k].equal(after[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed), sorted(changed)[:5]
    # the config says the decoder is no longer the pretrained one; the model card shows it
    from types import SimpleNamespace

    from hub_card.cards import _components

    config = ECMCForConditionalGeneration.from_pretrained(final).config
    assert config.decoder_lora == {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}
    assert any(role.startswith("language model (LoRA r=2 on q_proj, v_proj") for role, _ in
               _components(SimpleNamespace(config=config)))


def test_prompt_transcript_follows_the_model_config(tiny_checkpoint):
    """`model.overrides.prompt_transcript`: the processor training builds writes the transcript into
    the prompts exactly when the model config has it, and never for a model without text (an
    ablation), whatever the saved processor said."""
    from training_ecmc.config import load_config
    from training_ecmc.run import build_model

    for overrides, expected in (("{}", False), ("{prompt_transcript: true}", True),
                                ("{prompt_transcript: true, modalities: [video, audio]}", False)):
        cfg = load_config(None, [f"model.checkpoint={tiny_checkpoint}", f"model.overrides={overrides}"])
        model, processor = build_model(cfg)
        assert model.config.transcript_in_prompt is expected and processor.prompt_transcript is expected, overrides


def test_per_modality_soft_tokens_follow_the_model_config(tiny_checkpoint):
    """`model.overrides.soft_tokens: per_modality`: the processor training builds writes l_q
    placeholders per modality, and a stage-2 batch of its prompts trains the model."""
    import torch

    from training_ecmc.config import load_config
    from training_ecmc.run import build_model
    from training_ecmc.trainer import ECMCCollator

    for overrides, per_stream in (("{}", 4), ("{soft_tokens: per_modality}", 12),
                                  ("{soft_tokens: per_modality, modalities: [video, text]}", 8)):
        cfg = load_config(None, [f"model.checkpoint={tiny_checkpoint}", f"model.overrides={overrides}"])
        model, processor = build_model(cfg)
        assert processor.num_query_tokens == model.config.soft_tokens_per_stream == per_stream, overrides
        assert processor.prompt_ids().count(processor.placeholder_ids["emotion"]) == per_stream
        items = [{"modality_mask": torch.tensor([False, False, True]), "index": i, "language": "en",
                  "text_features": torch.randn(3, model.config.feature_size("text")), "transcript": None,
                  "caption": ("The speaker sounds sad.", "No signs of cognitive impairment.")} for i in range(2)]
        loss = model(**ECMCCollator(processor, stage=2)(items)).loss
        assert torch.isfinite(loss), overrides


def test_stage2_transcript_dropout_leaves_the_words_out_of_some_training_prompts(tmp_path, tiny_checkpoint,
                                                                                  tiny_synth_dataset, monkeypatch):
    """`stage2.transcript_dropout` with `prompt_transcript`: some stage-2 training rows reach the
    collator without their transcript (a share near it, not all); stage 1's rows keep theirs."""
    from training_ecmc import trainer

    seen = []
    collate = trainer.ECMCCollator.__call__

    def recording(self, items):
        seen.append((self.stage, [item["index"] for item in items], [item["transcript"] is None for item in items]))
        return collate(self, items)

    monkeypatch.setattr(trainer.ECMCCollator, "__call__", recording)
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset, model={"overrides": {"prompt_transcript": True}},
                          stage1={"epochs": 1}, stage2={"epochs": 2, "transcript_dropout": 0.5})
    run_training(load_config(config), stages=(1, 2))
    dropped = [d for stage, _, flags in seen if stage == 2 for d in flags]
    assert 0 < sum(dropped) < len(dropped)
    assert not any(d for stage, _, flags in seen if stage == 1 for d in flags)
    with pytest.raises(ConfigError, match="share of the training prompts"):
        load_config(None, ["stage2.transcript_dropout=1.0"])
