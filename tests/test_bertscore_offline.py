"""BERTScore offline (`evaluation_ecmc.bertscore_offline`): MiniLM, and rescaling with a real baseline
file or a refusal."""

import pytest

from evaluation_ecmc.caption_metrics import compute_caption_metrics


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
