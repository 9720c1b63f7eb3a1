"""Table 5 ablations on one command: every modality subset and the contrastive losses on / off,
each trained (both stages: `training_ecmc.run.run_training`, `train.py`'s code path) and evaluated on the
same data, then one table.

    python -m evaluation_ecmc.ablation --config configs/offline_demo.yaml [--variants audio,text,all]
        [--set stage2.epochs=1] [--output outputs/ablation] [--keep-checkpoints] [--seeds 0,1,2]

All variants start from one saved model (`<output>/base`: the offline default built once), so they
share the same encoders and LLM and differ only as the table says: a modality subset drops that
modality's Q-Formers and encoder (`model.overrides.modalities`); "w/o EmoCL" / "w/o CogCL" set that
loss's weight to 0 in stage 1 (without both, stage 1 is skipped). Each variant's feature cache is
reused on a rerun; a variant whose `evaluation/report.json` exists is not trained again (resumable).
Checkpoints (~6 GB per variant for the offline default) are deleted after evaluation unless
`--keep-checkpoints`. Writes `<output>/ablation.md` and `ablation.json`.

One run per variant says little about captions: stage 2 on a small data set ends in different places
for different seeds. `--seeds 0,1,2` trains every variant once per seed (the global, stage-1 and
stage-2 seeds all set to it; runs under `<output>/<variant>/seed<k>`) and the table shows the mean
± the sample standard deviation over the seeds; `ablation.json` keeps every run's scores.
"""

import argparse
import json
import logging
import shutil
import statistics
from pathlib import Path

from modeling_ecmc.vocabulary_ecmc import MODALITIES

logger = logging.getLogger("ecmc.ablation")

ALL = MODALITIES
# name -> (modalities, EmoCL, CogCL): the rows of the paper's Table 5
VARIANTS = {
    "audio": (("audio",), True, True),
    "video": (("video",), True, True),
    "text": (("text",), True, True),
    "audio+video": (("video", "audio"), True, True),
    "audio+text": (("audio", "text"), True, True),
    "video+text": (("video", "text"), True, True),
    "no-contrastive": (ALL, False, False),
    "no-emocl": (ALL, False, True),
    "no-cogcl": (ALL, True, False),
    "all": (ALL, True, True),
}


def variant_overrides(name: str, base: Path, output: Path, seed: int | None = None) -> list[str]:
    modalities, emocl, cogcl = VARIANTS[name]
    overrides = {"modalities": list(modalities), "emotion_loss_weight": float(emocl), "cognition_loss_weight": float(cogcl)}
    run_dir = output / name if seed is None else output / name / f"seed{seed}"
    seeds = [] if seed is None else [f"seed={seed}", f"stage1.seed={seed}", f"stage2.seed={seed}"]
    return [f"output_dir={run_dir}", f"model.checkpoint={base}", f"model.overrides={json.dumps(overrides)}",
            f"data.cache_dir={output / 'feature-cache' / '+'.join(modalities)}", *seeds]


def run_variant(name: str, config, overrides, base: Path, output: Path, keep_checkpoints: bool,
                seed: int | None = None) -> dict:
    """Train and evaluate one variant with one seed (None: the config's seeds) -> its scores."""
    from training_ecmc.config import load_config
    from training_ecmc.run import run_training

    from .run_evaluation import evaluate
    from .selection import readback_scorer

    cfg = load_config(config, list(overrides) + variant_overrides(name, base, output, seed)
                      + ["evaluate.text_baseline=null", "evaluate.detection=false"])
    report = Path(cfg["output_dir"]) / "evaluation" / "report.json"
    if not report.exists():
        final, _ = run_training(cfg, readback=readback_scorer)  # the scorer only if stage2.select_by asks
        evaluate(final, cfg, split=cfg["evaluate"]["split"], profile_subjects=0)
        if not keep_checkpoints:
            for folder in ("stage1", "stage2", "checkpoint"):
                shutil.rmtree(Path(cfg["output_dir"]) / folder, ignore_errors=True)
    data = json.loads(report.read_text(encoding="utf-8"))
    modalities, emocl, cogcl = VARIANTS[name]
    ours = data["metrics"]["ECMC (ours)"]
    return {"variant": name, "modalities": list(modalities), "emocl": emocl, "cogcl": cogcl, "seed": seed,
            "F_BERT": ours["caption"]["F_BERT"], "F_BERT_emotion": ours["emotion"]["F_BERT"],
            "F_BERT_cognition": ours["cognition"]["F_BERT"], "CIDEr": ours["caption"]["CIDEr"],
            "emotion_readback": data["readback"]["emotion"]["accuracy"],
            "cognition_exact": data["readback"]["cognition"]["exact_match"],
            "knn_h_e": data["knn"]["h_e / emotion"]["accuracy"],
            "knn_h_c": data["knn"]["h_c / cognition (exact match)"]["accuracy"]}


