"""Profiles and detection (`evaluation_ecmc.detection`): answer parsing, the detection table, prompts
from `prompts_ecmc`, the LLM choices, and one small real-LLM smoke test of profiles + detection (SmolLM2)."""

import json
import logging

import pytest

from evaluation_ecmc.detection import detection_markdown, detection_scores, detection_table, parse_answer
from modeling_ecmc.vocabulary_ecmc import format_caption
from synth_rows import synth_rows  # noqa: F401  (a fixture)


@pytest.mark.parametrize("text,answer", [
    ("Yes", "yes"), ("no.", "no"), ("**Yes**, the person shows signs.", "yes"), ("Answer: No", "no"),
    ("The person shows no signs of depression.", "no"), ("I think yes.", "yes"),
    ("是", "yes"), ("否。", "no"), ("不是", "no"), ("答：是的", "yes"),
    ("Yes or no?", None), ("Maybe.", None), ("", None), ("Yes... actually no.", "yes"),
    ("Hard to tell: yes and no.", None), ("是否抑郁很难说", None), ("Nope", None),
])
def test_parse_answer(text, answer):
    assert parse_answer(text) == answer


def test_parse_answer_language_specific():
    assert parse_answer("是", "en") is None and parse_answer("yes", "zh") is None and parse_answer("有", "zh") == "yes"


def test_detection_scores_and_table_math():
    labels = [1, 1, 0, 0, 1]
    s = detection_scores(["yes", "no", "no", "yes", None], labels)  # tp 1, fn 2 (one malformed), tn 1, fp 1
    assert (s["tp"], s["fn"], s["tn"], s["fp"], s["malformed"]) == (1, 2, 1, 1, 1)
    assert s["ACC"] == pytest.approx(40.0) and s["F1"] == pytest.approx(100 * 2 / (2 + 1 + 2))
    neg_malformed = detection_scores([None], [0])
    assert neg_malformed["fp"] == 1 and neg_malformed["ACC"] == 0.0
    res = lambda answers: {"depression": {"no profile": {"answers": answers[0], "labels": labels},  # noqa: E731
                                          "ECMC": {"answers": answers[1], "labels": labels}}}
    by_llm = {"A": res([["no"] * 5, ["yes", "yes", "no", "no", "yes"]]),
              "B": res([["yes"] * 5, ["yes", "no", "no", "no", "yes"]])}
    table = detection_table(by_llm)
    rows = table["depression"]["rows"]
    assert list(rows) == ["no profile", "ECMC"]
    assert rows["ECMC"]["A"]["ACC"] == 100.0 and rows["no profile"]["A"]["ACC"] == 40.0
    assert rows["ECMC"]["B"]["ACC"] == 80.0 and rows["no profile"]["B"]["ACC"] == 60.0
    assert rows["ECMC"]["Im_ACC"] == pytest.approx(((100 - 40) + (80 - 60)) / 2)
    f1_b = 100 * 2 * 2 / (2 * 2 + 0 + 1)
    assert rows["ECMC"]["Im_F1"] == pytest.approx(((100 - 0) + (f1_b - 75.0)) / 2)
    assert rows["no profile"]["Im_ACC"] == 0.0
    md = detection_markdown(table)
    assert "| Profile source | A ACC | A F1 | B ACC | B F1 | Im_ACC | Im_F1 |" in md and "| ECMC | 100.00 |" in md
    assert "40.00↑" in md
    json.dumps(table)


def test_prompts_come_from_prompts_ecmc_and_subjects_from_rows(synth_rows):
    from evaluation_ecmc.detection import detection_prompt, profile_prompt, subjects_from_rows
    from modeling_ecmc.prompts_ecmc import get_prompt

    class PlainTokenizer:  # no chat template: the prompt text plus a newline, like prompts_ecmc.chat_prompt (ECMCProcessor uses it too)
        chat_template = None

    assert profile_prompt(PlainTokenizer(), ["a", "b"]) == get_prompt("profile", "en", captions="1. a\n2. b") + "\n"
    zh = detection_prompt(PlainTokenizer(), "你好", "anxiety", "画像", "zh")
    assert zh == get_prompt("detection", "zh", profile_block=get_prompt("profile_block", "zh", profile="画像"),
                            transcript="你好", disorder="焦虑") + "\n"

    class Processor:  # an ECMCProcessor is used through its own prompt methods
        tokenizer = PlainTokenizer()

        def profile_prompt(self, captions, language=None):
            return f"P{len(captions)}{language}"

        def detection_prompt(self, transcript, disorder, profile=None, language=None):
            return f"D {transcript} {disorder} {profile} {language}"

    assert profile_prompt(Processor(), ["x"], "en") == "P1en"
    assert detection_prompt(Processor(), "t", "depression", None, "zh") == "D t 抑郁 None zh"
    subjects = subjects_from_rows(synth_rows)
    assert len(subjects) == len({r["subject_id"] for r in synth_rows})
    first = [r for r in synth_rows if r["subject_id"] == subjects[0]["subject_id"]]
    assert subjects[0]["transcript"] == "\n".join(r["transcript"] for r in sorted(first, key=lambda r: r["start"]))
    assert len(subjects[0]["captions"]) == len(first) and subjects[0]["depression"] in (0, 1)
    assert subjects[0]["language"] == first[0]["language"]  # a subject's prompts are in its own language


@pytest.mark.slow
def test_profiles_and_detection_with_a_real_llm(caplog):
    """SmolLM2-135M-Instruct (offline GGUF), one subject, a few tokens: the path runs end to end and
    logs no transcript, caption or profile."""
    from evaluation_ecmc.detection import load_causal_lm, run_detection, write_profiles

    secret = "I cannot remember the name of my street"
    caplog.set_level(logging.DEBUG)
    model, tokenizer = load_causal_lm()
    caption = format_caption("Negative emotion: a downcast look.", f"Memory deficit: {secret}.")
    profiles = write_profiles(model, tokenizer, {"s1": [caption]}, max_new_tokens=6)
    assert set(profiles) == {"s1"} and isinstance(profiles["s1"], str)
    subjects = [{"subject_id": "s1", "transcript": secret, "depression": 1, "anxiety": -1}]
    res = run_detection(model, tokenizer, subjects, {"ECMC": profiles}, disorders=("depression", "anxiety"),
                        max_new_tokens=3)
    assert res["anxiety"]["no profile"]["labels"] == []  # unknown label: skipped
    for source in ("no profile", "ECMC"):
        r = res["depression"][source]
        assert r["labels"] == [1] and r["answers"][0] in ("yes", "no", None)
    table = detection_table({"SmolLM2-135M": res})
    assert table["depression"]["rows"]["ECMC"]["SmolLM2-135M"]["n"] == 1
    # yes vs no by likelihood: always an answer, and left-padded batches give the one-at-a-time answers
    from evaluation_ecmc.detection import detection_prompt, likelihood_answers

    prompts = [detection_prompt(tokenizer, t, "depression") for t in (secret, "I slept well and feel great today.")]
    batched = likelihood_answers(model, tokenizer, prompts, batch_size=2)
    assert set(batched) <= {"yes", "no"}
    assert batched == [likelihood_answers(model, tokenizer, [p], batch_size=1)[0] for p in prompts]
    res = run_detection(model, tokenizer, subjects, disorders=("depression",), answer_mode="likelihood")
    assert res["depression"]["no profile"]["answers"][0] in ("yes", "no")
    assert secret.lower() not in caplog.text.lower() and profiles["s1"][:20] not in caplog.text


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
