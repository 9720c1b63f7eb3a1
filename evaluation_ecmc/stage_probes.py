"""Where is the information lost? Linear probes at every stage of the path from inputs to captions.

Stages of one utterance, all from the same trained checkpoint and the same split:
  features (per modality: the cached front-end / text-encoder frames, mean and spread over time)
  -> Q-Former outputs (per stream and modality: the query outputs before the Eq. 8 head, mean over queries)
  -> h_e / h_c (Eq. 9)
  -> soft tokens (per stream: what the decoder receives, the projected query outputs, flattened)
  -> captions (labels read back from the text: `label_readback`, `channel_readback`).
At each representation a logistic regression (standardised inputs, L2, C = `C`) is fitted on the
training split and scored on the evaluated split, for the emotion label, for the valence each
channel showed (ECMC-Synth's cues: face, voice, words; they differ from the label in the "off"
utterances) and for each cognition label (exact match of the four binary probes). A drop from one
stage to the next locates the loss; the probe is linear, so it is a lower bound on what a stage holds.
With the cues there is one more target, the words' topic (which of ECMC-Synth's 18 emotion clauses
was spoken, as the reference caption names it): the captions must name it, so the soft tokens must
carry it.

    python -m evaluation_ecmc.stage_probes --checkpoint outputs/demo/stage1/best --config configs/offline_demo.yaml

prints the table for any checkpoint (a stage-1 one too: probes need no decoding), in seconds.
"""

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from modeling_ecmc.vocabulary_ecmc import COGNITION_DOMAINS, COGNITION_LABELS, MODALITIES, STREAMS, feature_input_names

CHANNEL_TARGETS = {"face": "face", "voice": "voice", "words": "text"}  # probe target -> cues.jsonl key
EMOTION_TARGETS = ("emotion", *CHANNEL_TARGETS, "topic")


def _pooled_features(batch) -> dict:
    out = {}
    for m in MODALITIES:
        name, mask_name = feature_input_names(m)
        if name not in batch:
            continue
        x, mask = batch[name].float(), batch[mask_name].float()[..., None]
        n = mask.sum(dim=1).clamp(min=1)
        mean = (x * mask).sum(dim=1) / n
        std = (((x - mean[:, None]) ** 2 * mask).sum(dim=1) / n).sqrt()
        out[f"features: {m}"] = torch.cat([mean, std], dim=-1)
    out["features: all"] = torch.cat(list(out.values()), dim=-1)
    return out


@torch.no_grad()
def collect_stages(model, dataset, batch_size: int = 32) -> dict:
    """{stage name: (n, d) array} for every item of a CachedFeatureDataset, in order. Keys:
    "features: <modality>", "features: all" (the three side by side), "Q-Former <stream>: <modality>", "h_e", "h_c", "soft tokens: <stream>"."""
    from .run_evaluation import bridge_batches

    captured, hooks = {}, []
    for stream in STREAMS:
        for m, head in model.model.bridge[stream].heads.items():
            def hook(module, args, output, key=f"Q-Former {stream}: {m}"):
                captured[key] = args[0].float().mean(dim=1)
            hooks.append(head.register_forward_hook(hook))
    parts: dict = {}
    try:
        for batch, bridge in bridge_batches(model, dataset, batch_size):
            stages = {**_pooled_features(batch), **captured, "h_e": bridge.h_e.float(), "h_c": bridge.h_c.float()}
            for stream in STREAMS:
                tokens = model.language_projections[stream](getattr(bridge, f"{stream}_query_output"))
                stages[f"soft tokens: {stream}"] = tokens.float().flatten(1)
            for key, value in stages.items():
                parts.setdefault(key, []).append(value.cpu())
            captured.clear()
    finally:
        for h in hooks:
            h.remove()
    order = lambda k: (not k.startswith("features"), not k.startswith("Q-Former"), k.startswith("soft"))  # noqa: E731
    return {k: torch.cat(parts[k]).numpy() for k in sorted(parts, key=order)}


def probe_targets(rows, cues_by_id: dict | None = None) -> dict:
    """{target: labels} of data set rows: "emotion", each cognition label, and (with ECMC-Synth's
    cues, by utterance id) the valence each channel showed."""
    targets = {"emotion": np.asarray(rows["emotion_label"], dtype=int)}
    cognition = np.asarray(rows["cognition_labels"], dtype=int).reshape(len(targets["emotion"]), -1)
    for j, name in enumerate(COGNITION_LABELS):
        targets[name] = cognition[:, j]
    if cues_by_id:
        from .channel_readback import TOPICS, read_channels

        for target, key in CHANNEL_TARGETS.items():
            targets[target] = np.asarray([cues_by_id[u][key] for u in rows["utterance_id"]], dtype=int)
        topics = [read_channels(caption).get("topic", {None}) for caption in rows["emotion_caption"]]
        targets["topic"] = np.asarray([TOPICS.index(next(iter(t))) if len(t) == 1 and None not in t else -1
                                       for t in topics], dtype=int)
    return targets


