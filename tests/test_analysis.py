"""Analysis: label read-back (ECMC-Synth captions and hand-written wording), chance levels, answer
parsing and the detection table, Fleiss' kappa and the rating kit, Fig. 4 / t-SNE / k-NN, reports,
and one small real-LLM smoke test of profiles + detection (SmolLM2)."""

import csv
import json
import logging

import numpy as np
import pytest

from evaluation_ecmc.detection import detection_markdown, detection_scores, detection_table, parse_answer
from evaluation_ecmc.human_eval import aggregate_ratings, export_rating_kit, fleiss_kappa, ratings_to_counts
from evaluation_ecmc.label_readback import chance_levels, read_cognition, read_emotion, read_labels, readback_scores
from modeling_ecmc.vocabulary_ecmc import format_caption

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def synth_rows(tmp_path_factory):
    from processing_ecmc.synth import generate_synth

    manifest = generate_synth(tmp_path_factory.mktemp("synth"), "tiny", seed=0, progress=False)
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


def _captions(rows):
    return [format_caption(r["emotion_caption"], r["cognition_caption"]) for r in rows]


# ---- label read-back -----------------------------------------------------------------------------
def test_readback_recovers_synth_reference_labels(synth_rows):
    res = readback_scores(_captions(synth_rows), [r["emotion_label"] for r in synth_rows],
                          [r["cognition_labels"] for r in synth_rows])
    print(f"\nread-back on tiny ECMC-Synth reference captions (n={res['n']}): emotion "
          f"{res['emotion']['accuracy']:.3f}, cognition exact match {res['cognition']['exact_match']:.3f}")
    assert res["emotion"]["accuracy"] >= 0.95 and res["emotion"]["unreadable"] == 0
    assert res["cognition"]["exact_match"] >= 0.95


def test_readback_on_many_synth_captions_beats_chance():
    """Captions of 1,200 planned ECMC-Synth utterances (the planner needs no media)."""
    from processing_ecmc.synth import assign_subjects, plan_subject

    caps, emo, cog = [], [], []
    for i, s in enumerate(assign_subjects(200, 3)):
        for u in plan_subject(3, i, s["depression"], s["anxiety"], 6)["utterances"]:
            caps.append(format_caption(u["emotion_caption"], u["cognition_caption"]))
            emo.append(u["emotion_label"])
            cog.append(u["cognition_labels"])
    res = readback_scores(caps, emo, cog)
    print(f"\nread-back on 1,200 planned ECMC-Synth captions: emotion {res['emotion']['accuracy']:.4f}, "
          f"cognition exact {res['cognition']['exact_match']:.4f}, macro-F1 {res['cognition']['macro_f1']:.4f}")
    assert res["emotion"]["accuracy"] >= 0.98 and res["cognition"]["exact_match"] >= 0.98
    assert res["emotion"]["accuracy"] > res["chance"]["emotion"]["majority_accuracy"] + 0.3


@pytest.mark.parametrize("text,label", [
    ("The speaker seems sad and in a low mood.", -1), ("She looks calm and neutral.", 0),
    ("He is cheerful and smiles a lot.", 1), ("The speaker is not happy.", -1), ("He isn't happy.", -1), ("Not sad, just calm.", 0),
    ("Although the speaker smiles, a flat voice and talk of hopelessness point to negative emotion.", -1),
    ("With a smile and a bright voice, the speaker talks happily; the emotion appears positive.", 1),
    ("", None), ("The weather.", None), ("说话人情绪低落，显得悲伤。", -1), ("情绪平静。", 0), ("她很开心。", 1),
])
def test_read_emotion(text, label):
    assert read_emotion(text, "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en") == label


@pytest.mark.parametrize("text,labels,readable", [
    ("No obvious cognitive impairment: the answer is coherent and on topic.", [0, 0, 0, 0], True),
    ("No sign of memory deficit.", [0, 0, 0, 0], True),
    ("No signs of orientation, attention, memory or language problems.", [0, 0, 0, 0], True),
    ("She does not show any signs of memory impairment.", [0, 0, 0, 0], True),
    ("Cognition appears intact in this answer.", [0, 0, 0, 0], True),
    ("The speaker seems disoriented about the date.", [1, 0, 0, 0], True),
    ("The speaker is easily distracted and forgets names.", [0, 1, 1, 0], True),
    ("Word-finding difficulties and fragmented speech.", [0, 0, 0, 1], True),
    ("Memory is intact, but attention deficit: the speaker asks for the question to be repeated.", [0, 1, 0, 0], True),
    ("The speaker does not know where they are, suggesting orientation deficit.", [1, 0, 0, 0], True),
    ("Attention deficit: the speaker forgets the question.", [0, 1, 0, 0], True),  # evidence, not memory
    ("Orientation is normal; memory is impaired.", [0, 0, 1, 0], True),
    ("The speaker cannot recall the previous day.", [0, 0, 1, 0], True),
    ("He doesn't seem disoriented.", [0, 0, 0, 0], True), ("Memory deficit is absent.", [0, 0, 0, 0], True),
    ("Memory deficit was ruled out, but attention deficit is likely.", [0, 1, 0, 0], True),
    ("The speaker talks about the garden.", [0, 0, 0, 0], False),
    ("未见明显定向、注意、记忆或语言障碍。", [0, 0, 0, 0], True),
    ("记忆障碍：说话人想不起昨天做了什么。", [0, 0, 1, 0], True),
    ("说话人无法回忆昨天的事，忘记了约会。", [0, 0, 1, 0], True),
])
def test_read_cognition(text, labels, readable):
    assert read_cognition(text, "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en") == (labels, readable)


