"""Batches that suit contrastive learning.

EmoCL needs, for each sample, another sample of its emotion class in the batch (Eq. 10's pull term
is empty otherwise) and CogCL needs partners sharing a deficit (Eq. 12). With rare labels
(orientation deficits are under 1 % on MMDA) random batches often have none. `ContrastiveBatchSampler`
builds each batch from `min_per_label` samples of every emotion class and of every cognition
label present in the data, then fills it with random samples; batches never repeat a sample.
An epoch has ceil(N / batch_size) batches, so every sample is seen once per epoch in expectation
(rare-label samples more often). The order depends only on (seed, epoch): resuming an interrupted
run replays the same batches.

On several processes (`num_replicas`, `rank`: the Trainer's world size and process index) every
epoch first splits the rows into disjoint shards, one per rank, stratified by emotion class and
deficits, and each rank draws its batches from its own shard only, as `DistributedSampler` does:
ranks never train on the same row in one epoch, and all ranks yield the same number of batches.
The sampler is rank-aware itself, so the trainer keeps accelerate from sharding it a second time
(`ECMCTrainer.get_train_dataloader`).
"""

import math

import torch


class ContrastiveBatchSampler(torch.utils.data.Sampler):
    def __init__(self, emotion_labels, cognition_labels, batch_size: int, seed: int = 0, min_per_label: int = 2,
                 num_replicas: int = 1, rank: int = 0):
        self.emotion_labels = torch.as_tensor(list(emotion_labels))
        self.cognition_labels = torch.as_tensor([list(c) for c in cognition_labels])
        self.n = len(self.emotion_labels)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if batch_size < 1 or self.n < num_replicas:
            raise ValueError(f"need batch_size >= 1 and at least one sample per process ({num_replicas}), "
                             f"got {batch_size} and {self.n} samples")
        self.num_replicas, self.rank = num_replicas, rank
        self.shard_size = self.n // num_replicas  # the smallest shard (sizes differ by at most one)
        self.batch_size = min(batch_size, self.shard_size)
        self.seed = seed
        self.epoch = 0
        self.min_per_label = min_per_label

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self) -> int:  # per rank, the same on every rank
        return math.ceil(math.ceil(self.n / self.num_replicas) / self.batch_size)

    def _shard(self, generator) -> torch.Tensor:
        """This rank's rows for the epoch: a random order, stably sorted by (emotion class, deficits),
        dealt out round-robin, so every rank gets its share of each class. One process: all rows."""
        if self.num_replicas == 1:
            return torch.arange(self.n)
        order = torch.randperm(self.n, generator=generator)
        stratum = self.emotion_labels[order] * 2 ** self.cognition_labels.shape[1]
        stratum = stratum + (self.cognition_labels[order] * 2 ** torch.arange(self.cognition_labels.shape[1])).sum(1)
        order = order[torch.sort(stratum, stable=True).indices]
        return order[self.rank::self.num_replicas]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        rows = self._shard(generator)  # every rank draws the same split, then only its own batches
        emotion, cognition = self.emotion_labels[rows], self.cognition_labels[rows]
        groups = [torch.nonzero(emotion == c).flatten() for c in emotion.unique()]
        groups += [torch.nonzero(cognition[:, k] == 1).flatten() for k in range(cognition.shape[1])]
        groups = [g for g in groups if len(g) > 0]
        for _ in range(len(self)):
            chosen = []
            for group in groups:
                take = group[torch.randperm(len(group), generator=generator)[: self.min_per_label]].tolist()
                chosen += [i for i in take if i not in chosen]
            chosen = chosen[: self.batch_size]
            rest = [i for i in torch.randperm(len(rows), generator=generator).tolist() if i not in set(chosen)]
            yield rows[chosen + rest[: self.batch_size - len(chosen)]].tolist()


def rows_without_partner(emotion_labels, cognition_labels, batches) -> dict:
    """Fraction of rows (over all batches) with no same-emotion partner, and of rows with a deficit
    but no partner sharing one: what the sampler is for."""
    emotion = torch.as_tensor(list(emotion_labels))
    cognition = torch.as_tensor([list(c) for c in cognition_labels])
    rows = lonely_emotion = with_deficit = lonely_cognition = 0
    for batch in batches:
        e, c = emotion[batch], cognition[batch]
        same = (e[:, None] == e[None, :]).sum(1) - 1
        shared = ((c @ c.T) > 0).sum(1) - (c.sum(1) > 0).long()
        rows += len(batch)
        lonely_emotion += int((same == 0).sum())
        has = c.sum(1) > 0
        with_deficit += int(has.sum())
        lonely_cognition += int(((shared == 0) & has).sum())
    return {"no_emotion_partner": lonely_emotion / max(rows, 1),
            "deficit_without_partner": lonely_cognition / max(with_deficit, 1)}
