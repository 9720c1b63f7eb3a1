"""Reports (`evaluation_ecmc.report`): the paper's table layouts and one report with figures (built
from `statistics`' figures and k-NN)."""

import json

import numpy as np
import pytest

from evaluation_ecmc.label_readback import readback_scores
from synth_rows import reference_captions as _captions
from synth_rows import synth_rows  # noqa: F401  (a fixture)

PNG = b"\x89PNG\r\n\x1a\n"


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
