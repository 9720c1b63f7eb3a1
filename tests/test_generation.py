"""Generation defaults that travel with a checkpoint (modeling_ecmc/generation_ecmc.py): a bare
`model.generate(**inputs)` writes a whole caption, not transformers' 20 tokens."""

import json

import torch
from conftest import tiny_config, tiny_prompt, tiny_raw_inputs

from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.vocabulary_ecmc import MAX_NEW_TOKENS


def test_checkpoint_carries_greedy_caption_length_and_bare_generate_uses_it(tmp_path):
    torch.manual_seed(0)
    ECMCForConditionalGeneration(tiny_config()).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == MAX_NEW_TOKENS["caption"] == 128
    assert saved["eos_token_id"] == 2 and saved["pad_token_id"] == 2 and not saved.get("do_sample", False)
    model = ECMCForConditionalGeneration.from_pretrained(tmp_path).eval()
    prompt = tiny_prompt(batch=1)
    with torch.no_grad():
        ids = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **tiny_raw_inputs(batch=1))
    new = ids.shape[1] - prompt.shape[1]
    stopped = (ids[0, prompt.shape[1]:] == 2).any()
    assert new == 128 or stopped, new  # the random decoder rarely writes eos: all 128 tokens (it was 20)
    with torch.no_grad():  # per call, as before
        short = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5,
                               **tiny_raw_inputs(batch=1))
    assert short.shape[1] - prompt.shape[1] <= 5


def test_checkpoint_saved_without_generation_defaults_gets_them_on_load(tmp_path):
    """A checkpoint from before generation_config.json carried max_new_tokens loads with 128, and a
    value the checkpoint does set is kept."""
    ECMCForConditionalGeneration(tiny_config()).save_pretrained(tmp_path)
    path = tmp_path / "generation_config.json"
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("max_new_tokens", "pad_token_id")}
    path.write_text(json.dumps(old))
    assert ECMCForConditionalGeneration.from_pretrained(tmp_path).generation_config.max_new_tokens == 128
    path.write_text(json.dumps({**old, "max_new_tokens": 40}))
    assert ECMCForConditionalGeneration.from_pretrained(tmp_path).generation_config.max_new_tokens == 40
