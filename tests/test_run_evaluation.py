"""The evaluation runner on a tiny checkpoint: every report file is written, numbers are in range,
and no caption or transcript reaches the log; captioning runs the BridgeNet once per batch (the same
greedy captions as running it again inside `generate`) and uses each row's own language."""

import json
import logging

import torch
import yaml

from evaluation_ecmc.run_evaluation import bridge_batches, caption_split, main
from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.processing_ecmc import ECMCProcessor
from processing_ecmc.dataset_io import load_dataset_dict


def test_evaluation_report(tmp_path, tiny_checkpoint, tiny_synth_dataset, caplog, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        # ECMC-Synth's folder beside the data set: its cues.jsonl gives the per-channel read-back
        "data": {"synth_preset": "tiny", "synth_dir": str(tiny_synth_dataset.parent / "synth"),
                 "dataset": str(tiny_synth_dataset), "cache_dir": str(tmp_path / "cache")},
        "evaluate": {"max_new_tokens": 12, "batch_size": 2},
    }))
    with caplog.at_level(logging.INFO):
        main(["--checkpoint", str(tiny_checkpoint), "--config", str(config)])
    out = tmp_path / "run" / "evaluation"
    for name in ("report.md", "report.json", "captions.jsonl", "profiles.json", "loss_curves.png",
                 "tsne_h_e.png", "tsne_h_c.png", "figure4_predicted.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "report.json").read_text())
    ours = data["metrics"]["ECMC (ours)"]["caption"]
    assert 0 <= ours["BLEU-1"] <= 1 and 0 <= ours["F_BERT"] <= 1
    assert "Most frequent training caption" in data["metrics"]
    text_only = data["metrics"]["Text-only LLM (ECMC's decoder, transcript only)"]["caption"]
    assert 0 <= text_only["F_BERT"] <= 1
    assert data["knn"]["h_e / emotion"]["fitted_on"] > 0  # fitted on the training split, scored on test
    for disorder in ("depression", "anxiety"):
        rows = data["detection"][disorder]["rows"]
        assert list(rows) == ["no profile", "ECMC profile", "Reference-caption profile"]
    profiles = json.loads((out / "profiles.json").read_text())
    assert set(profiles) == set(load_dataset_dict(tiny_synth_dataset)["test"]["subject_id"])  # every subject
    report = (out / "report.md").read_text()
    assert "Table 1 layout" in report and "k-NN" in report and "Tables 3-4 layout" in report
    n_test = data["n"]
    assert "What the captions say about each channel" in report and "Linear probes at every stage" in report
    face = data["channels"]["face valence"]
    assert face["correct"] + face["wrong"] + face["not_mentioned"] == n_test
    probes = data["probes"]
    assert {"features: all", "h_e", "h_c", "soft tokens: emotion", "captions (read back)",
            "majority class of training"} <= set(probes)
    assert 0 <= probes["features: all"]["face"] <= 1 and 0 <= probes["h_c"]["cognition exact"] <= 1
    # a few generated captions beside their references (the report file, never the log)
    examples = report.split("## Example captions")[1].split("\n## ")[0]
    test_ids = load_dataset_dict(tiny_synth_dataset)["test"]["utterance_id"]
    assert [uid for uid in test_ids if f"**{uid}**" in examples] == test_ids[:4]  # evaluate.num_examples
    assert examples.count("reference:") == min(4, len(test_ids))
    captions = [json.loads(line)["caption"] for line in (out / "captions.jsonl").read_text().splitlines()]
    logged = caplog.text + capsys.readouterr().out
    assert not any(c.strip() and c.strip() in logged for c in captions if len(c.strip()) > 15)


# ---- captioning: one BridgeNet pass per batch, each row in its own language -------------------------
class FeatureItems(torch.utils.data.Dataset):
    """Cached-feature items (as `CachedFeatureDataset` gives them) with random features."""

    def __init__(self, config, n=5, seed=0):
        g = torch.Generator().manual_seed(seed)
        widths = {"video": config.video_config.hidden_size, "audio": config.audio_config.hidden_size,
                  "text": config.text_encoder_config.hidden_size}
        self.items = [{**{f"{m}_features": torch.randn(3 + i % 2, d, generator=g) for m, d in widths.items()},
                       "modality_mask": torch.ones(3, dtype=torch.bool), "index": torch.tensor(i)} for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def two_pass_captions(model, processor, dataset, batch_size, max_new_tokens, language):
    """The former `caption_split`: the BridgeNet for h_e / h_c, then `generate` runs it again at prefill."""
    captions = []
    for batch, bridge in bridge_batches(model, dataset, batch_size):
        prompt = processor.caption_inputs(language=language, batch=len(bridge.h_e))
        ids = model.generate(**prompt, **batch, max_new_tokens=max_new_tokens, do_sample=False)
        captions += [c["caption"] for c in processor.post_process_caption(ids, prompt["input_ids"].shape[1])]
    return captions


@torch.no_grad()
def test_caption_split_runs_the_bridge_once_per_batch(tiny_checkpoint):
    model = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint).eval()
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():  # random weights large enough that the captions follow the features
        p.add_(torch.randn(p.shape, generator=g), alpha=0.5)
    processor = ECMCProcessor.from_pretrained(tiny_checkpoint, trust_remote_code=False)
    dataset = FeatureItems(model.config)
    calls = []
    hook = model.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        old = two_pass_captions(model, processor, dataset, 2, 10, "en")
        assert len(calls) == 2 * 3  # 5 items in batches of 2: the bridge twice per batch
        calls.clear()
        captions, h_e, h_c = caption_split(model, processor, dataset, 2, 10, "en")
        assert len(calls) == 3  # once per batch
    finally:
        hook.remove()
    assert captions == old and len(set(captions)) > 1  # the same greedy text, and not one caption for all
    assert h_e.shape[0] == h_c.shape[0] == len(dataset)


def test_each_row_is_captioned_and_scored_in_its_own_language(tmp_path, tiny_checkpoint, tiny_synth_dataset,
                                                              monkeypatch):
    """A mixed en/zh split: the caption prompts, the text baseline's prompts and the read-back and
    metrics languages are each row's own (not the first row's for all)."""
    from evaluation_ecmc import caption_metrics, label_readback, text_baseline
    from modeling_ecmc.prompts_ecmc import get_prompt
    from processing_ecmc.dataset_io import save_dataset

    dsd = load_dataset_dict(tiny_synth_dataset)
    dsd["test"] = dsd["test"].map(lambda row, i: {"language": "zh" if i % 2 else "en"}, with_indices=True)
    languages = dsd["test"]["language"]
    assert set(languages) == {"en", "zh"}
    dataset = save_dataset(dsd, tmp_path / "mixed")

    processor = ECMCProcessor.from_pretrained(tiny_checkpoint, trust_remote_code=False)
    caption_prompts, baseline_prompts, metric_languages, readback_languages = [], [], [], []
    embed_prompt = ECMCForConditionalGeneration.embed_prompt

    def recording_embed_prompt(self, input_ids, bridge):
        if bridge is not None:  # the prompt (prefill), not a decoding step
            caption_prompts.extend(processor.tokenizer.batch_decode(input_ids, skip_special_tokens=True))
        return embed_prompt(self, input_ids, bridge)

    generate_texts = text_baseline.generate_texts

    def recording_generate_texts(model, tokenizer, prompts, *args, **kwargs):
        baseline_prompts.extend(prompts)
        return generate_texts(model, tokenizer, prompts, *args, **kwargs)

    metrics, readback = caption_metrics.compute_caption_metrics, label_readback.readback_scores
    monkeypatch.setattr(ECMCForConditionalGeneration, "embed_prompt", recording_embed_prompt)
    monkeypatch.setattr(text_baseline, "generate_texts", recording_generate_texts)
    monkeypatch.setattr(caption_metrics, "compute_caption_metrics",
                        lambda *a, **kw: metric_languages.append(kw["language"]) or metrics(*a, **kw))
    monkeypatch.setattr(label_readback, "readback_scores",
                        lambda c, e, g, language, *a, **kw: readback_languages.append(language) or readback(c, e, g, language, *a, **kw))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "data": {"synth_preset": None, "dataset": str(dataset), "cache_dir": str(tmp_path / "cache")},
        "evaluate": {"max_new_tokens": 4, "batch_size": 2, "text_baseline": "decoder", "detection": False},
    }))
    main(["--checkpoint", str(tiny_checkpoint), "--config", str(config)])

    assert len(caption_prompts) == len(languages)
    for prompt, lang in zip(caption_prompts, languages):
        assert prompt.strip() == get_prompt("caption", lang).strip()
    transcripts = dsd["test"]["transcript"]
    assert len(baseline_prompts) == len(languages)
    for prompt, lang, transcript in zip(baseline_prompts, languages, transcripts):
        assert get_prompt("text_baseline", lang, transcript=transcript) in prompt
    assert metric_languages and all(list(lang) == languages for lang in metric_languages)
    assert readback_languages and list(readback_languages[0]) == languages
