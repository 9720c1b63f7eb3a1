"""Human evaluation (paper Table 6): Fleiss' kappa, a blinded rating kit and the aggregation of the
returned ratings.

Kit: `export_rating_kit(items, {system: captions}, out_dir)` writes
- `rating_sheet.csv`: one row per (utterance, system) in random order, systems replaced by random
  codes, the media / transcript columns raters need, and empty columns for the five 1-5 Likert
  dimensions (EAcc, CAcc, Detail, Consis, Overall);
- `blinding_key.csv`: code -> system name. Keep it away from the raters;
- `instructions.md`: what each dimension means (paper §Subjective Metrics) and how to fill the sheet.
Each rater returns a filled copy; `aggregate_ratings(sheets, key)` checks every cell (blank or "-" =
not rated; otherwise an integer 1-5), averages per system and dimension and reports Fleiss' kappa
per dimension across raters. `table6_markdown` prints the result in the layout of Table 6.
The sheets hold transcripts and captions: they are written only where you ask, never logged.
"""

import csv
import random
import string
from pathlib import Path

import numpy as np

from modeling_ecmc.atomic_io import atomic_file, write_text

DIMENSIONS = ("EAcc", "CAcc", "Detail", "Consis", "Overall")
DIMENSION_TEXT = {
    "EAcc": "Emotional accuracy: does the emotion caption accurately reflect the video (face, voice, words)?",
    "CAcc": "Cognitive accuracy: do the cognitive-impairment statements correctly correspond to the dialogue?",
    "Detail": "Detail richness: how rich and fine-grained are the details in the caption?",
    "Consis": "Label consistency: does the caption agree with the given emotion / cognition labels?",
    "Overall": "Overall quality of the caption.",
}
CONTEXT_COLUMNS = ("utterance_id", "video_path", "start", "end", "transcript")


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa from an (items x categories) table of how many raters chose each category.

    Items may have different numbers of raters (each at least 2): P_i = (sum_j n_ij^2 - n_i) /
    (n_i (n_i - 1)) and p_j = sum_i n_ij / sum_i n_i; with equal n_i this is Fleiss (1971)."""
    n = np.asarray(counts, dtype=float)
    if n.ndim != 2 or n.shape[0] == 0:
        raise ValueError("counts must be a non-empty (items x categories) table")
    raters = n.sum(axis=1)
    if np.any(raters < 2):
        raise ValueError("every item needs ratings from at least 2 raters")
    p_i = (np.sum(n * n, axis=1) - raters) / (raters * (raters - 1))
    p_j = n.sum(axis=0) / raters.sum()
    p_bar, p_e = float(p_i.mean()), float(np.sum(p_j ** 2))
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else float("nan")  # everyone used one category: kappa undefined
    return (p_bar - p_e) / (1 - p_e)


def ratings_to_counts(ratings, categories=None) -> np.ndarray:
    """(items x raters) labels (None / NaN = not rated) -> (items x categories) counts for `fleiss_kappa`."""
    rows = [[r for r in item if r is not None and not (isinstance(r, float) and np.isnan(r))] for item in ratings]
    categories = list(categories) if categories is not None else sorted({r for item in rows for r in item})
    index = {c: j for j, c in enumerate(categories)}
    counts = np.zeros((len(rows), len(categories)), dtype=int)
    for i, item in enumerate(rows):
        for r in item:
            if r not in index:
                raise ValueError(f"rating {r!r} of item {i} is not one of the categories {categories}")
            counts[i, index[r]] += 1
    return counts


def _codes(n: int, rng: random.Random) -> list[str]:
    codes = set()
    while len(codes) < n:
        codes.add("S-" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(4)))
    out = sorted(codes)
    rng.shuffle(out)
    return out


def export_rating_kit(items: list[dict], systems: dict, out_dir, num_items: int | None = None, seed: int | None = None,
                      context_columns=CONTEXT_COLUMNS) -> dict:
    """Write the blinded rating kit (see module doc); returns the paths written.

    items: one dict per utterance (e.g. data set rows; `context_columns` present in them are copied).
    systems: {system name: [caption per item]} (the data set's own captions can be one "system").
    num_items: rate a random subset of the items. seed: None draws the codes and order from the OS."""
    items = list(items)
    if not systems:
        raise ValueError("give at least one system")
    for name, caps in systems.items():
        if len(caps) != len(items):
            raise ValueError(f"system {name!r} has {len(caps)} captions for {len(items)} items")
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    chosen = list(range(len(items)))
    if num_items is not None and num_items < len(items):
        chosen = sorted(rng.sample(chosen, num_items))
    names = list(systems)
    code_of = dict(zip(names, _codes(len(names), rng)))
    columns = [c for c in context_columns if any(c in items[i] for i in chosen)]
    rows = []
    for i in chosen:
        for name in names:
            rows.append({**{c: items[i].get(c, "") for c in columns}, "system": code_of[name],
                         "caption": systems[name][i], **{d: "" for d in DIMENSIONS}})
    rng.shuffle(rows)
    for k, row in enumerate(rows):
        row["row_id"] = f"R{k + 1:05d}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sheet, key, guide = out / "rating_sheet.csv", out / "blinding_key.csv", out / "instructions.md"
    fields = ["row_id"] + columns + ["system", "caption", *DIMENSIONS]
    with atomic_file(sheet) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with atomic_file(key) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "name"])
        writer.writerows(sorted((code, name) for name, code in code_of.items()))
    write_text(guide, 
        "# Rating instructions\n\nRate every row of `rating_sheet.csv` on a five-point Likert scale "
        "(1 = very poor, 5 = excellent) in each column; leave a cell empty or write `-` when it does not "
        "apply. Watch the clip (`video_path`, `start`-`end` seconds) and read the transcript first. "
        "Rows come from several systems in random order; the `system` codes are deliberately meaningless.\n\n"
        + "\n".join(f"- **{d}**: {t}" for d, t in DIMENSION_TEXT.items()) + "\n")
    return {"sheet": str(sheet), "key": str(key), "instructions": str(guide), "rows": len(rows)}


def _read_sheet(path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("row_id", "system", *DIMENSIONS) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        out = {}
        for line, row in enumerate(reader, start=2):
            ratings = {}
            for d in DIMENSIONS:
                cell = (row[d] or "").strip()
                if cell in ("", "-"):
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    value = None
                if value is None or value != int(value) or not 1 <= value <= 5:
                    raise ValueError(f"{path}, line {line}, column {d}: {cell!r} is not a rating 1-5")
                ratings[d] = int(value)
            out[row["row_id"]] = (row["system"], ratings)
    return out


def aggregate_ratings(sheet_paths, key_path) -> dict:
    """Filled sheets (one per rater) + key -> {"systems": {name: {dim: {"mean", "std", "n"}}},
    "kappa": {dim: Fleiss' kappa over rows rated by >= 2 raters, or None}, "raters": count}."""
    with open(key_path, newline="", encoding="utf-8") as f:
        key = {r["system"]: r["name"] for r in csv.DictReader(f)}
    sheets = [_read_sheet(p) for p in sheet_paths]
    if not sheets:
        raise ValueError("no rating sheets given")
    values = {}
    per_row = {d: {} for d in DIMENSIONS}
    for path, sheet in zip(sheet_paths, sheets):
        for row_id, (code, ratings) in sheet.items():
            if code not in key:
                raise ValueError(f"{path}: system code {code!r} is not in the key {key_path}")
            for d, v in ratings.items():
                values.setdefault(key[code], {}).setdefault(d, []).append(v)
                per_row[d].setdefault(row_id, []).append(v)
    systems = {}
    for name in sorted(set(key.values()), key=list(key.values()).index):
        dims = values.get(name, {})
        systems[name] = {d: ({"mean": float(np.mean(dims[d])), "std": float(np.std(dims[d], ddof=1)) if len(dims[d]) > 1
                              else 0.0, "n": len(dims[d])} if d in dims else None) for d in DIMENSIONS}
    kappa = {}
    for d in DIMENSIONS:
        rated = [v for v in per_row[d].values() if len(v) >= 2]
        kappa[d] = fleiss_kappa(ratings_to_counts(rated, categories=range(1, 6))) if rated else None
    return {"systems": systems, "kappa": kappa, "raters": len(sheets)}


def table6_markdown(aggregate: dict, order=None, digits: int = 2) -> str:
    """Table 6 layout: rows = systems (e.g. "Dataset" first), columns = the five dimensions; "-" = not rated."""
    names = list(order) if order else list(aggregate["systems"])
    lines = ["| Method/Dataset | " + " | ".join(DIMENSIONS) + " |", "|" + "---|" * (len(DIMENSIONS) + 1)]
    for name in names:
        dims = aggregate["systems"][name]
        lines.append(f"| {name} | " + " | ".join("-" if dims[d] is None else f"{dims[d]['mean']:.{digits}f}"
                                                  for d in DIMENSIONS) + " |")
    kappa = aggregate.get("kappa") or {}
    if any(v is not None for v in kappa.values()):
        lines += ["", "Fleiss' kappa across raters: " + ", ".join(
            f"{d} {kappa[d]:.2f}" for d in DIMENSIONS if kappa.get(d) is not None)]
    return "\n".join(lines) + "\n"
