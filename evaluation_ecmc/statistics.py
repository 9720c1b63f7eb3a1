"""Statistics and figures: Fig. 4 (emotion / cognition differences between groups), t-SNE of the
BridgeNet features h_e / h_c, and k-NN accuracy of those features on the labels.

Fig. 4 (paper §"Emotional and Cognitive Statistics"): for each subject, the proportion of its
utterances with negative emotion and with each deficit; then the mean over the subjects of each group.
Groups: "depression" (depression = 1), "anxiety" (anxiety = 1) and "healthy" (both 0). A subject with
both disorders counts in both disorder groups (the paper does not say how it treated comorbidity);
subjects with an unknown (-1) label are left out. Labels come from the data set or are read back from
predicted captions (`label_readback`), so the figure can be drawn for a model's output too.

Figures are written with matplotlib's Agg backend (no display needed).
"""

import numpy as np

from modeling_ecmc.atomic_io import save_figure
from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, DEFAULT_LANGUAGE, EMOTION_LABELS

GROUPS = ("depression", "anxiety", "healthy")
CATEGORIES = ("negative emotion",) + tuple(COGNITION_LABELS)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def group_statistics(subject_ids, depression, anxiety, emotion_labels, cognition_labels) -> dict:
    """Per-utterance labels -> {"categories", "groups": {group: {"n_subjects", "mean": {category: p},
    "sem": {category: standard error}}}, "per_subject": {subject: {category: p}}}.
    emotion_labels: -1/0/1 per utterance (None = unreadable: left out of that subject's emotion ratio)."""
    n = len(subject_ids)
    cog = np.asarray(cognition_labels, dtype=float).reshape(n, len(COGNITION_LABELS))
    if not (len(depression) == len(anxiety) == len(emotion_labels) == n):
        raise ValueError("subject_ids, depression, anxiety and the labels must have one entry per utterance")
    per_subject, status = {}, {}
    for sid in dict.fromkeys(subject_ids):
        idx = [i for i, s in enumerate(subject_ids) if s == sid]
        emos = [emotion_labels[i] for i in idx if emotion_labels[i] is not None]
        row = {"negative emotion": float(np.mean([e == -1 for e in emos])) if emos else float("nan")}
        row.update({name: float(np.mean(cog[idx, j])) for j, name in enumerate(COGNITION_LABELS)})
        per_subject[sid] = row
        dep, anx = {int(depression[i]) for i in idx}, {int(anxiety[i]) for i in idx}
        if len(dep) > 1 or len(anx) > 1:
            raise ValueError(f"subject {sid} has different depression/anxiety labels on different utterances")
        status[sid] = (dep.pop(), anx.pop())
    members = {"depression": [s for s, (d, a) in status.items() if d == 1],
               "anxiety": [s for s, (d, a) in status.items() if a == 1],
               "healthy": [s for s, (d, a) in status.items() if d == 0 and a == 0]}
    groups = {}
    for g in GROUPS:
        vals = {c: np.array([per_subject[s][c] for s in members[g]], dtype=float) for c in CATEGORIES}
        vals = {c: v[~np.isnan(v)] for c, v in vals.items()}
        groups[g] = {"n_subjects": len(members[g]),
                     "mean": {c: float(v.mean()) if v.size else float("nan") for c, v in vals.items()},
                     "sem": {c: float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0 for c, v in vals.items()}}
    return {"categories": list(CATEGORIES), "groups": groups, "per_subject": per_subject}


def group_statistics_from_rows(rows, captions=None, language=None) -> dict:
    """`group_statistics` from ECMC rows; with `captions` (one per row) the labels are read back from
    them, each in `language`: one for every row, a list of one per row, or None (each row's own
    `language`, DEFAULT_LANGUAGE where a row has none)."""
    rows = list(rows)
    if captions is not None:
        from .caption_tokenization import per_row_languages
        from .label_readback import read_labels

        if len(captions) != len(rows):
            raise ValueError(f"{len(captions)} captions for {len(rows)} rows")
        if language is None:
            language = [r.get("language") or DEFAULT_LANGUAGE for r in rows]
        read = [read_labels(c, lang) for c, lang in zip(captions, per_row_languages(language, len(rows)))]
        emotion, cognition = [r["emotion"] for r in read], [r["cognition"] for r in read]
    else:
        emotion, cognition = [r["emotion_label"] for r in rows], [r["cognition_labels"] for r in rows]
    return group_statistics([r["subject_id"] for r in rows], [r["depression"] for r in rows],
                            [r["anxiety"] for r in rows], emotion, cognition)


