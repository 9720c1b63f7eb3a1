"""Batched generation vs one utterance at a time: identical greedy captions, captions/s ratio.

The model is the real offline default (`modeling_ecmc.presets.build_offline_default()`: MiniLM text
encoder, face-pixel and log-mel front ends, MiniLM-initialised Q-Formers with an untrained BridgeNet, the
real SmolLM2-135M-Instruct decoder), or with `--model tiny` the tiny random config of the unit tests.
Utterances are random 64×64 video frames, 2-6 s random waveforms and real transcripts of different
lengths, run through the processor once, outside the timing; `generate` (greedy, `max_new_tokens`)
is timed end to end from processed inputs: encoders, BridgeNet, prefill and decoding. Rounds
interleave the two sides; each keeps its fastest round (the machine may be shared).

    python -m benchmarks.bench_generation [--quick] [--model offline|tiny]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import Row, markdown_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRANSCRIPTS = [
    "I have been feeling quite low lately.",
    "What day is it today? I am not sure, maybe Tuesday.",
    "My daughter visited last weekend and we went for a long walk by the river.",
    "I keep forgetting where I put my keys.",
    "It is fine.",
    "I sleep badly and wake up at four every morning, then I just lie there thinking about everything.",
    "The doctor asked me to count backwards from one hundred by sevens and I lost track.",
    "I enjoy cooking, especially on Sundays.",
    "Sometimes I cannot find the right word for things, it is on the tip of my tongue.",
    "I worry a lot about money.",
    "We moved here three years ago.",
    "Honestly I do not feel like doing anything any more, not even the things I used to love.",
    "I am looking forward to the holidays.",
    "Where am I? Is this the hospital?",
    "I was a teacher for thirty years.",
    "My heart races before I leave the house.",
]

def build(model_kind: str):
    """(model, processor or None, utterance inputs maker)."""
    torch.manual_seed(0)
    if model_kind == "offline":
        from modeling_ecmc.presets import build_offline_default

        model, processor = build_offline_default()
        return model.eval(), processor
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import tiny_config

    return ECMCForConditionalGeneration(tiny_config()).eval(), None


def make_utterances(n: int, processor, seed: int = 0) -> list[dict]:
    """Raw per-utterance media (different audio lengths and transcripts)."""
    rng = np.random.default_rng(seed)
    size = processor.image_processor.crop_size["height"] if processor is not None else 32
    frames = processor.num_frames if processor is not None else 4
    utterances = []
    for i in range(n):
        seconds = float(rng.uniform(2.0, 6.0))
        utterances.append({
            "frames": rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
            "waveform": (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32),
            "transcript": TRANSCRIPTS[i % len(TRANSCRIPTS)],
            "text_ids": rng.integers(3, 100, 3 + i % 5).tolist(),  # tiny model: its own token ids, different lengths
        })
    return utterances


def model_inputs(utterances: list[dict], processor) -> dict:
    if processor is not None:
        return dict(processor(frames=[u["frames"] for u in utterances], waveforms=[u["waveform"] for u in utterances],
                              transcripts=[u["transcript"] for u in utterances]))
    # tiny model: tensors shaped like the processor's output, audio and text right-padded with masks
    batch = len(utterances)
    lengths = [len(u["waveform"]) // 10 for u in utterances]
    width = max(lengths)
    audio = torch.zeros(batch, width)
    audio_mask = torch.zeros(batch, width, dtype=torch.long)
    for i, (u, length) in enumerate(zip(utterances, lengths)):
        audio[i, :length] = torch.from_numpy(u["waveform"][:length])
        audio_mask[i, :length] = 1
    frames = torch.stack([torch.from_numpy(u["frames"]).permute(0, 3, 1, 2).float() / 255 for u in utterances])
    ids = torch.tensor([[1] + [120] * 4 + [121] * 4 + [5, 6, 7]] * batch)
    text_width = max(len(u["text_ids"]) for u in utterances)
    text_ids = torch.zeros(batch, text_width, dtype=torch.long)
    text_mask = torch.zeros(batch, text_width, dtype=torch.long)
    for i, u in enumerate(utterances):
        text_ids[i, : len(u["text_ids"])] = torch.tensor(u["text_ids"])
        text_mask[i, : len(u["text_ids"])] = 1
    return dict(pixel_values_videos=frames, input_values=audio, audio_attention_mask=audio_mask,
                text_input_ids=text_ids, text_attention_mask=text_mask, input_ids=ids,
                attention_mask=torch.ones_like(ids))


@torch.no_grad()
def generate(model, inputs: dict, max_new_tokens: int) -> list[list[int]]:
    prompt_length = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
    sequences = []
    for row in out[:, prompt_length:].tolist():  # cut at the first EOS: later tokens are padding
        cut = []
        for token in row:
            cut.append(token)
            if token in eos:
                break
        sequences.append(cut)
    return sequences


def run(quick: bool = False, model_kind: str = "offline", num_utterances: int = 16, batch_sizes=(8, 16),
        max_new_tokens: int = 24, rounds: int = 2, model_and_processor=None) -> list[Row]:
    t0 = time.perf_counter()
    model, processor = model_and_processor or build(model_kind)
    model_kind = "offline" if processor is not None else "tiny"
    build_s = time.perf_counter() - t0
    utterances = make_utterances(num_utterances, processor)
    singles = [model_inputs([u], processor) for u in utterances]
    batched_inputs = {}
    for batch_size in batch_sizes:
        chunks = [utterances[i : i + batch_size] for i in range(0, len(utterances), batch_size)]
        batched_inputs[batch_size] = [model_inputs(chunk, processor) for chunk in chunks]
    generate(model, singles[0], 2)  # warm-up (allocations, first-call paths)

    # Rounds interleave the baseline and the batched runs, so that a busy moment on a shared machine
    # hits both; each side keeps its fastest round.
    single_times, batched_times, batched_out = [], {b: [] for b in batch_sizes}, {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        one_at_a_time = [generate(model, inputs, max_new_tokens)[0] for inputs in singles]
        single_times.append(time.perf_counter() - t0)
        for batch_size in batch_sizes:
            t0 = time.perf_counter()
            batched_out[batch_size] = [seq for inputs in batched_inputs[batch_size]
                                       for seq in generate(model, inputs, max_new_tokens)]
            batched_times[batch_size].append(time.perf_counter() - t0)
    single_s = min(single_times)

    rows = []
    name = "greedy generation, offline default" if model_kind == "offline" else "greedy generation, tiny random model"
    for batch_size in batch_sizes:
        batched = batched_out[batch_size]
        batched_s = min(batched_times[batch_size])
        same = sum(a == b for a, b in zip(one_at_a_time, batched))
        if processor is not None:
            decode = lambda seqs: processor.tokenizer.batch_decode(seqs, skip_special_tokens=True)  # noqa: E731
            same_text = sum(a == b for a, b in zip(decode(one_at_a_time), decode(batched)))
        else:
            same_text = same
        tokens = sum(len(s) for s in batched)
        rows.append(Row(
            benchmark=name, size=f"batch {batch_size}, {num_utterances} utterances, ≤{max_new_tokens} new tokens",
            baseline="one utterance at a time", baseline_value=num_utterances / single_s,
            ours=f"batched ({batch_size})", ours_value=num_utterances / batched_s, unit="captions/s",
            check=f"{'yes' if same_text == num_utterances else 'NO'}: {same_text}/{num_utterances} captions identical"
                  + ("" if same == same_text else f" ({same}/{num_utterances} token-identical)"),
            extra={"single_seconds_per_round": single_times, "batched_seconds_per_round": batched_times[batch_size],
                   "identical_token_sequences": same, "identical_texts": same_text, "generated_tokens": tokens,
                   "mean_new_tokens": tokens / num_utterances, "build_seconds": build_s},
        ))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random model, 8 utterances, 8 new tokens")
    parser.add_argument("--model", choices=("offline", "tiny"), default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    kind = args.model or ("tiny" if args.quick else "offline")
    kwargs = dict(num_utterances=8, batch_sizes=(4, 8), max_new_tokens=8, rounds=1) if args.quick else {}
    if args.max_new_tokens:
        kwargs["max_new_tokens"] = args.max_new_tokens
    print(markdown_table(run(quick=args.quick, model_kind=kind, **kwargs)))


if __name__ == "__main__":
    main()
