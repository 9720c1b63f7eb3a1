"""Markdown tables in the paper's layouts and one report that gathers tables and figures.

- `caption_table_markdown`: Tables 1-2 (rows: methods; columns BLEU-1, BLEU-2, BLEU-4, METEOR,
  ROUGE-L, CIDEr, F_BERT; optional Modality / Domain columns), values x100 like the paper, best bold.
- `ablation_table_markdown`: Table 5 (Audio, Video, Text, EmoCL, CogCL ticks, then the metrics).
- `readback_table_markdown`, `knn_table_markdown`, `group_statistics_markdown`: the analyses that
  show learning (label read-back vs chance, k-NN on h_e / h_c, Fig. 4 numbers).
- `write_report(out_dir, ...)`: report.md + report.json with whatever sections are given; figures
  are copied next to the report and linked.
Detection (Tables 3-4) and human evaluation (Table 6) tables come from `detection.detection_markdown`
and `human_eval.table6_markdown`.
"""

import json
import math
from pathlib import Path

from modeling_ecmc.atomic_io import write_bytes, write_text
from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, MODALITIES

from .caption_metrics import METRICS

# Table 5's modality columns: audio first (the paper's order), then the others in the canonical order
ABLATION_COLUMNS = tuple((m, m.capitalize()) for m in sorted(MODALITIES, key=lambda m: m != "audio"))


