"""Build a BERTScore rescaling baseline file (bert-score's format: CSV `LAYER,P,R,F`, one row per
hidden layer, 0 = embeddings) for a model that bert-score has no baseline for.

bert-score's authors define the baseline b as the mean score of random pairs of unrelated sentences
(they sampled 1M pairs from Common Crawl per language). Nothing like Common Crawl is available
offline here, so the shipped MiniLM English file uses the sentences of ECMC-Synth captions (the
emotion and the cognition part of every utterance of the `demo` preset, seed 0, taken from
`processing_ecmc.synth.plan_subject`, which needs no media): the distinct sentences are paired at
random (never a sentence with itself). The resulting b is a caption-domain floor ("as similar as two
random ECMC captions"), higher than a general-text baseline would be; rescaled scores are comparable
only among results that used the same baseline file, which the metric settings name.

    python -m evaluation_ecmc.make_bertscore_baseline                      # rebuild the shipped file
    python -m evaluation_ecmc.make_bertscore_baseline --sentences my.txt --model roberta-large \
        --language en --output baselines/en/roberta-large.tsv             # any model, your corpus
"""

import argparse
import json
import random
from pathlib import Path

from modeling_ecmc.atomic_io import write_text

from .bertscore_offline import BASELINE_DIR, default_bertscore_model, model_name


def synth_caption_sentences(num_subjects: int = 90, utterances_per_subject: int = 6, seed: int = 0) -> list[str]:
    """The emotion and cognition parts of ECMC-Synth captions (no media is rendered)."""
    from processing_ecmc.synth import assign_subjects, plan_subject

    out = []
    for i, subject in enumerate(assign_subjects(num_subjects, seed)):
        plan = plan_subject(seed, i, subject["depression"], subject["anxiety"], utterances_per_subject)
        for utt in plan["utterances"]:
            out += [utt["emotion_caption"], utt["cognition_caption"]]
    return out


def random_pairs(sentences: list[str], num_pairs: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`num_pairs` random (candidate, reference) pairs of two different distinct sentences."""
    pool = sorted(set(s.strip() for s in sentences if s and s.strip()))
    if len(pool) < 2:
        raise ValueError("need at least two distinct sentences to build a baseline")
    rng = random.Random(seed)
    cands, refs = [], []
    for _ in range(num_pairs):
        a, b = rng.sample(range(len(pool)), 2)
        cands.append(pool[a])
        refs.append(pool[b])
    return cands, refs


def compute_baseline(sentences: list[str], model_type: str | None = None, num_pairs: int = 4000, seed: int = 0,
                     batch_size: int = 64) -> list[tuple[int, float, float, float]]:
    """[(layer, mean P, mean R, mean F)] over random pairs, for every hidden layer of the model."""
    from .bertscore_offline import get_scorer

    model_type = str(model_type or default_bertscore_model())
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(model_type).num_hidden_layers
    scorer = get_scorer(model_type, layers, batch_size=batch_size, all_layers=True)
    cands, refs = random_pairs(sentences, num_pairs, seed)
    P, R, F = scorer.score(cands, refs, verbose=False, batch_size=batch_size)  # (layers + 1, pairs)
    return [(layer, float(P[layer].mean()), float(R[layer].mean()), float(F[layer].mean()))
            for layer in range(P.shape[0])]


def write_baseline(path, rows, provenance: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "LAYER,P,R,F\n" + "".join(f"{layer},{p:.8f},{r:.8f},{fr:.8f}\n" for layer, p, r, fr in rows))
    write_text(path.with_suffix(".json"), json.dumps(provenance, indent=2) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build a BERTScore rescaling baseline from random sentence pairs.")
    parser.add_argument("--sentences", help="UTF-8 text file, one sentence per line (default: ECMC-Synth captions)")
    parser.add_argument("--model", default=None, help="bert-score model (default: the offline MiniLM)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--num-pairs", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    model = args.model or default_bertscore_model()
    if args.sentences:
        sentences = Path(args.sentences).read_text(encoding="utf-8").splitlines()
        corpus = f"file {Path(args.sentences).name}"
    else:
        sentences = synth_caption_sentences()
        corpus = "ECMC-Synth caption parts (preset demo: 90 subjects x 6 utterances, seed 0, synth VERSION 1)"
    rows = compute_baseline(sentences, model, args.num_pairs, args.seed)
    name = model_name(model)
    output = args.output or BASELINE_DIR / args.language / f"{name}.tsv"
    write_baseline(output, rows, {
        "model": name, "language": args.language, "corpus": corpus,
        "distinct_sentences": len(set(s.strip() for s in sentences if s.strip())),
        "num_pairs": args.num_pairs, "seed": args.seed,
        "definition": "mean BERTScore P/R/F (idf off) of random pairs of two different distinct sentences",
    })
    print(f"baseline for {name} ({args.language}) written to {output}")


if __name__ == "__main__":
    main()
