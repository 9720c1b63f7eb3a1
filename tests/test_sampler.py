"""The contrastive batch sampler (training_ecmc/sampler.py): every row has a partner, and the order
depends only on (seed, epoch)."""

from training_ecmc.sampler import ContrastiveBatchSampler, rows_without_partner


def test_contrastive_sampler_guarantees_partners(tiny_synth_dataset):
    from processing_ecmc.dataset_io import load_dataset_dict

    train_split = load_dataset_dict(tiny_synth_dataset)["train"]
    emotion, cognition = train_split["emotion_label"], train_split["cognition_labels"]
    sampler = ContrastiveBatchSampler(emotion, cognition, batch_size=6, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) and all(len(set(b)) == len(b) == 6 for b in batches)
    assert rows_without_partner(emotion, cognition, batches)["no_emotion_partner"] == 0
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches  # the order depends only on (seed, epoch): resumable
