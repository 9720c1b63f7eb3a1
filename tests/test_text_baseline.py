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


def test_resolve_llm_choices(tiny_checkpoint):
    """`evaluate.llm` / `evaluate.text_baseline`: the checkpoint's decoder, or the LLM as shipped."""
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    from evaluation_ecmc.detection import resolve_llm

    model = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint)
    processor = ECMCProcessor.from_pretrained(tiny_checkpoint)
    llm, tokenizer, name = resolve_llm("decoder", model, processor)
    assert llm is model.language_model and tokenizer is processor.tokenizer and name == "ECMC's decoder"
    llm, tokenizer, name = resolve_llm("default", model, processor)
    assert name == "SmolLM2-135M-Instruct" and llm is not model.language_model
    assert llm.config.hidden_size == 576 and tokenizer.vocab_size == 49152  # the real SmolLM2, not the tiny decoder
    # "auto": the checkpoint's decoder, unless stage 2 merged a LoRA into it
    assert resolve_llm("auto", model, processor)[0] is model.language_model
    model.config.decoder_lora = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}
    assert resolve_llm("auto", model, processor)[2] == "SmolLM2-135M-Instruct"
