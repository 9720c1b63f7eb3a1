"""The text-only LLM baseline (Tables 1-2 comparison rows): a real instruction-tuned LLM (SmolLM2)
captions from the transcript alone, in the ECMC caption format, scored by the same metrics."""

import json

import pytest

from evaluation_ecmc.text_baseline import main, text_baseline_captions
from modeling_ecmc.vocabulary_ecmc import split_caption


@pytest.mark.slow
def test_text_baseline_captions_and_runner(tmp_path, tiny_synth_dataset):
    from evaluation_ecmc.detection import load_causal_lm

    model, tokenizer = load_causal_lm()  # offline default: SmolLM2-135M-Instruct
    transcripts = ["I keep worrying that something bad will happen and I cannot sleep.",
                   "Um, what day is it, I, I forget the, the word."]
    captions = text_baseline_captions(model, tokenizer, transcripts, max_new_tokens=48, batch_size=2)
    assert len(captions) == 2
    for caption in captions:
        assert caption.startswith("Emotion:\n") and "\n\nCognition:\n" in caption
        assert split_caption(caption)["emotion"]  # the LLM wrote something we parse as the emotion part
    # batched == one at a time (greedy)
    assert text_baseline_captions(model, tokenizer, transcripts[1:], max_new_tokens=48, batch_size=1) == captions[1:]

    out = tmp_path / "baseline"
    main(["--dataset", str(tiny_synth_dataset), "--split", "test", "--output", str(out), "--max-new-tokens", "24"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["caption"]["F_BERT"] <= 1 and 0 <= metrics["emotion"]["BLEU-4"] <= 1
    assert len((out / "captions.jsonl").read_text().splitlines()) > 0 and "F_BERT" in (out / "metrics.md").read_text()
