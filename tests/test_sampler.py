"""The contrastive batch sampler (training_ecmc/sampler.py): every row has a partner, and the order
depends only on (seed, epoch)."""

import torch

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


def test_ranks_draw_from_disjoint_stratified_shards():
    """On several processes each rank draws only from its own shard of the epoch: the ranks' rows are
    disjoint, the shards partition the rows, each rank gets its share of every emotion class, every
    rank yields the same number of full batches, and the split changes with the epoch."""
    emotion = [i % 3 for i in range(30)]
    cognition = [[int(i % 6 == 0), 0, 0, int(i % 5 == 0)] for i in range(30)]
    ranks = [ContrastiveBatchSampler(emotion, cognition, batch_size=4, seed=3, num_replicas=3, rank=r) for r in range(3)]
    per_epoch = []
    for epoch in (0, 1):
        rows = []
        for sampler in ranks:
            sampler.set_epoch(epoch)
            batches = list(sampler)
            assert len(batches) == len(sampler) == 3 and all(len(set(b)) == len(b) == 4 for b in batches)
            rows.append({i for b in batches for i in b})
        assert all(not rows[a] & rows[b] for a in range(3) for b in range(a + 1, 3))
        shards = [s._shard(torch.Generator().manual_seed(3 * 1_000_003 + epoch)).tolist() for s in ranks]
        assert sorted(i for shard in shards for i in shard) == list(range(30))  # the shards partition the rows
        for r, shard in enumerate(shards):
            assert rows[r] <= set(shard) and len(shard) == 10
            assert [emotion[i] for i in shard].count(0) in (3, 4)  # about a third of each class per rank
        per_epoch.append(rows)
    assert per_epoch[0] != per_epoch[1]
    assert ranks[0].n == 30 and len(ContrastiveBatchSampler(emotion, cognition, batch_size=4)) == 8  # one process: all rows