def test_read_labels_uses_the_caption_parts():
    cap = format_caption("Negative emotion: a frown.", "Possible memory deficit, as the speaker forgot an appointment.")
    assert read_labels(cap) == {"emotion": -1, "cognition": [0, 0, 1, 0], "cognition_readable": True}
    free = read_labels("The speaker smiles; no sign of cognitive impairment.")  # no headers: whole text
    assert free["emotion"] == 1 and free["cognition"] == [0, 0, 0, 0] and free["cognition_readable"]


def test_chance_levels_and_unreadable_counted_wrong():
    emo = [-1, -1, 0, 1]
    cog = [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]]
    ch = chance_levels(emo, cog)
    assert ch["emotion"]["majority_class"] == "negative" and ch["emotion"]["majority_accuracy"] == 0.5
    assert ch["emotion"]["uniform_accuracy"] == pytest.approx(1 / 3)
    # uniform F1 of a class with frequency p and K classes: 2 p / K / (p + 1 / K)
    assert ch["emotion"]["uniform_macro_f1"] == pytest.approx(np.mean([2 * p / 3 / (p + 1 / 3) for p in (.5, .25, .25)]))
    assert ch["cognition"]["memory deficit"]["uniform_f1"] == pytest.approx(0.5 / (0.5 + 0.5))
    assert ch["cognition"]["attention deficit"]["majority_accuracy"] == 0.75
    res = readback_scores(["Emotion:\nnegative emotion", "Emotion:\nthe weather", "", "Emotion:\npositive emotion"], emo,
                          [[0] * 4] * 4)
    assert res["emotion"]["accuracy"] == 0.5 and res["emotion"]["unreadable"] == 2


# ---- detection -----------------------------------------------------------------------------------
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

    class PlainTokenizer:  # no chat template: the prompt text plus a newline, like ECMCProcessor._chat
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