def _fit_predict(train_x, train_y, x, C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:  # a label the training split never varies: its only value
        return np.full(len(x), train_y[0])
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(train_x), train_y)
    return clf.predict(scaler.transform(x))


def _f1(pred, gold) -> float:
    tp, denom = float(np.sum((pred == 1) & (gold == 1))), float(np.sum(pred == 1) + np.sum(gold == 1))
    return 2 * tp / denom if denom else 0.0


def _scores(pred: dict, gold: dict) -> dict:
    out = {t: float(np.mean(pred[t] == gold[t])) for t in EMOTION_TARGETS if t in gold and t in pred}
    if all(name in pred for name in COGNITION_LABELS):
        out["cognition exact"] = float(np.mean(np.all([pred[n] == gold[n] for n in COGNITION_LABELS], axis=0)))
        out.update({f"F1 {d}": _f1(pred[n], gold[n]) for d, n in zip(COGNITION_DOMAINS, COGNITION_LABELS)})
    return out


def probe_stages(train_stages: dict, stages: dict, train_targets: dict, targets: dict, C: float = 0.1) -> dict:
    """{stage: {score name: value}}: a probe per (stage, target) fitted on the training split.
    A stream's stages (its Q-Former outputs, h_e / h_c, its soft tokens) are probed for that stream's
    targets only: emotion and channel valences for the emotion stream, cognition for the other."""
    results = {}
    for stage, x in stages.items():
        stream = ("emotion" if "emotion" in stage or stage == "h_e" else
                  "cognition" if "cognition" in stage or stage == "h_c" else None)
        wanted = [t for t in targets if stream is None or (t in COGNITION_LABELS) == (stream == "cognition")]
        pred = {t: _fit_predict(train_stages[stage], train_targets[t], x, C) for t in wanted}
        results[stage] = _scores(pred, targets)
    return results


def caption_scores(readback: dict, channels: dict | None, n: int) -> dict:
    """The captions' row of the probe table, from `readback_scores` and `channel_readback` outputs:
    a channel the caption does not mention counts as wrong, as an unreadable label does."""
    out = {"emotion": readback["emotion"]["accuracy"]}
    if channels:
        for target, row in (("face", "face valence"), ("voice", "voice valence"), ("words", "words valence"),
                            ("topic", "words topic")):
            out[target] = channels[row]["correct"] / n
    out["cognition exact"] = readback["cognition"]["exact_match"]
    out.update({f"F1 {d}": readback["cognition"][n]["f1"] for d, n in zip(COGNITION_DOMAINS, COGNITION_LABELS)})
    return out


def majority_scores(train_targets: dict, targets: dict) -> dict:
    """The chance row: each target's most frequent training value, predicted for every utterance."""
    pred = {t: np.full(len(y), np.bincount(train_targets[t] - train_targets[t].min()).argmax()
                       + train_targets[t].min()) for t, y in targets.items()}
    return _scores(pred, targets)


def probe_table_markdown(results: dict) -> str:
    """{stage: scores} (with the captions and majority rows) -> one markdown table, percent."""
    columns = [c for c in (*EMOTION_TARGETS, "cognition exact", *(f"F1 {d}" for d in COGNITION_DOMAINS))
               if any(c in r for r in results.values())]
    lines = ["| Stage | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for stage, scores in results.items():
        cells = [f"{100 * scores[c]:.1f}" if c in scores else "" for c in columns]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from processing_ecmc.cached_dataset import cached_dataset
    from processing_ecmc.dataset_io import load_dataset_dict
    from training_ecmc.config import load_config

    from .channel_readback import synth_cues

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="an ECMC checkpoint folder (stage 1 or 2)")
    parser.add_argument("--config", type=Path, help="the training config (data set, feature cache)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--split", default="test", help="the split to score (probes are fitted on train)")
    parser.add_argument("--output", type=Path, help="also write the scores to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = load_config(args.config, args.set)
    dsd = load_dataset_dict(cfg["data"]["dataset"])
    model = ECMCForConditionalGeneration.from_pretrained(args.checkpoint)
    processor = ECMCProcessor.from_pretrained(args.checkpoint, trust_remote_code=False)
    train, rows = dsd["train"], dsd[args.split]
    cues = synth_cues(cfg["data"], rows, train)
    stages = {name: collect_stages(model, cached_dataset(model, processor, split, cfg["data"]["cache_dir"],
                                                         cfg["data"]["cache_batch_size"]))
              for name, split in (("train", train), (args.split, rows))}
    train_targets, targets = probe_targets(train, cues), probe_targets(rows, cues)
    results = {**probe_stages(stages["train"], stages[args.split], train_targets, targets),
               "majority class of training": majority_scores(train_targets, targets)}
    if args.output:
        from modeling_ecmc.atomic_io import write_text

        write_text(args.output, json.dumps(results, indent=1))
    print(probe_table_markdown(results))


if __name__ == "__main__":
    main()
