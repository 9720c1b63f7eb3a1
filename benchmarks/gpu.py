"""Paper-sized ECMC on one GPU: bf16 matmul peak, stage-1 and stage-2 training steps, greedy generation.

Random weights, the paper's shapes (DESIGN §1; `modeling_ecmc.presets.paper_config()`):
- **matmul peak**: the best bf16 matmul rate over a few square sizes, the denominator of every MFU;
- **stage 1**: `ECMCModel`, six BERT-base-shaped Q-Formers (12 layers, hidden 768, cross-attention
  every 2nd layer, 32 queries), batch 64, cached features fed directly (audio 1024×768, video
  512×768, text 64 BERT tokens × 768), contrastive loss, backward, fused AdamW; fp32 master weights
  under bf16 autocast; samples/s;
- **stage 2**: `ECMCForConditionalGeneration` with a LLaMA-7B-shaped frozen decoder in bf16 (BridgeNet and
  projections trainable, fp32 under bf16 autocast), batch 8, the real sequence layout ([BOS] + 32
  emotion + 32 cognition placeholders + prompt + caption = 512 tokens, loss on the caption only);
  tokens/s;
- **generation**: greedy, exactly 128 new tokens, batch 1, 8 and 32, static KV cache
  (`cache_implementation="static"`; the default dynamic cache too, for comparison); captions/s.

Each section reports peak GPU memory and model-FLOPs utilisation against the measured matmul peak.
FLOPs are counted honestly: "counted" is `torch.utils.flop_counter.FlopCounterMode` over one real
forward + backward (every matmul and attention actually run; a frozen LLM gets input gradients but
no weight gradients, so ~4·N per token instead of 6·N; the frozen encoders are not run at all, the
features being cached). For stage 2, "4·N·tokens" (N = all LLM parameters) is given beside it, the
formula the H200 reference numbers use; for generation, 2·N per processed token.

SDPA attention everywhere, no gradient checkpointing, no torch.compile. Each section is guarded:
one failure still prints the others. The table is printed last; JSON and markdown go to `$OUT`
(default ./outputs/gpu-bench).

    python -m benchmarks.gpu            # on a GPU, about 3-5 minutes (from the checkout's root)
    python -m benchmarks.gpu --tiny     # tiny shapes, CPU, < 1 minute: checks that the script works

Imports only torch, transformers, `modeling_ecmc` and `training_ecmc.freezing` (the stages' freezing,
which needs only PyYAML besides; not `processing_ecmc`). `modeling_ecmc` needs a
transformers with `SubConfigSpec` (5.24 here); see benchmarks/README.md for carrying that wheel to
a machine that has an older one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Measured by others on an H200 (for orientation, printed beside ours).
ANCHORS = {
    "matmul": "737-767 TFLOP/s",
    "stage1": "authors' design 170 samples/s; plain PyTorch 397 samples/s; target >= 850 samples/s",
    "stage2": "plain path 15,600 tokens/s, 57 % MFU (4·N·tokens)",
    "generate_static_32": "12 captions/s",
}

PAPER_SHAPES = dict(
    matmul_sizes=(4096, 8192, 16384),
    stage1_batch=64, audio_frames=1024, video_frames=512, text_tokens=64,
    stage2_batch=8, seq_len=512, prompt_tokens=26,
    gen_batches=(1, 8, 32), new_tokens=128,
    warmup=3, steps=10,
)
TINY_SHAPES = dict(
    matmul_sizes=(256, 512),
    stage1_batch=8, audio_frames=32, video_frames=16, text_tokens=8,
    stage2_batch=2, seq_len=48, prompt_tokens=5,
    gen_batches=(1, 2, 4), new_tokens=8,
    warmup=1, steps=2,
)
# ----------------------------------------------------------------------------- helpers
def log(message: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.shapes = dict(TINY_SHAPES if args.tiny else PAPER_SHAPES)
        for key in ("stage1_batch", "stage2_batch", "seq_len", "new_tokens", "steps", "warmup", "text_tokens"):
            if getattr(args, key, None):
                self.shapes[key] = getattr(args, key)
        if args.gen_batches:
            self.shapes["gen_batches"] = tuple(int(b) for b in args.gen_batches.split(","))
        self.results: dict = {}
        self.rows: list[tuple] = []  # (section, result, peak memory, MFU, reference)
        self.peak_flops: float | None = None
        self.stage2_model = None
        self.started = time.perf_counter()

    # --- timing and memory
    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def time_steps(self, fn, steps: int, warmup: int) -> float:
        """Seconds per call of `fn`, after `warmup` calls."""
        for _ in range(warmup):
            fn()
        self.sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / steps

    def reset_memory(self):
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda else None

    def mfu(self, flops_per_second: float | None) -> float | None:
        if not flops_per_second or not self.peak_flops:
            return None
        return flops_per_second / self.peak_flops

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def default_dtype(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def fmt_mem(gib):
    return "n/a (CPU)" if gib is None else f"{gib:.1f} GiB"


def fmt_pct(x):
    return "—" if x is None else f"{100 * x:.1f} %"


def fmt_params(n):
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


def fmt_flops(x):
    """FLOPs (or FLOP/s without the unit) with an SI prefix."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}"
    return f"{x:.3g} "


