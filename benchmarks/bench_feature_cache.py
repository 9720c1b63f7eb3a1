"""Stage-1 training pass: the feature cache vs running the frozen encoders every step.

N ECMC-Synth utterances (session MP4s cut by start/end, real espeak-ng speech, transcripts) are
generated in a temporary folder. One pass = every utterance once, batch 8, forward + backward +
AdamW step of the BridgeNet (encoders frozen, in eval mode), three ways:
- decode the media and run the encoders every step (processor on file paths, then the model on raw inputs);
- run the encoders every step on media decoded once and held in memory (processor outputs);
- read the feature cache (`processing_ecmc.cached_dataset`: `CachedFeatureDataset` + `collate_cached`,
  every file's checksum verified on load) and feed `*_features` to the BridgeNet (ours).
The cache's one-time build is timed separately. Every pass starts from the same BridgeNet weights
and seed; the check compares the passes' mean losses (the cache stores float16 features and encodes
group-norm audio in equal-length groups, `ECMCModel.encode_per_row`, so the numbers agree closely but
not bit for bit).

    python -m benchmarks.bench_feature_cache [--quick] [--model offline|tiny|paper]

`paper` is the paper's encoder classes at base size with random weights (VideoMAE-base,
HuBERT-base, BERT-base, assembled as `model.preset: paper` assembles them): the ratio the paper's
set-up gets from the cache, where the offline default's parameter-free front ends cost little.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Row, markdown_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH_SIZE = 8


def tiny_model_and_processor():
    """The tiny random model of the feature-cache tests (MiniLM tokenizer for both roles)."""
    from transformers import AutoTokenizer

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import build_processor, minilm_path, tiny_config

    config = tiny_config(**{
        "text_encoder_config": dict(model_type="bert", hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=48, vocab_size=30522),
        "audio_config": dict(model_type="hubert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, conv_dim=[32] * 4, conv_kernel=[10, 3, 3, 3],
                             conv_stride=[5, 4, 4, 4], num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                             apply_spec_augment=False),
    })
    torch.manual_seed(0)
    model = ECMCForConditionalGeneration(config)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    return model, build_processor(config, tokenizer, AutoTokenizer.from_pretrained(minilm_path()))


# the paper's encoder classes: base size (their published shapes) and a small width for smoke runs
PAPER_SHAPES = {
    "base": dict(video={}, audio={}, text={}),
    "small": dict(video=dict(image_size=32, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64),
                  audio=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             conv_dim=[32, 32, 32], conv_kernel=[10, 8, 4], conv_stride=[5, 8, 8],
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
                  text=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48)),
}


def paper_model_and_processor(folder: Path, size: str = "base"):
    """The paper's encoder classes with random weights — at `base` size VideoMAE-base (16 frames of
    224 px), HuBERT-base and BERT-base, which also initialises the Q-Formers — saved to `folder` with
    their preprocessors and assembled as `model.preset: paper` does (`assemble_from_components`).
    Stage 1 never runs the decoder, so it is a 2-layer Llama of width 64 with SmolLM2's tokenizer."""
    from transformers import (AutoTokenizer, BertConfig, BertModel, HubertConfig, HubertModel, LlamaConfig,
                              LlamaForCausalLM, VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel,
                              Wav2Vec2FeatureExtractor)

    from modeling_ecmc.components import assemble_from_components
    from modeling_ecmc.presets import load_llm_tokenizer, minilm_path

    shape = PAPER_SHAPES[size]
    video = VideoMAEConfig(**shape["video"])
    image_processor = VideoMAEImageProcessor(size={"shortest_edge": video.image_size},
                                             crop_size={"height": video.image_size, "width": video.image_size})
    torch.manual_seed(0)
    parts = {
        "video": (VideoMAEModel(video), image_processor),
        "audio": (HubertModel(HubertConfig(**shape["audio"])),  # group-norm, as hubert-base: no attention mask
                  Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)),
        "text": (BertModel(BertConfig(**shape["text"])), AutoTokenizer.from_pretrained(minilm_path())),  # BERT's uncased vocabulary
        "llm": (LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                             num_key_value_heads=1, intermediate_size=128, vocab_size=49152,
                                             tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)),
                load_llm_tokenizer()),
    }
    components = {}
    for name, (model, preprocessor) in parts.items():
        components[name] = str(folder / name)
        model.save_pretrained(components[name])
        preprocessor.save_pretrained(components[name])
    components["qformer_init"] = components["text"]
    return assemble_from_components(components, face_crop=False)  # the rows measure the encoders, not face detection


def _labels(rows):
    return (torch.tensor([int(r["emotion_label"]) for r in rows]),
            torch.tensor([[int(c) for c in r["cognition_labels"]] for r in rows]))