# ---- human evaluation ----------------------------------------------------------------------------
def test_fleiss_kappa_textbook_example():
    """Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210."""
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(ratings_to_counts([[1, 1, 1], [2, 2, 2], [3, 3, 3]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 raters"):
        fleiss_kappa([[1, 0]])


def test_rating_kit_is_blinded_and_aggregates(tmp_path):
    items = [{"utterance_id": f"u{i}", "video_path": f"media/s{i}.mp4", "start": 1.0, "end": 3.0,
              "transcript": f"answer {i}"} for i in range(4)]
    systems = {"Dataset": [f"reference {i}" for i in range(4)], "ECMC-secret-name": [f"ours {i}" for i in range(4)]}
    kit = export_rating_kit(items, systems, tmp_path / "kit", seed=1)
    sheet = open(kit["sheet"], encoding="utf-8").read()
    assert "ECMC-secret-name" not in sheet and "Dataset" not in sheet and kit["rows"] == 8
    with open(kit["key"], newline="", encoding="utf-8") as f:
        key = {r["system"]: r["name"] for r in csv.DictReader(f)}
    assert sorted(key.values()) == ["Dataset", "ECMC-secret-name"]
    with open(kit["sheet"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    filled = []
    for rater, bump in enumerate((0, 0, 1)):
        for row in rows:
            base = 5 if key[row["system"]] == "Dataset" else 3
            row.update({"EAcc": base, "CAcc": base - bump, "Detail": 4, "Consis": "-" if base == 3 else 4, "Overall": base})
        path = tmp_path / f"rater{rater}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        filled.append(path)
    agg = aggregate_ratings(filled, kit["key"])
    assert agg["systems"]["Dataset"]["EAcc"]["mean"] == 5 and agg["systems"]["ECMC-secret-name"]["EAcc"]["mean"] == 3
    assert agg["systems"]["Dataset"]["CAcc"]["mean"] == pytest.approx((5 + 5 + 4) / 3)
    assert agg["systems"]["ECMC-secret-name"]["Consis"] is None and agg["kappa"]["EAcc"] == pytest.approx(1.0)
    from evaluation_ecmc.human_eval import table6_markdown

    md = table6_markdown(agg, order=["Dataset", "ECMC-secret-name"])
    assert "| Dataset | 5.00 | 4.67 | 4.00 | 4.00 | 5.00 |" in md and "| ECMC-secret-name | 3.00 | 2.67 | 4.00 | - |" in md
    rows[0]["EAcc"] = "6"
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=r"bad.csv, line 2, column EAcc: '6' is not a rating 1-5"):
        aggregate_ratings([bad], kit["key"])


# ---- statistics, figures, report -----------------------------------------------------------------
def test_group_statistics_math():
    from evaluation_ecmc.statistics import group_statistics

    stats = group_statistics(["a", "a", "b", "b", "c"], [1, 1, 0, 0, 1], [0, 0, 0, 0, 1], [-1, 0, 1, None, -1],
                             [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    g = stats["groups"]
    assert g["depression"]["n_subjects"] == 2 and g["anxiety"]["n_subjects"] == 1 and g["healthy"]["n_subjects"] == 1
    assert g["depression"]["mean"]["negative emotion"] == pytest.approx((0.5 + 1.0) / 2)
    assert g["depression"]["mean"]["attention deficit"] == pytest.approx((0.5 + 1.0) / 2)
    assert g["healthy"]["mean"]["negative emotion"] == 0.0  # the unreadable (None) utterance is left out


def test_figures_and_report(synth_rows, tmp_path):
    from evaluation_ecmc.report import (ablation_table_markdown, caption_table_markdown, group_statistics_markdown,
                                        knn_table_markdown, readback_table_markdown, write_report)
    from evaluation_ecmc.statistics import (group_statistics_from_rows, knn_accuracy, label_names, plot_group_statistics,
                                            plot_tsne)

    stats = group_statistics_from_rows(synth_rows)
    read = group_statistics_from_rows(synth_rows, captions=_captions(synth_rows))
    assert read["groups"] == stats["groups"]  # read-back of reference captions reproduces the labels
    fig4 = plot_group_statistics(stats, tmp_path / "fig4.png")
    rng = np.random.default_rng(0)
    emo = np.array([-1, 0, 1] * 10)
    h_e = rng.normal(size=(30, 16)) + 4 * np.eye(16)[emo + 1]  # three separated clusters
    tsne = plot_tsne(h_e, label_names(emo), tmp_path / "tsne_he.png", title="h_e")
    cog = rng.integers(0, 2, size=(30, 4))
    plot_tsne(rng.normal(size=(30, 8)), label_names(cog, "cognition"), tmp_path / "tsne_hc.png", max_classes=4)
    for path in (fig4, tsne, tmp_path / "tsne_hc.png"):
        assert open(path, "rb").read(8) == PNG
    knn = knn_accuracy(h_e, emo, k=3)
    assert knn["accuracy"] > 0.9 and knn["majority_accuracy"] == pytest.approx(1 / 3)
    knn_c = knn_accuracy(rng.normal(size=(30, 8)), cog, k=3)
    assert 0 <= knn_c["accuracy"] <= 1 and len(knn_c["per_label_accuracy"]) == 4

    caption_results = {"Most frequent caption": {"emotion": {"BLEU-1": 0.1, "BLEU-2": 0.05, "BLEU-4": 0.01,
                                                             "METEOR": 0.1, "ROUGE-L": 0.2, "CIDEr": 0.1, "F_BERT": 0.3}},
                       "ECMC": {"emotion": {"BLEU-1": 0.3476, "BLEU-2": 0.194, "BLEU-4": 0.0828, "METEOR": 0.2947,
                                            "ROUGE-L": 0.2491, "CIDEr": 0.5, "F_BERT": 0.2713}}}
    table1 = caption_table_markdown(caption_results, "emotion", info={"ECMC": {"Modality": "AVT"}})
    assert "| Method | Modality | BLEU-1 | BLEU-2 | BLEU-4 | METEOR | ROUGE-L | CIDEr | F_BERT |" in table1
    assert "| ECMC | AVT | **34.76** | **19.40** | **8.28** | **29.47** | **24.91** | **50.00** | 27.13 |" in table1
    table5 = ablation_table_markdown([{"modalities": ("audio",), "F_BERT": 0.181},
                                      {"modalities": ("audio", "video", "text"), "emocl": False, "F_BERT": 0.2389}])
    assert "| ✓ |  |  | ✓ | ✓ | 18.10 |" in table5 and "| ✓ | ✓ | ✓ |  | ✓ | 23.89 |" in table5
    rb = readback_scores(_captions(synth_rows), [r["emotion_label"] for r in synth_rows],
                         [r["cognition_labels"] for r in synth_rows])
    out = write_report(tmp_path / "report", sections=[
        ("Emotion captions (Table 1)", table1), ("Ablation (Table 5)", table5),
        ("Labels read back from captions", readback_table_markdown({"reference captions": rb})),
        ("k-NN on h_e", knn_table_markdown({"h_e / emotion": knn})), ("Fig. 4", group_statistics_markdown(stats))],
        figures=[("Fig. 4", fig4), ("t-SNE of h_e", tsne)], data={"readback": rb, "knn": knn, "fig4": stats})
    md = open(out["markdown"], encoding="utf-8").read()
    assert "![Fig. 4](figures/fig4.png)" in md and "chance (majority)" in md and (tmp_path / "report/figures/fig4.png").is_file()
    assert json.load(open(out["json"]))["knn"]["k"] == 3
