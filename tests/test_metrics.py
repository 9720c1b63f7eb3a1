"""Caption metrics: our numbers equal the COCO caption code's own (pycocoevalcap scorers called
directly on independently built tokenised dicts), English and Chinese, with empty and one-word
captions; BERTScore offline (MiniLM) and its rescaling; the `evaluate` module offline."""

import math
import re
import unicodedata

import pytest

from evaluation_ecmc.caption_metrics import METRICS, PARTS, compute_caption_metrics
from evaluation_ecmc.caption_tokenization import cjk_tokenize, java_available, ptb_tokenize
from modeling_ecmc.vocabulary_ecmc import format_caption, split_caption

pytestmark = pytest.mark.skipif(not java_available(), reason="the COCO caption code needs Java")

COCO = [m for m in METRICS if m != "F_BERT"]
EN_PRED = [
    format_caption("The speaker looks downcast and speaks slowly, suggesting negative emotion.",
                   "No obvious cognitive impairment: the answer is coherent and on topic."),
    format_caption("Positive emotion: a smile, a bright voice and happy talk of the garden.",
                   "Memory deficit: the speaker forgot an appointment."),
    format_caption("Neutral emotion.", ""),          # empty cognition part
    "",                                              # empty caption
    format_caption("Sad", "Forgetful"),              # one-word parts
    "The speaker seems calm; no cognitive problems.",  # free text without the headers
]
EN_REF = [
    format_caption("The speaker looks sad and speaks slowly in a low voice, suggesting negative emotion.",
                   "No signs of orientation, attention, memory or language problems."),
    format_caption("Positive emotion: a broad smile, a lively voice and warm words about the garden.",
                   "Memory deficit: the speaker cannot recall the previous day and forgot an appointment."),
    format_caption("Neutral emotion: a calm face and an even voice.", "Cognition appears intact in this answer."),
    format_caption("Negative emotion: a frown.", "Attention deficit: the speaker drifts off."),
    format_caption("Sad", "Memory deficit."),
    format_caption("The speaker keeps a neutral face.", "No obvious cognitive impairment."),
]
ZH_PRED = [
    format_caption("说话人面带愁容，语速缓慢，提示负性情绪。", "记忆障碍：说话人忘记了预约。"),
    format_caption("积极情绪：微笑，声音轻快，谈到了Garden 2号。", ""),
    format_caption("平静", "无"),
    "",
]
ZH_REF = [
    format_caption("说话人神情低落，语速缓慢，声音低沉，提示负性情绪。", "记忆障碍：说话人想不起昨天做了什么，忘记了预约。"),
    format_caption("积极情绪：笑容灿烂，声音明快，谈到garden 2号很开心。", "未见明显认知障碍。"),
    format_caption("中性情绪：表情平静。", "无"),
    format_caption("负性情绪。", "注意障碍：说话人走神。"),
]


def _parts_independently(caption: str) -> dict:
    parts = split_caption(caption)
    return {"emotion": parts["emotion"], "cognition": parts["cognition"],
            "caption": " ".join(p for p in (parts["emotion"], parts["cognition"]) if p)}


def _zh_chars(text: str) -> str:
    """An independent character tokeniser for the check (a plain loop instead of our regex)."""
    out, word = [], ""
    for ch in unicodedata.normalize("NFKC", text).lower():
        if "\u4e00" <= ch <= "\u9fff":
            out += [word] if word else []
            out.append(ch)
            word = ""
        elif ch.isalnum():
            word += ch
        else:
            out += [word] if word else []
            word = ""
    out += [word] if word else []
    return " ".join(out)


@pytest.fixture(scope="module")
def reference_meteor():
    """pycocoevalcap's own Meteor. The process is shared with ours (each start loads the paraphrase
    table, ~10 s): what is checked independently is everything around it (parts, tokens, dicts)."""
    from evaluation_ecmc.caption_metrics import get_meteor

    return get_meteor()


def _reference_scores(tokenised_preds, tokenised_refs, meteor) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {str(i): [r] for i, r in enumerate(tokenised_refs)}
    res = {str(i): [p] for i, p in enumerate(tokenised_preds)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {"BLEU-1": bleu[0], "BLEU-2": bleu[1], "BLEU-4": bleu[3], "METEOR": meteor.compute_score(gts, res)[0],
            "ROUGE-L": Rouge().compute_score(gts, res)[0], "CIDEr": Cider().compute_score(gts, res)[0]}


def test_ptb_tokenisation_is_the_coco_tokenizers():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = [_parts_independently(c)["caption"] for c in EN_PRED + EN_REF] + ["Don't  worry -- it's (fine)!", "café “quoted”"]
    # (the COCO code keeps "-lrb-"/"-rrb-": its punctuation list has only the upper-case forms)
    ours = ptb_tokenize(texts)
    theirs = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts) if t})
    assert ours == [theirs[i][0] if t else "" for i, t in enumerate(texts)]
    assert ours[-2] == "do n't worry it 's -lrb- fine -rrb-" and ours[-1] == "café quoted"
    assert ptb_tokenize(["", "  ", "Hello"]) == ["", "", "hello"]


def test_chinese_is_split_into_characters_keeping_latin_words():
    assert cjk_tokenize("说话人情绪低落，ＡＢＣ Garden 2号。") == "说 话 人 情 绪 低 落 abc garden 2 号"
    assert cjk_tokenize("") == "" and cjk_tokenize("。！") == ""


