"""Caption metrics (`evaluation_ecmc.caption_metrics`): our numbers equal the COCO caption code's own
(pycocoevalcap scorers called directly on independently built tokenised dicts), English and Chinese,
with empty and one-word captions; each caption in its own language; the `evaluate` module offline."""

import math
import re

import pytest

from caption_samples import EN_PRED, EN_REF, ZH_PRED, ZH_REF, parts_independently, zh_chars
from evaluation_ecmc.caption_metrics import METRICS, PARTS, compute_caption_metrics
from evaluation_ecmc.caption_tokenization import java_available
from modeling_ecmc.vocabulary_ecmc import format_caption

pytestmark = pytest.mark.skipif(not java_available(), reason="the COCO caption code needs Java")

COCO = [m for m in METRICS if m != "F_BERT"]


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


@pytest.mark.parametrize("language", ["en", "zh"])
def test_coco_metrics_equal_pycocoevalcap(language, reference_meteor):
    preds, refs = (EN_PRED, EN_REF) if language == "en" else (ZH_PRED, ZH_REF)
    ours = compute_caption_metrics(preds, refs, language=language, metrics=COCO)
    assert ours["num_samples"] == len(preds) and "F_BERT" not in ours["emotion"]
    for part in PARTS:
        p = [parts_independently(c)[part] for c in preds]
        r = [parts_independently(c)[part] for c in refs]
        if language == "en":
            from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

            tok = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(p + r) if t})
            flat = [tok[i][0] if t else "" for i, t in enumerate(p + r)]
        else:
            flat = [zh_chars(t) for t in p + r]
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


def test_each_caption_is_scored_in_its_own_language():
    """Mixed English / Chinese rows: each is tokenised (and BERTScore-rescaled) in its own language;
    per-sample scores equal those of each language alone, and one language is the single-language call."""
    preds, refs = EN_PRED[:2] + ZH_PRED[:2], EN_REF[:2] + ZH_REF[:2]
    languages = ["en", "en", "zh", "zh"]
    metrics = ("BLEU-1", "ROUGE-L", "F_BERT")
    mixed = compute_caption_metrics(preds, refs, language=languages, metrics=metrics, return_per_sample=True)
    en = compute_caption_metrics(preds[:2], refs[:2], language="en", metrics=metrics, return_per_sample=True)
    zh = compute_caption_metrics(preds[2:], refs[2:], language="zh", metrics=metrics, return_per_sample=True)
    for part in PARTS:
        for metric in ("ROUGE-L", "F_BERT"):  # per-sample scores (BLEU's corpus brevity penalty mixes rows)
            assert mixed["per_sample"][part][metric] == pytest.approx(
                en["per_sample"][part][metric] + zh["per_sample"][part][metric], abs=1e-9), (part, metric)
    assert mixed["caption"]["F_BERT"] == pytest.approx(sum(mixed["per_sample"]["caption"]["F_BERT"]) / 4)
    assert mixed["settings"]["language"] == ["en", "zh"]
    assert compute_caption_metrics(preds[:2], refs[:2], language=["en", "en"], metrics=metrics) == \
        compute_caption_metrics(preds[:2], refs[:2], language="en", metrics=metrics)


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
