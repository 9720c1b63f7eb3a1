"""ECMC caption metrics as a Hugging Face `evaluate` module: BLEU-1/2/4, METEOR, ROUGE-L, CIDEr-D
(COCO caption code) and BERTScore F1, for the emotion part, the cognition part and the whole caption.

Load it from this folder, offline:

    import evaluate
    metric = evaluate.load("evaluation_ecmc/ecmc_caption_metric")   # or the installed package's path
    metric.compute(predictions=[...], references=[...], language="en")
    # {"emotion/BLEU-1": ..., ..., "caption/F_BERT": ..., "num_samples": n, "bertscore_rescaled": False}

`evaluate` copies this file into its module cache, so the computation is not duplicated here: the
module imports the installed `ecmc` package (`pip install "ecmc[eval]"`; METEOR and the PTB tokenizer
need Java). Each import stands on its own line because `evaluate` reads the import lines to check the
dependencies.

Options passed to `compute` (see `evaluation_ecmc.caption_metrics.compute_caption_metrics`):
language ("en" or "zh"), parts, metrics, bertscore_model, bertscore_num_layers,
rescale_with_baseline, bertscore_baseline_path, bertscore_batch_size, device.
"""

import datasets
import evaluate
from evaluation_ecmc.caption_metrics import compute_caption_metrics
from evaluation_ecmc.caption_metrics import flatten_metrics

_CITATION = """\
@inproceedings{ecmc2026,
  title={Voices, Faces, and Feelings: Multi-modal Emotion-Cognition Captioning for Mental Health Understanding},
  booktitle={AAAI},
  year={2026}
}
"""

_DESCRIPTION = """\
Caption metrics of the ECMC paper (Tables 1-2) per caption part: BLEU-1/2/4, METEOR, ROUGE-L and CIDEr-D
from the COCO caption evaluation code (pycocoevalcap) and BERTScore F1 (F_BERT). Captions have the
form "Emotion:\\n<text>\\n\\nCognition:\\n<text>". English is PTB-tokenised, Chinese split into characters.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated captions.
    references: one reference caption per prediction (or a list of references per prediction).
    language: "en" or "zh".
    rescale_with_baseline: rescale BERTScore with a real baseline file (raises if there is none).
Returns:
    "<part>/<metric>" for part in emotion, cognition, caption and metric in BLEU-1, BLEU-2, BLEU-4,
    METEOR, ROUGE-L, CIDEr, F_BERT (0-1 scale; CIDEr-D 0-10), "num_samples", "bertscore_rescaled".
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EcmcCaptionMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/salaniz/pycocoevalcap", "https://github.com/Tiiiger/bert_score"],
        )

    def _compute(self, predictions, references, language="en", **kwargs):
        result = compute_caption_metrics(predictions, references, language=language, **kwargs)
        out = flatten_metrics(result)
        out["num_samples"] = result["num_samples"]
        out["bertscore_rescaled"] = bool(result["settings"].get("bertscore_rescaled", False))
        return out