@pytest.mark.parametrize("language", ["en", "zh"])
def test_coco_metrics_equal_pycocoevalcap(language, reference_meteor):
    preds, refs = (EN_PRED, EN_REF) if language == "en" else (ZH_PRED, ZH_REF)
    ours = compute_caption_metrics(preds, refs, language=language, metrics=COCO)
    assert ours["num_samples"] == len(preds) and "F_BERT" not in ours["emotion"]
    for part in PARTS:
        p = [_parts_independently(c)[part] for c in preds]
        r = [_parts_independently(c)[part] for c in refs]
        if language == "en":
            from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

            tok = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(p + r) if t})
            flat = [tok[i][0] if t else "" for i, t in enumerate(p + r)]
        else:
            flat = [_zh_chars(t) for t in p + r]
        expected = _reference_scores(flat[: len(p)], flat[len(p):], reference_meteor)
        for metric in COCO:
            assert ours[part][metric] == pytest.approx(expected[metric], abs=1e-12), (language, part, metric)
    assert 0 < ours["emotion"]["BLEU-1"] < 1 and ours["emotion"]["CIDEr"] > 0


def test_identical_single_and_empty_captions():
    caps = [format_caption("The speaker smiles.", "No obvious impairment."), format_caption("Calm.", "Intact.")]
    same = compute_caption_metrics(caps, caps, metrics=COCO)
    for metric in ("BLEU-1", "BLEU-2", "BLEU-4", "METEOR", "ROUGE-L"):
        assert same["caption"][metric] == pytest.approx(1.0, abs=1e-6), metric
    one = compute_caption_metrics(["Emotion:\nsad"], ["Emotion:\nsad"], metrics=COCO)
    assert one["emotion"]["CIDEr"] == 0.0  # CIDEr-D's IDF needs a corpus: one sample always scores 0
    empty = compute_caption_metrics(["", ""], ["", ""], metrics=COCO)
    assert all(math.isfinite(v) for part in PARTS for v in empty[part].values())


def test_multiple_references_and_bad_input():
    res = compute_caption_metrics(["Emotion:\nneutral emotion"], [["Emotion:\nsad", "Emotion:\nneutral emotion"]],
                                  metrics=("BLEU-1", "ROUGE-L"))
    assert res["emotion"]["ROUGE-L"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        compute_caption_metrics(["a", "b"], ["a"], metrics=("BLEU-1",))
    with pytest.raises(ValueError, match="unknown caption language"):
        compute_caption_metrics(["a"], ["a"], language="fr")
    with pytest.raises(ValueError, match="not a string"):
        compute_caption_metrics([None], ["a"], metrics=("BLEU-1",))


def test_bertscore_offline_minilm():
    from evaluation_ecmc.bertscore_offline import bertscore

    preds = ["The speaker looks sad and tired.", "The speaker looks sad and tired.", "", "Hello"]
    refs = [["The speaker looks sad and tired."], ["The person appears unhappy and exhausted."], ["Calm."], ["Hello"]]
    raw = bertscore(preds, refs)
    f = raw["per_sample_F1"]
    assert f[0] == pytest.approx(1.0, abs=1e-5) and f[3] == pytest.approx(1.0, abs=1e-5)
    assert f[2] == 0.0  # empty candidate: bert-score's rule, raw 0
    unrelated = bertscore(["The speaker looks sad and tired."], [["The train leaves at noon from platform four."]])
    assert f[1] > unrelated["F1"] + 0.1
    assert raw["rescaled"] is False and raw["baseline"] is None and raw["num_layers"] == 6


def test_bertscore_rescaling_uses_a_real_baseline_or_refuses():
    from bert_score import BERTScorer

    from evaluation_ecmc.bertscore_offline import bertscore, default_bertscore_model, find_baseline

    cands, refs = ["The speaker looks sad.", "A calm face."], [["The person appears unhappy."], ["A neutral face."]]
    ours = bertscore(cands, refs, rescale_with_baseline=True)
    assert ours["rescaled"] is True and ours["baseline"].endswith("all-MiniLM-L6-v2.tsv")
    path = find_baseline(default_bertscore_model(), "en")
    scorer = BERTScorer(model_type=default_bertscore_model(), num_layers=6, lang="en", rescale_with_baseline=True,
                        baseline_path=str(path))
    _, _, f = scorer.score(cands, [r[0] for r in refs])
    assert ours["per_sample_F1"] == pytest.approx(f.tolist(), abs=1e-5)
    assert ours["F1"] < bertscore(cands, refs)["F1"]
    with pytest.raises(ValueError, match="no BERTScore rescaling baseline"):
        bertscore(cands, refs, language="zh", rescale_with_baseline=True)  # never silently unrescaled
    res = compute_caption_metrics(cands, refs, metrics=("F_BERT",), rescale_with_baseline=True)
    assert res["settings"]["bertscore_rescaled"] is True


def test_evaluate_module_loads_offline_and_matches(monkeypatch):
    import evaluate

    from evaluation_ecmc.caption_metrics import flatten_metrics

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = __import__("pathlib").Path(__file__).parents[1] / "evaluation_ecmc" / "ecmc_caption_metric"
    source = (folder / "ecmc_caption_metric.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+\S+\s*,", source, re.M)  # one import per line (DESIGN §3)
    metric = evaluate.load(str(folder))
    got = metric.compute(predictions=EN_PRED[:3], references=EN_REF[:3])
    direct = flatten_metrics(compute_caption_metrics(EN_PRED[:3], EN_REF[:3]))
    assert set(direct) <= set(got) and got["num_samples"] == 3 and got["bertscore_rescaled"] is False
    for key, value in direct.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    zh = metric.compute(predictions=ZH_PRED[:2], references=[[r] for r in ZH_REF[:2]], language="zh",
                        metrics=("BLEU-1", "CIDEr"))
    assert zh["caption/BLEU-1"] == pytest.approx(
        compute_caption_metrics(ZH_PRED[:2], ZH_REF[:2], language="zh", metrics=("BLEU-1",))["caption"]["BLEU-1"])