def plot_group_statistics(stats: dict, path, title: str = "Emotion and cognition by group") -> str:
    """Fig. 4 as a grouped bar chart (mean proportion per subject, ± standard error) -> PNG."""
    plt = _plt()
    cats = stats["categories"]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    width = 0.8 / len(GROUPS)
    x = np.arange(len(cats))
    for k, g in enumerate(GROUPS):
        info = stats["groups"][g]
        ax.bar(x + (k - (len(GROUPS) - 1) / 2) * width, [info["mean"][c] for c in cats], width,
               yerr=[info["sem"][c] for c in cats], capsize=2, label=f"{g} (n={info['n_subjects']})")
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=15)
    ax.set_ylabel("proportion of utterances")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return str(path)


def label_names(labels, kind: str = "emotion") -> list[str]:
    """Readable class names: emotion -1/0/1 -> negative/neutral/positive; cognition 4-vectors -> the
    deficits joined by '+', or 'none'."""
    if kind == "emotion":
        return [EMOTION_LABELS[int(v)] for v in labels]
    out = []
    for vec in labels:
        names = [n.split()[0] for n, v in zip(COGNITION_LABELS, vec) if int(v)]
        out.append("+".join(names) if names else "none")
    return out


def tsne_2d(embeddings, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    from sklearn.manifold import TSNE

    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"t-SNE needs a (n >= 3, d) array, got shape {x.shape}")
    perplexity = perplexity or float(max(2.0, min(30.0, (len(x) - 1) / 3)))
    return TSNE(n_components=2, perplexity=min(perplexity, len(x) - 1.0), init="pca", random_state=seed).fit_transform(x)


def plot_tsne(embeddings, labels, path, title: str = "t-SNE", seed: int = 0, max_classes: int = 8) -> str:
    """t-SNE of embeddings (e.g. h_e or h_c), one colour per class name -> PNG. Classes beyond the
    `max_classes` most frequent are drawn as 'other'."""
    plt = _plt()
    labels = [str(v) for v in labels]
    xy = tsne_2d(embeddings, seed)
    classes = sorted(set(labels), key=lambda c: (-labels.count(c), c))
    keep = classes[:max_classes]
    shown = [c if c in keep else "other" for c in labels]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    for c in keep + (["other"] if len(classes) > max_classes else []):
        m = np.array([s == c for s in shown])
        ax.scatter(xy[m, 0], xy[m, 1], s=12, label=f"{c} ({int(m.sum())})", alpha=0.8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.2)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return str(path)


def knn_accuracy(embeddings, labels, k: int = 5, folds: int = 5, metric: str = "cosine", seed: int = 0,
                 train_embeddings=None, train_labels=None) -> dict:
    """k-NN accuracy of embeddings on labels, with the majority-class accuracy beside it.

    With `train_embeddings` / `train_labels` the classifier is fitted on those (e.g. the training
    split) and scored on `embeddings` (held out); the majority class is then the training split's.
    Otherwise it is cross-validated within `embeddings`: folds are stratified (on the label
    combination) and capped by the smallest class size (at least 2).
    labels: class per sample (1-D), or a 0/1 matrix (multi-label, e.g. cognition): then "accuracy" is
    the exact-match accuracy and "per_label_accuracy" / "per_label_majority" are added."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    multi = y.ndim == 2
    if train_embeddings is not None:
        train_x, train_y = np.asarray(train_embeddings, dtype=np.float64), np.asarray(train_labels)
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), metric=metric).fit(train_x, train_y)
        pred = clf.predict(x)
        out = {"k": k, "fitted_on": int(len(train_x)), "metric": metric, "n": int(len(x))}
    else:
        train_y = y
        strata = np.array(["".join(map(str, r)) for r in y.astype(int)]) if multi else y.astype(str)
        _, counts = np.unique(strata, return_counts=True)
        n_splits = int(min(folds, len(x)))
        if n_splits < 2:
            raise ValueError("k-NN cross-validation needs at least 2 samples")
        splitter = (StratifiedKFold(n_splits=min(n_splits, int(counts.min())), shuffle=True, random_state=seed)
                    if counts.min() >= 2 else KFold(n_splits=n_splits, shuffle=True, random_state=seed))
        pred = np.empty_like(y)
        for train, test in splitter.split(x, strata):
            clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric=metric)
            clf.fit(x[train], y[train])
            pred[test] = clf.predict(x[test])
        out = {"k": k, "folds": splitter.get_n_splits(), "metric": metric, "n": int(len(x))}
    if multi:
        majority = (train_y.mean(axis=0) > 0.5).astype(y.dtype)
        out["accuracy"] = float(np.mean(np.all(pred == y, axis=1)))
        out["majority_accuracy"] = float(np.mean(np.all(y == majority, axis=1)))
        out["per_label_accuracy"] = [float(v) for v in np.mean(pred == y, axis=0)]
        out["per_label_majority"] = [float(v) for v in np.mean(y == majority, axis=0)]
    else:
        values, cnt = np.unique(train_y, return_counts=True)
        out["accuracy"] = float(np.mean(pred == y))
        out["majority_accuracy"] = float(np.mean(y == values[cnt.argmax()]))
    return out