def count_flops(fn) -> float | None:
    """Total FLOPs of the matmuls and attention that `fn` runs (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def time_training_step(bench, model, inputs, optimizer, s):
    """(seconds per optimizer step, peak memory, FLOPs of one forward + backward or None)."""

    def forward_backward():
        with bench.autocast():
            loss = model(**inputs).loss
        loss.backward()
        return loss

    def step():
        forward_backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = bench.time_steps(step, steps=s["steps"], warmup=s["warmup"])
    peak = bench.peak_memory()
    flops = None if bench.args.no_flop_count else count_flops(forward_backward)
    optimizer.zero_grad(set_to_none=True)
    return seconds, peak, flops


def make_config(bench: Bench):
    from modeling_ecmc.presets import paper_config, tiny_config

    if bench.args.tiny:
        return tiny_config(attn_implementation="sdpa")
    return paper_config(attn_implementation="sdpa")


def make_features(bench: Bench, config, batch: int, dtype=torch.bfloat16, seed: int = 0) -> dict:
    """Cached-encoder-feature inputs, as the feature cache feeds them (all frames valid)."""
    s = bench.shapes
    g = torch.Generator(device=bench.device).manual_seed(seed)
    frames = {"video": s["video_frames"], "audio": s["audio_frames"], "text": s["text_tokens"]}
    return {
        f"{m}_features": torch.randn(batch, frames[m], config.feature_size(m), generator=g, device=bench.device,
                                     dtype=dtype)
        for m in config.modalities
    }


def decoder_prompt(bench: Bench, config, batch: int, caption_tokens: int = 0, seed: int = 0):
    """[BOS] + l_q emotion + l_q cognition placeholders + prompt (+ caption): (input_ids, labels)."""
    text = config.text_config
    g = torch.Generator(device="cpu").manual_seed(seed)
    low = 3
    high = text.vocab_size
    prompt = torch.randint(low, high, (batch, bench.shapes["prompt_tokens"]), generator=g)
    caption = torch.randint(low, high, (batch, caption_tokens), generator=g)
    bos = torch.full((batch, 1), text.bos_token_id if text.bos_token_id is not None else 1)
    q = config.soft_tokens_per_stream
    ids = torch.cat([bos, torch.full((batch, q), config.emotion_token_id), torch.full((batch, q), config.cognition_token_id),
                     prompt, caption], dim=1)
    labels = ids.clone()
    labels[:, : ids.shape[1] - caption_tokens] = -100
    return ids.to(bench.device), labels.to(bench.device)


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- sections
def section_matmul(bench: Bench):
    best, per_size = 0.0, {}
    for n in bench.shapes["matmul_sizes"]:
        a = torch.randn(n, n, device=bench.device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=bench.device, dtype=torch.bfloat16)
        flops = 2 * n**3
        once = bench.time_steps(lambda: torch.mm(a, b), steps=2, warmup=2)
        iters = max(3, min(200, int(0.3 / max(once, 1e-6))))  # ~0.3 s per size
        seconds = bench.time_steps(lambda: torch.mm(a, b), steps=iters, warmup=1)
        rate = flops / seconds
        per_size[n] = rate
        best = max(best, rate)
        del a, b
    bench.peak_flops = best
    bench.results["matmul"] = {"peak_flops_per_s": best, "per_size_flops_per_s": per_size}
    detail = ", ".join(f"{n}: {fmt_flops(r)}FLOP/s" for n, r in per_size.items())
    bench.rows.append(("bf16 matmul peak (MFU denominator)", f"{fmt_flops(best)}FLOP/s (n = {detail})", "—", "—",
                       ANCHORS["matmul"]))


def section_stage1(bench: Bench):
    from modeling_ecmc import ECMCModel
    from training_ecmc.freezing import freeze_for_stage

    s = bench.shapes
    config = make_config(bench)
    bench.reset_memory()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(bench.device):
        model = ECMCModel(config)  # fp32 master weights; bf16 autocast in the step
    build_s = time.perf_counter() - t0
    freeze_for_stage(model, 1).train()
    model.encoders.eval()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1.3e-5, weight_decay=1e-6, fused=bench.cuda)
    batch = s["stage1_batch"]
    inputs = make_features(bench, config, batch)
    g = torch.Generator(device="cpu").manual_seed(1)
    inputs["emotion_labels"] = (torch.randint(0, 3, (batch,), generator=g) - 1).to(bench.device)
    inputs["cognition_labels"] = (torch.rand(batch, 4, generator=g) < 0.15).long().to(bench.device)

    seconds, peak, flops = time_training_step(bench, model, inputs, optimizer, s)
    samples_per_s = batch / seconds
    mfu = bench.mfu(flops / seconds if flops else None)
    bench.results["stage1"] = {
        "batch": batch, "seconds_per_step": seconds, "samples_per_s": samples_per_s, "peak_memory_gib": peak,
        "counted_flops_per_step": flops, "mfu_counted": mfu, "build_seconds": build_s,
        "trainable_parameters": sum(p.numel() for p in trainable), "total_parameters": parameter_count(model),
        "shapes": {"audio": s["audio_frames"], "video": s["video_frames"], "text": s["text_tokens"]},
    }
    bench.rows.append((
        f"stage-1 step (batch {batch}, audio {s['audio_frames']}, video {s['video_frames']}, text {s['text_tokens']})",
        f"{samples_per_s:,.0f} samples/s ({seconds * 1e3:.0f} ms/step)", fmt_mem(peak),
        f"{fmt_pct(mfu)} counted" + (f" ({fmt_flops(flops / batch)}FLOP/sample)" if flops else ""),
        ANCHORS["stage1"],
    ))
    del model, optimizer, inputs, trainable
    bench.reset_memory()


def build_stage2_model(bench: Bench):
    from modeling_ecmc import ECMCForConditionalGeneration

    config = make_config(bench)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(bench.device), default_dtype(torch.bfloat16):
        model = ECMCForConditionalGeneration(config)
    bench.results.setdefault("stage2_model", {})["build_seconds"] = time.perf_counter() - t0
    return model


def section_stage2(bench: Bench):
    from training_ecmc.freezing import freeze_for_stage

    s = bench.shapes
    bench.reset_memory()
    model = build_stage2_model(bench)
    config = model.config
    freeze_for_stage(model, 2).train()
    model.model.encoders.eval()
    # trainable parts in fp32 (master weights), the frozen LLM stays bf16; the step runs under bf16 autocast
    model.model.bridge.float()
    model.language_projections.float()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=bench.cuda)
    batch, seq_len = s["stage2_batch"], s["seq_len"]
    prefix = 1 + 2 * config.soft_tokens_per_stream + s["prompt_tokens"]
    caption_tokens = seq_len - prefix
    if caption_tokens < 1:
        raise ValueError(f"seq_len {seq_len} leaves no caption after the {prefix}-token prefix")
    ids, labels = decoder_prompt(bench, config, batch, caption_tokens)
    inputs = dict(make_features(bench, config, batch), input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)

    seconds, peak, flops = time_training_step(bench, model, inputs, optimizer, s)
    tokens = batch * seq_len
    tokens_per_s = tokens / seconds
    n_llm = parameter_count(model.language_model)
    mfu_4n = bench.mfu(4 * n_llm * tokens_per_s)
    mfu_counted = bench.mfu(flops / seconds if flops else None)
    bench.results["stage2"] = {
        "batch": batch, "seq_len": seq_len, "prefix_tokens": prefix, "caption_tokens": caption_tokens,
        "seconds_per_step": seconds, "tokens_per_s": tokens_per_s, "samples_per_s": batch / seconds,
        "peak_memory_gib": peak, "llm_parameters": n_llm, "total_parameters": parameter_count(model),
        "trainable_parameters": sum(p.numel() for p in trainable), "counted_flops_per_step": flops,
        "flops_4N_per_step": 4 * n_llm * tokens, "mfu_4N": mfu_4n, "mfu_counted": mfu_counted,
    }
    bench.rows.append((
        f"stage-2 step (batch {batch} × {seq_len} tokens, frozen {fmt_params(n_llm)}-parameter LLM in bf16)",
        f"{tokens_per_s:,.0f} tokens/s ({seconds * 1e3:.0f} ms/step)", fmt_mem(peak),
        f"{fmt_pct(mfu_4n)} (4·N·tokens), {fmt_pct(mfu_counted)} counted", ANCHORS["stage2"],
    ))
    # hand the model on to the generation section as a pure-bf16 inference model
    del optimizer, trainable, inputs
    model.zero_grad(set_to_none=True)
    bench.stage2_model = model


def section_generate(bench: Bench):
    s = bench.shapes
    model = bench.stage2_model
    bench.stage2_model = None
    if model is None:
        bench.reset_memory()
        model = build_stage2_model(bench)
    model = model.to(torch.bfloat16).eval()
    model.requires_grad_(False)
    bench.reset_memory()
    config = model.config
    n_llm = parameter_count(model.language_model)
    new = s["new_tokens"]
    caches = ["static", "dynamic"] if not bench.args.static_only else ["static"]
    bench.results["generate"] = {}
    sequences = {}
    for cache in caches:
        for batch in s["gen_batches"]:
            key = f"{cache}_{batch}"
            try:
                bench.reset_memory()
                ids, _ = decoder_prompt(bench, config, batch)
                inputs = dict(make_features(bench, config, batch, seed=batch), input_ids=ids,
                              attention_mask=torch.ones_like(ids))
                kwargs = dict(do_sample=False, num_beams=1, max_new_tokens=new, min_new_tokens=new,
                              return_dict_in_generate=True)
                if cache == "static":
                    kwargs["cache_implementation"] = "static"

                @torch.inference_mode()
                def run(max_new=new):
                    return model.generate(**inputs, **{**kwargs, "max_new_tokens": max_new, "min_new_tokens": max_new})

                run(min(8, new))  # warm-up: allocations, kernels
                out = None
                times = []
                for _ in range(1 if bench.args.tiny else 2):
                    bench.sync()
                    t0 = time.perf_counter()
                    out = run()
                    bench.sync()
                    times.append(time.perf_counter() - t0)
                seconds = min(times)
                cache_used = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
                cache_class = type(cache_used).__name__
                out = out.sequences
                generated = out.shape[1] - ids.shape[1]
                sequences[key] = out.cpu()
                if generated != new:
                    raise RuntimeError(f"generated {generated} tokens, expected {new}")
                peak = bench.peak_memory()
                processed = batch * (ids.shape[1] + new)
                mfu = bench.mfu(2 * n_llm * processed / seconds)
                bench.results["generate"][key] = {
                    "cache": cache, "batch": batch, "new_tokens": new, "prompt_tokens": ids.shape[1],
                    "seconds": seconds, "captions_per_s": batch / seconds, "new_tokens_per_s": batch * new / seconds,
                    "peak_memory_gib": peak, "mfu_2N": mfu, "cache_class": cache_class,
                }
                other = sequences.get(f"{'static' if cache == 'dynamic' else 'dynamic'}_{batch}")
                if other is not None:  # random weights: near-uniform logits, so rare argmax ties may differ
                    same = sum(torch.equal(a, b) for a, b in zip(other, sequences[key]))
                    bench.results["generate"][key]["sequences_equal_to_other_cache"] = f"{same}/{batch}"
                reference = ANCHORS["generate_static_32"] if (cache == "static" and batch == 32) else ""
                bench.rows.append((
                    f"greedy generate, {cache} KV cache ({cache_class}), batch {batch}, {new} new tokens",
                    f"{batch / seconds:,.2f} captions/s ({batch * new / seconds:,.0f} new tokens/s)", fmt_mem(peak),
                    f"{fmt_pct(mfu)} (2·N·tokens)", reference,
                ))
            except Exception as error:  # one batch size or cache kind failing keeps the others
                traceback.print_exc()
                bench.results["generate"][key] = {"error": f"{type(error).__name__}: {error}"}
                bench.rows.append((f"greedy generate, {cache} KV cache, batch {batch}",
                                   f"FAILED: {type(error).__name__}: {str(error)[:100]}", "—", "—", ""))
    del model
    bench.reset_memory()


SECTIONS = {"matmul": section_matmul, "stage1": section_stage1, "stage2": section_stage2, "generate": section_generate}


# ----------------------------------------------------------------------------- report
def environment(bench: Bench) -> dict:
    import transformers

    env = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "device": str(bench.device), "tiny": bench.args.tiny, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if bench.cuda:
        props = torch.cuda.get_device_properties(bench.device)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def render_table(bench: Bench, env: dict) -> str:
    header = ("section", "result", "peak memory", "MFU", "H200 reference")
    lines = [
        f"ECMC GPU benchmark: {env.get('gpu', env.get('cpu'))}, torch {env['torch']}, transformers {env['transformers']}"
        + (" (--tiny: tiny shapes, numbers meaningless)" if bench.args.tiny else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in bench.rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (CPU, < 1 minute): checks that the script works")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: $OUT or ./outputs/gpu-bench)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--stage1-batch", type=int, default=None)
    parser.add_argument("--stage2-batch", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=None, help="stage-2 sequence length (default 512)")
    parser.add_argument("--text-tokens", type=int, default=None, help="text feature tokens (default 64)")
    parser.add_argument("--gen-batches", default=None, help="comma-separated generation batch sizes (default 1,8,32)")
    parser.add_argument("--new-tokens", type=int, default=None, help="generated tokens (default 128)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 10)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up training steps (default 3)")
    parser.add_argument("--static-only", action="store_true", help="skip the dynamic-cache generation rows")
    parser.add_argument("--no-flop-count", action="store_true", help="skip FlopCounterMode (counted MFU)")
    parser.add_argument("--time-budget", type=float, default=450.0,
                        help="seconds; sections not yet started when it is spent are skipped (default 450)")
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out or Path(os.environ.get("OUT") or "outputs/gpu-bench")
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    if bench.cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    env = environment(bench)
    log(f"device {env.get('gpu', env['device'])}, torch {env['torch']}, transformers {env['transformers']}")

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {','.join(SECTIONS)}")
    if "matmul" not in sections:
        log("no matmul section: MFU columns stay empty")

    model_import_error = None
    try:
        import modeling_ecmc  # noqa: F401
    except Exception as error:  # e.g. a transformers without SubConfigSpec
        model_import_error = f"{type(error).__name__}: {error}"
        log(f"cannot import modeling_ecmc ({model_import_error}); model sections are skipped. "
            "modeling_ecmc needs transformers 5.24 (benchmarks/README.md: carrying the wheel)")

    failures = 0
    for name in sections:
        if model_import_error and name != "matmul":
            bench.rows.append((name, f"SKIPPED: modeling_ecmc does not import ({model_import_error[:90]})", "—", "—", ""))
            bench.results[name] = {"skipped": model_import_error}
            failures += 1
            continue
        if bench.elapsed() > args.time_budget:
            bench.rows.append((name, f"SKIPPED: time budget of {args.time_budget:.0f} s spent", "—", "—", ""))
            bench.results[name] = {"skipped": "time budget"}
            continue
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            SECTIONS[name](bench)
        except Exception as error:  # one failure still prints the others
            traceback.print_exc()
            failures += 1
            message = f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
            bench.results[name] = {"error": message}
            bench.rows.append((name, f"FAILED: {message}", fmt_mem(bench.peak_memory()) if bench.cuda else "—", "—", ""))
            if name == "stage2":
                bench.stage2_model = None
            bench.reset_memory()
        log(f"{name} done in {time.perf_counter() - t0:.1f} s")

    env["total_seconds"] = bench.elapsed()
    table = render_table(bench, env)
    payload = {"environment": env, "shapes": {k: list(v) if isinstance(v, tuple) else v for k, v in bench.shapes.items()},
               "anchors_h200": ANCHORS, "results": bench.results, "table": table}
    (out / "gpu-bench.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "gpu-bench.md").write_text(table + "\n", encoding="utf-8")
    log(f"wrote {out / 'gpu-bench.json'} and {out / 'gpu-bench.md'} ({bench.elapsed():.0f} s in all)")
    print()
    print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
