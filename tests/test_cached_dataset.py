"""Reading the feature cache (processing_ecmc/cached_dataset.py): collation pads and masks, the data
set reads every utterance verified and works with a DataLoader."""

import pytest
import torch

from cache_fixtures import build, make_model_and_processor
from cache_fixtures import built, data, tiny  # noqa: F401  (fixtures)

from processing_ecmc.cache_fingerprint import cache_fingerprint
from processing_ecmc.cache_store import CacheError
from processing_ecmc.cached_dataset import CachedFeatureDataset, collate_cached

def test_collate_pads_and_masks_with_a_missing_modality():
    d_v, d_a, d_t = 32, 32, 24
    v1, a1 = torch.randn(8, d_v).half(), torch.randn(5, d_a).half()
    v2, t2 = torch.randn(8, d_v).half(), torch.randn(4, d_t).half()
    a3, t3 = torch.randn(7, d_a).half(), torch.randn(2, d_t).half()
    items = [
        {"video_features": v1, "audio_features": a1, "modality_mask": torch.tensor([True, True, False])},
        {"video_features": v2, "text_features": t2, "modality_mask": torch.tensor([True, False, True])},
        {"audio_features": a3, "text_features": t3, "modality_mask": torch.tensor([False, True, True])},
    ]
    batch = collate_cached(items)
    assert batch["modality_mask"].tolist() == [[True, True, False], [True, False, True], [False, True, True]]
    assert batch["video_features"].shape == (3, 8, d_v) and batch["video_features"].dtype == torch.float32
    assert batch["audio_features"].shape == (3, 7, d_a) and batch["text_features"].shape == (3, 4, d_t)
    assert batch["audio_feature_mask"].tolist() == [[1] * 5 + [0] * 2, [0] * 7, [1] * 7]
    assert batch["text_feature_mask"].tolist() == [[0] * 4, [1] * 4, [1, 1, 0, 0]]
    assert batch["video_feature_mask"].tolist() == [[1] * 8, [1] * 8, [0] * 8]
    assert batch["audio_feature_mask"].dtype == torch.long
    torch.testing.assert_close(batch["audio_features"][0, :5], a1.float())
    assert not batch["audio_features"][0, 5:].any() and not batch["audio_features"][1].any()
    assert not batch["video_features"][2].any() and not batch["text_features"][0].any()
    torch.testing.assert_close(batch["text_features"][2, :2], t3.float())
    assert collate_cached(items, dtype=torch.float16)["text_features"].dtype == torch.float16
    # a modality absent for the whole batch is left out
    only_video = collate_cached([items[0]])
    assert "text_features" not in only_video and "text_feature_mask" not in only_video
    assert only_video["modality_mask"].tolist() == [[True, True, False]]
    # the model takes the batch; padding does not change a sample's embeddings
    model, _ = make_model_and_processor()
    with torch.no_grad():
        together = model.model(**batch)
        for i, item in enumerate(items):
            alone = model.model(**collate_cached([item]))
            torch.testing.assert_close(together.h_e[i], alone.h_e[0], atol=1e-5, rtol=1e-4)
    assert together.modality_mask.tolist() == batch["modality_mask"].tolist()


def test_cached_dataset_with_dataloader(tiny, data, built):
    from datasets import Dataset

    model, processor = tiny
    rows, root = data
    cache_dir, _, _, _ = built
    fingerprint = cache_fingerprint(model, processor)
    _, statuses = build(model, processor, Dataset.from_list(rows), cache_dir, root)  # rows from a datasets split
    assert set(statuses.values()) == {"reused"} and len(statuses) == len(rows)
    dataset = CachedFeatureDataset(Dataset.from_list(rows), cache_dir, fingerprint, data_root=root)
    assert len(dataset) == len(rows)
    item = dataset[2]
    assert item["emotion_label"].item() == rows[2]["emotion_label"]
    assert item["cognition_labels"].tolist() == rows[2]["cognition_labels"] and item["index"].item() == 2
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=False, collate_fn=collate_cached)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [4, 4, 1]
    batch = batches[0]
    assert batch["emotion_labels"].tolist() == [r["emotion_label"] for r in rows[:4]]
    assert batch["cognition_labels"].shape == (4, 4)
    batch.pop("index")
    out = model.model(**batch)
    assert torch.isfinite(out.loss)
    with pytest.raises(CacheError, match="not cached"):
        CachedFeatureDataset(rows + [dict(rows[0], utterance_id="new")], cache_dir, fingerprint, data_root=root)