# Table 5's own column (F.BERT of the whole caption) first, then what shows whether captions follow the input
TABLE_COLUMNS = {"F_BERT": "F.BERT", "F_BERT_emotion": "F.BERT emotion", "F_BERT_cognition": "F.BERT cognition",
                 "CIDEr": "CIDEr-D", "emotion_readback": "emotion read-back", "cognition_exact": "cognition exact",
                 "knn_h_e": "k-NN h_e", "knn_h_c": "k-NN h_c"}


def mean_over_seeds(runs: list[dict]) -> dict:
    """One variant's runs (one per seed) -> one table row: each score's mean, `<score>_sd` its sample
    standard deviation, `runs` every run's scores."""
    row = {key: runs[0][key] for key in ("variant", "modalities", "emocl", "cogcl")}
    for score in TABLE_COLUMNS:
        values = [run[score] for run in runs]
        row[score], row[f"{score}_sd"] = statistics.fmean(values), statistics.stdev(values)
    return {**row, "seeds": [run["seed"] for run in runs], "runs": runs}


def run_ablation(config, overrides=(), variants=tuple(VARIANTS), output=Path("outputs/ablation"),
                 keep_checkpoints=False, seeds=None) -> list[dict]:
    """Train and score each variant (once, or once per seed in `seeds`, at least two) -> the table's rows."""
    from modeling_ecmc.atomic_io import write_json, write_text
    from training_ecmc.config import load_config
    from training_ecmc.run import build_model, prepare_data
    from training_ecmc.trainer import save_complete

    from .report import ablation_table_markdown

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variants {unknown}; choose from {list(VARIANTS)}")
    if seeds is not None and len(set(seeds)) < 2:
        raise ValueError(f"--seeds needs at least two different seeds for a spread, got {list(seeds)}")
    output = Path(output)
    base = output / "base"
    if not (base / "config.json").exists():  # one model for every variant: same encoders, same LLM
        cfg = load_config(config, overrides)
        prepare_data(cfg)
        model, processor = build_model(cfg)
        save_complete(model, processor, base)
    rows = []
    for name in variants:
        logger.info("ablation variant %s (%d of %d)", name, len(rows) + 1, len(variants))
        if seeds is None:
            rows.append(run_variant(name, config, overrides, base, output, keep_checkpoints))
        else:
            rows.append(mean_over_seeds([run_variant(name, config, overrides, base, output, keep_checkpoints, seed)
                                         for seed in seeds]))
        write_json(output / "ablation.json", rows, indent=1)  # partial results survive an interruption
    table = ablation_table_markdown(rows, metrics=tuple(TABLE_COLUMNS), headers=TABLE_COLUMNS, digits=1)
    over = "" if seeds is None else f" Mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}."
    write_text(output / "ablation.md", "# Ablations (Table 5 layout)\n\nScores (%) on the evaluation split; the "
               f"paper's Table 5 reports F.BERT of the whole caption.{over}\n\n" + table)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="the training config every variant starts from")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value (all variants)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--output", type=Path, default=Path("outputs/ablation"))
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep each variant's checkpoints (~6 GB each)")
    parser.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2: every variant once per seed, mean ± spread "
                        "(default: one run with the config's seeds)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {args.seeds!r}")
    run_ablation(args.config, args.set, [v for v in args.variants.split(",") if v], args.output, args.keep_checkpoints,
                 seeds)
    print(f"[ecmc] ablation table written to {(args.output / 'ablation.md').resolve()}")


if __name__ == "__main__":
    main()