def _num(v, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def caption_table_markdown(results: dict, part: str = "emotion", metrics=METRICS, scale: float = 100.0,
                           digits: int = 2, info: dict | None = None, bold_best: bool = True) -> str:
    """results: {method: `compute_caption_metrics` output (or its `part` dict)}; info: {method:
    {"Modality": "AVT", "Domain": "General"}} adds those columns. CIDEr here is CIDEr-D (the paper's
    Tables 1-2 print BLEU-4 in its place)."""
    rows = {m: (r[part] if part in r else r) for m, r in results.items()}
    info_cols = list(dict.fromkeys(k for v in (info or {}).values() for k in v))
    best = {}
    for metric in metrics:
        vals = [r.get(metric) for r in rows.values() if r.get(metric) is not None]
        best[metric] = max(vals) if vals and bold_best and len(rows) > 1 else None
    head = ["Method", *info_cols, *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, r in rows.items():
        cells = [method] + [str((info or {}).get(method, {}).get(c, "")) for c in info_cols]
        for metric in metrics:
            v = r.get(metric)
            text = _num(None if v is None else v * scale, digits)
            cells.append(f"**{text}**" if best[metric] is not None and v == best[metric] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ablation_table_markdown(rows: list[dict], metrics=("F_BERT",), scale: float = 100.0, digits: int = 2,
                            headers: dict | None = None) -> str:
    """Table 5: Audio, Video, Text, EmoCL, CogCL ticks, then one column per metric (x `scale`).
    rows: [{"modalities": ("audio", "text"), "emocl": True, "cogcl": True, "F_BERT": 0.29}, ...], with
    `<metric>_sd` beside a metric that is a mean over runs (shown "mean ± sd");
    headers: {metric: column title} (default: the key, "_" shown as ".")."""
    titles = [(headers or {}).get(m, m.replace("_", ".")) for m in metrics]
    head = [name for _, name in ABLATION_COLUMNS] + ["EmoCL", "CogCL", *titles]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    tick = lambda on: "✓" if on else ""  # noqa: E731
    for row in rows:
        mods = set(row["modalities"])
        unknown = mods - {m for m, _ in ABLATION_COLUMNS}
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}")
        cells = [tick(m in mods) for m, _ in ABLATION_COLUMNS] + [tick(row.get("emocl", True)), tick(row.get("cogcl", True))]
        for m in metrics:
            cell = _num(None if row.get(m) is None else row[m] * scale, digits)
            spread = row.get(f"{m}_sd")
            cells.append(cell if spread is None else f"{cell} ± {_num(spread * scale, digits)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def examples_markdown(utterance_ids, captions, references) -> str:
    """Generated captions beside their references, one block per utterance (the report file only:
    captions are sensitive and never logged)."""
    quote = lambda text: "\n".join("> " + line if line else ">"  # noqa: E731
                                   for line in (text.strip() or "(empty)").splitlines())
    blocks = [f"**{uid}**, generated:\n\n{quote(caption)}\n\nreference:\n\n{quote(reference)}\n"
              for uid, caption, reference in zip(utterance_ids, captions, references)]
    return "\n".join(blocks) if blocks else "(none)\n"


def readback_table_markdown(results: dict, digits: int = 1) -> str:
    """{method: `label_readback.readback_scores` output} -> accuracy / F1 (%) beside the chance levels."""
    head = ["Method", "Emotion acc", "Emotion macro-F1", "unreadable"] + [f"{n} F1" for n in COGNITION_LABELS] + [
        "Cognition exact match"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    pct = lambda v: _num(100 * v, digits)  # noqa: E731
    chance = None
    for method, r in results.items():
        chance = r["chance"]
        lines.append("| " + " | ".join([method, pct(r["emotion"]["accuracy"]), pct(r["emotion"]["macro_f1"]),
                                         str(r["emotion"]["unreadable"])]
                                        + [pct(r["cognition"][n]["f1"]) for n in COGNITION_LABELS]
                                        + [pct(r["cognition"]["exact_match"])]) + " |")
    if chance is not None:
        for kind in ("majority", "uniform"):
            emo = chance["emotion"]
            f1_key = "majority_f1" if kind == "majority" else "uniform_f1"
            lines.append("| " + " | ".join(
                [f"chance ({kind})", pct(emo[f"{kind}_accuracy"]), pct(emo[f"{kind}_macro_f1"]), ""]
                + [pct(chance["cognition"][n][f1_key]) for n in COGNITION_LABELS]
                + [pct(chance["cognition_exact_match"][kind])]) + " |")
    return "\n".join(lines) + "\n"


def knn_table_markdown(results: dict, digits: int = 1) -> str:
    """{name (e.g. "h_e / emotion"): `statistics.knn_accuracy` output} -> k-NN accuracy vs majority class."""
    lines = ["| Features / labels | k | fitted on | k-NN accuracy | majority class |", "|---|---|---|---|---|"]
    for name, r in results.items():
        fitted = f"{r['fitted_on']} training rows" if "fitted_on" in r else f"{r['folds']}-fold cross-validation"
        lines.append(f"| {name} | {r['k']} | {fitted} | {_num(100 * r['accuracy'], digits)} | "
                     f"{_num(100 * r['majority_accuracy'], digits)} |")
    return "\n".join(lines) + "\n"


def group_statistics_markdown(stats: dict, digits: int = 1) -> str:
    """Fig. 4 numbers: mean proportion (%) of utterances per subject, per group."""
    cats = stats["categories"]
    lines = ["| Group | subjects | " + " | ".join(cats) + " |", "|" + "---|" * (len(cats) + 2)]
    for g, info in stats["groups"].items():
        lines.append(f"| {g} | {info['n_subjects']} | " + " | ".join(_num(100 * info["mean"][c], digits) for c in cats) + " |")
    return "\n".join(lines) + "\n"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


def write_report(out_dir, title: str = "ECMC evaluation report", sections=(), figures=(), data: dict | None = None,
                 notes=()) -> dict:
    """Write `report.md` (title, notes, each (heading, markdown) section, each (caption, png path)
    figure, copied into `out_dir/figures/`) and `report.json` (`data`: the raw numbers)."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""] + [f"> {n}" for n in notes] + ([""] if notes else [])
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    if figures:
        parts += ["## Figures", ""]
        for caption, path in figures:
            src = Path(path)
            if not src.is_file():
                raise FileNotFoundError(f"figure {src} does not exist")
            dst = out / "figures" / src.name
            if src.resolve() != dst.resolve():
                write_bytes(dst, src.read_bytes())
            parts += [f"![{caption}](figures/{src.name})", "", f"*{caption}*", ""]
    md, js = out / "report.md", out / "report.json"
    write_text(js, json.dumps(_jsonable(data or {}), indent=2, ensure_ascii=False) + "\n")
    write_text(md, "\n".join(parts))
    return {"markdown": str(md), "json": str(js)}
