"""Generation settings and greedy completion.

`caption_generation_config`: the `GenerationConfig` every checkpoint carries (`generation_config.json`),
so a bare `model.generate(**inputs)` writes a whole caption; the pipeline, the CLI, evaluation and the
demo read it. `generate_texts`: greedy completion of chat-formatted prompts by a plain causal LM, the
one implementation behind profiles (Eq. 4) and detection answers (Eq. 5).

This file travels inside saved checkpoints (the model and the pipeline import it): it imports only
torch, transformers and its siblings.
"""

import torch
from transformers import GenerationConfig

from .vocabulary_ecmc import MAX_NEW_TOKENS


def caption_generation_config(text_config) -> GenerationConfig:
    """Greedy, `MAX_NEW_TOKENS["caption"]` new tokens (the longest ECMC-Synth caption is 101 tokens
    with eos in SmolLM2's tokenizer), and the decoder's own bos / eos / pad ids (pad falls back to eos)."""
    eos = text_config.eos_token_id
    pad = text_config.pad_token_id if text_config.pad_token_id is not None else eos
    return GenerationConfig(max_new_tokens=MAX_NEW_TOKENS["caption"], do_sample=False, num_beams=1,
                            bos_token_id=text_config.bos_token_id, eos_token_id=eos, pad_token_id=pad)


def left_padded_batches(model, tokenizer, prompts: list[str], batch_size: int):
    """(LLM tokenizer, encoded batch on the model's device) for `prompts`, left-padded so every
    prompt ends at the last position; the tokenizer's padding side is restored afterwards.
    `tokenizer` may be an `ECMCProcessor` (its LLM tokenizer is used)."""
    tok = getattr(tokenizer, "tokenizer", None) or tokenizer
    side = tok.padding_side
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    device = next(model.parameters()).device
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tok(prompts[i: i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            yield tok, {k: v.to(device) for k, v in enc.items()}
    finally:
        tok.padding_side = side


def generate_texts(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 4,
                   **generate_kwargs) -> list[str]:
    """Completions of `prompts` (left-padded batches; greedy unless `generate_kwargs` say otherwise);
    only the new text, stripped. `tokenizer` may be an `ECMCProcessor` (its LLM tokenizer is used)."""
    out = []
    for tok, enc in left_padded_batches(model, tokenizer, prompts, batch_size):
        with torch.no_grad():
            ids = model.generate(**enc, **{"max_new_tokens": max_new_tokens, "do_sample": False,
                                           "pad_token_id": tok.pad_token_id, **generate_kwargs})
        out += [t.strip() for t in tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
    return out


__all__ = ["caption_generation_config", "generate_texts", "left_padded_batches"]
