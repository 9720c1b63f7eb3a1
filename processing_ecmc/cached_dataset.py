"""Training and evaluation read the feature cache: `CachedFeatureDataset` items, batched by
`collate_cached` into the model's precomputed-feature inputs.

    fingerprint = cache_fingerprint(model, processor)
    folder = build_feature_cache(model, processor, dataset["train"], "cache/features")
    ds = CachedFeatureDataset(dataset["train"], "cache/features", fingerprint)
    loader = DataLoader(ds, batch_size=64, shuffle=True, collate_fn=collate_cached)
    batch = next(iter(loader)); index = batch.pop("index")
    out = model.model(**batch)            # stage 1: emotion_labels / cognition_labels included

or ``cached_dataset(model, processor, rows, cache_dir)`` for the first three lines. Every item is
verified on load (cache_store.py) and, by default, checked against its row's current inputs.
"""

from __future__ import annotations

import json

import torch

from modeling_ecmc.padding_ecmc import pad_stack
from modeling_ecmc.vocabulary_ecmc import MODALITIES, feature_input_names
from processing_ecmc.cache_build import build_feature_cache
from processing_ecmc.cache_fingerprint import cache_fingerprint, canonical, inputs_fingerprint, row_get
from processing_ecmc.cache_store import CacheError, cache_file_name, cache_folder, read_verified


def collate_cached(items: list, dtype=torch.float32) -> dict:
    """Batch cached items for `ECMCModel.forward` / `ECMCForConditionalGeneration.forward`:
    ``{m}_features`` (B, T_max, d_m) in `dtype`, zero-padded, ``{m}_feature_mask`` (B, T_max) long
    and ``modality_mask`` (B, 3) bool. A modality no item has is left out; a sample without it gets a
    zero row, a zero mask and a False flag. Items from `CachedFeatureDataset` also give
    ``emotion_labels`` (B,), ``cognition_labels`` (B, 4) and ``index`` (B,) (pop ``index``, and the
    labels for the stage-2 model, before calling forward)."""
    if not items:
        raise ValueError("collate_cached needs at least one item")
    batch = len(items)
    modality_mask = torch.stack([torch.as_tensor(item["modality_mask"]).bool() for item in items])
    if modality_mask.shape != (batch, len(MODALITIES)):
        raise ValueError(f"modality_mask must be ({len(MODALITIES)},) per item, got {tuple(modality_mask.shape[1:])}")
    out = {}
    for k, m in enumerate(MODALITIES):
        features_name, mask_name = feature_input_names(m)
        features = [item.get(features_name) if modality_mask[i, k] else None for i, item in enumerate(items)]
        given = [f for f in features if f is not None]
        modality_mask[:, k] = torch.tensor([f is not None for f in features])
        if not given:
            continue
        if len({f.shape[-1] for f in given}) > 1 or any(f.dim() != 2 for f in given):
            raise ValueError(f"{m} features must all be (frames, d) with one d; got shapes {[tuple(f.shape) for f in given]}")
        out[features_name], out[mask_name] = pad_stack(features, value=0, dtype=dtype)
    out["modality_mask"] = modality_mask
    for key, name in (("emotion_label", "emotion_labels"), ("cognition_labels", "cognition_labels"), ("index", "index")):
        if all(key in item for item in items):
            out[name] = torch.stack([torch.as_tensor(item[key]).long() for item in items])
    return out


def _column(rows, name: str):
    try:
        names = rows.column_names  # datasets.Dataset: read a column without decoding rows
    except AttributeError:
        return [row_get(row, name) for row in rows]
    return list(rows[name]) if name in names else [None] * len(rows)


def cached_dataset(model, processor, rows, cache_dir, batch_size: int = 8, **build_kwargs) -> "CachedFeatureDataset":
    """Build (or reuse, resumably) the cache for `rows`, then read them from it: what training and
    evaluation both need."""
    build_feature_cache(model, processor, rows, cache_dir, batch_size=batch_size, **build_kwargs)
    return CachedFeatureDataset(rows, cache_dir, cache_fingerprint(model, processor),
                                data_root=build_kwargs.get("data_root"))


class CachedFeatureDataset(torch.utils.data.Dataset):
    """Items of `rows` read from the feature cache built for `fingerprint`: the cached features,
    ``modality_mask``, ``emotion_label`` (long scalar) and ``cognition_labels`` (4,) long when the
    rows have them, and ``index`` (the row index). Use with ``collate_fn=collate_cached``.

    Every utterance must be cached (CacheError naming the first missing file otherwise). With
    `check_inputs` (default) each item's media / segment / transcript are compared with those the
    cache was built from, so a stale entry raises CacheError instead of being used."""

    def __init__(self, rows, cache_dir, fingerprint: str, *, data_root=None, check_inputs: bool = True):
        self.rows = rows
        self.fingerprint = fingerprint
        self.folder = cache_folder(cache_dir, fingerprint)
        self.data_root = data_root
        self.check_inputs = check_inputs
        self.utterance_ids = [str(u) for u in _column(rows, "utterance_id")]
        self.emotion_labels = _column(rows, "emotion_label")
        self.cognition_labels = _column(rows, "cognition_labels")
        missing = [u for u in self.utterance_ids if not (self.folder / cache_file_name(u)).is_file()]
        if missing:
            raise CacheError(
                self.folder / cache_file_name(missing[0]),
                f"{len(missing)} of {len(self.utterance_ids)} utterances are not cached (first: {missing[0]!r}); "
                "run build_feature_cache with the same model and processor",
            )

    def __len__(self) -> int:
        return len(self.utterance_ids)

    def __getitem__(self, index: int) -> dict:
        utterance_id = self.utterance_ids[index]
        path = self.folder / cache_file_name(utterance_id)
        tensors, metadata = read_verified(path, utterance_id, self.fingerprint)
        if self.check_inputs:
            row = self.rows[index]
            try:
                mode = json.loads(metadata.get("inputs", "{}")).get("mode", "stat")
                current = inputs_fingerprint(row, self.data_root, mode)
            except (FileNotFoundError, ValueError) as error:
                raise CacheError(path, f"cannot check the inputs of utterance {utterance_id!r}: {error}") from None
            if metadata.get("inputs") != canonical(current):
                raise CacheError(path, f"stale: the media, segment or transcript of utterance {utterance_id!r} changed "
                                       "since the cache was built; rerun build_feature_cache")
        item = dict(tensors)
        if self.emotion_labels[index] is not None:
            item["emotion_label"] = torch.tensor(int(self.emotion_labels[index]), dtype=torch.long)
        if self.cognition_labels[index] is not None:
            item["cognition_labels"] = torch.tensor([int(c) for c in self.cognition_labels[index]], dtype=torch.long)
        item["index"] = torch.tensor(index, dtype=torch.long)
        return item


__all__ = ["CachedFeatureDataset", "cached_dataset", "collate_cached"]