def _raw_inputs(processor, rows, root: Path) -> dict:
    out = processor(videos=[str(root / r["video_path"]) for r in rows], starts=[r["start"] for r in rows],
                    ends=[r["end"] for r in rows], transcripts=[r["transcript"] for r in rows])
    return {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask")}


def _train_pass(stage1, optimizer, batches) -> tuple[float, float]:
    """(seconds, mean loss) of one pass; `batches` yields model inputs (built inside the timing)."""
    losses = []
    t0 = time.perf_counter()
    for inputs in batches:
        loss = stage1(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return time.perf_counter() - t0, sum(losses) / len(losses)


def run(quick: bool = False, model_and_processor=None, num_subjects: int = 8, utterances_per_subject: int = 4,
        rounds: int = 2, model_name: str | None = None) -> list[Row]:
    from processing_ecmc.cache_build import build_feature_cache
    from processing_ecmc.cache_fingerprint import cache_fingerprint
    from processing_ecmc.cached_dataset import CachedFeatureDataset, collate_cached
    from processing_ecmc.synth import generate_synth
    from training_ecmc.freezing import freeze_for_stage

    if quick:
        num_subjects, utterances_per_subject, rounds = 4, 4, 1
    model, processor = model_and_processor or tiny_model_and_processor()
    stage1 = model.model if hasattr(model, "language_model") else model
    with tempfile.TemporaryDirectory(prefix="ecmc-bench-cache-") as tmp:
        root = Path(tmp) / "synth"
        manifest = generate_synth(root, num_subjects=num_subjects, utterances_per_subject=utterances_per_subject,
                                  progress=False)
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        chunks = [rows[i : i + BATCH_SIZE] for i in range(0, len(rows), BATCH_SIZE)]

        t0 = time.perf_counter()
        cache_dir = build_feature_cache(stage1, processor, rows, Path(tmp) / "cache", data_root=root, progress=False)
        build_s = time.perf_counter() - t0
        fingerprint = cache_fingerprint(stage1, processor)
        cached = CachedFeatureDataset(rows, cache_dir, fingerprint, data_root=root)
        predecoded = [_raw_inputs(processor, chunk, root) for chunk in chunks]

        def from_media():
            for chunk in chunks:
                emotion, cognition = _labels(chunk)
                yield dict(_raw_inputs(processor, chunk, root), emotion_labels=emotion, cognition_labels=cognition)

        def from_memory():
            for chunk, inputs in zip(chunks, predecoded):
                emotion, cognition = _labels(chunk)
                yield dict(inputs, emotion_labels=emotion, cognition_labels=cognition)

        def from_cache():
            loader = torch.utils.data.DataLoader(cached, batch_size=BATCH_SIZE, shuffle=False, collate_fn=collate_cached)
            for batch in loader:
                batch.pop("index")
                yield batch

        freeze_for_stage(stage1, 1)
        stage1.train()
        stage1.encoders.eval()  # frozen encoders: no dropout, as in the cache
        start_state = copy.deepcopy(stage1.bridge.state_dict())
        ways = {"media": from_media, "memory": from_memory, "cache": from_cache}
        times, losses = {w: [] for w in ways}, {}
        for _ in range(rounds):  # interleaved; each way keeps its fastest round
            for way, batches in ways.items():
                stage1.bridge.load_state_dict(start_state)
                optimizer = torch.optim.AdamW([p for p in stage1.parameters() if p.requires_grad], lr=1.3e-5,
                                              weight_decay=1e-6)
                torch.manual_seed(0)
                seconds, losses[way] = _train_pass(stage1, optimizer, batches())
                times[way].append(seconds)
        stage1.bridge.load_state_dict(start_state)

    n = len(rows)
    name = model_name or ("offline default" if model_and_processor is not None else "tiny random model")
    size = f"{n} utterances, batch {BATCH_SIZE}, {name}; cache built once in {build_s:.1f} s"
    rows_out = []
    for way, label in (("media", "decode media + run encoders every step"),
                       ("memory", "run encoders every step (media decoded once)")):
        rel = abs(losses[way] - losses["cache"]) / max(abs(losses[way]), 1e-12)
        rows_out.append(Row(
            benchmark="stage-1 pass (fwd + bwd + AdamW)", size=size, baseline=label,
            baseline_value=n / min(times[way]), ours="feature cache", ours_value=n / min(times["cache"]),
            unit="utterances/s",
            check=f"{'yes' if rel < 2e-2 else 'NO'}: mean loss {losses['cache']:.4f} vs {losses[way]:.4f} (rel. diff {rel:.0e})",
            extra={"seconds_per_round": times[way], "cache_seconds_per_round": times["cache"],
                   "cache_build_seconds": build_s, "mean_loss": losses[way], "mean_loss_cache": losses["cache"]},
        ))
    return rows_out


def run_paper(quick: bool = False) -> list[Row]:
    """The rows with the paper's encoder classes: base size, 8 utterances (one batch), one round (an
    encoder pass of VideoMAE-base takes seconds per clip here); `quick`: small widths."""
    with tempfile.TemporaryDirectory(prefix="ecmc-bench-paper-") as tmp:
        size = "small" if quick else "base"
        model, processor = paper_model_and_processor(Path(tmp), size)
        return run(model_and_processor=(model, processor), num_subjects=4, utterances_per_subject=2, rounds=1,
                   model_name=f"VideoMAE + HuBERT + BERT at {size} size (random weights)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random model, 16 utterances, one round")
    parser.add_argument("--model", choices=("offline", "tiny", "paper"), default=None)
    args = parser.parse_args(argv)
    kind = args.model or ("tiny" if args.quick else "offline")
    if kind == "paper":
        print(markdown_table(run_paper(quick=args.quick)))
        return
    model_and_processor = None
    if kind == "offline":
        from modeling_ecmc.presets import build_offline_default

        model_and_processor = build_offline_default()
    print(markdown_table(run(quick=args.quick, model_and_processor=model_and_processor)))


if __name__ == "__main__":
    main()
