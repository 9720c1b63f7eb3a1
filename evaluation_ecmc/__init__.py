"""ECMC evaluation and analysis: caption metrics (BLEU/METEOR/ROUGE-L/CIDEr-D via the COCO caption
code, BERTScore), label read-back from captions, profile-based depression/anxiety detection (Eq. 4-5),
statistics and figures (Fig. 4, t-SNE, k-NN), human-evaluation kit (Fleiss' kappa, Table 6) and
markdown reports in the paper's table layouts.

Modules are imported on use, so `import evaluation_ecmc` stays light (no torch, Java or matplotlib):

    from evaluation_ecmc.caption_metrics import compute_caption_metrics
    from evaluation_ecmc.label_readback import read_labels, readback_scores
    from evaluation_ecmc.detection import write_profiles, detect, run_detection, detection_table
    from evaluation_ecmc.statistics import group_statistics, plot_group_statistics, plot_tsne, knn_accuracy
    from evaluation_ecmc.human_eval import fleiss_kappa, export_rating_kit, aggregate_ratings
    from evaluation_ecmc.report import caption_table_markdown, ablation_table_markdown, write_report

Nothing here logs transcripts, captions or profiles.
"""

import importlib

_LAZY = {
    "compute_caption_metrics": "caption_metrics",
    "read_labels": "label_readback",
    "readback_scores": "label_readback",
    "write_profiles": "detection",
    "detect": "detection",
    "run_detection": "detection",
    "detection_table": "detection",
    "fleiss_kappa": "human_eval",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
