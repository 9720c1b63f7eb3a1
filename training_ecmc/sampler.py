"""Batches that suit contrastive learning.

EmoCL needs, for each sample, another sample of its emotion class in the batch (Eq. 10's pull term
is empty otherwise) and CogCL needs partners sharing a deficit (Eq. 12). With rare labels
(orientation deficits are under 1 % on MMDA) random batches often have none. `ContrastiveBatchSampler`
builds each batch from `min_per_label` samples of every emotion class and of every cognition
label present in the data, then fills it with random samples; batches never repeat a sample.
An epoch has ceil(N / batch_size) batches, so every sample is seen once per epoch in expectation
(rare-label samples more often). The order depends only on (seed, epoch): resuming an interrupted
run replays the same batches.
"""

import math

import torch


class ContrastiveBatchSampler(torch.utils.data.Sampler):
    def __init__(self, emotion_labels, cognition_labels, batch_size: int, seed: int = 0, min_per_label: int = 2):
        self.emotion_labels = torch.as_tensor(list(emotion_labels))
        self.cognition_labels = torch.as_tensor([list(c) for c in cognition_labels])
        self.n = len(self.emotion_labels)
        if batch_size < 1 or self.n == 0:
            raise ValueError(f"need batch_size >= 1 and a non-empty data set, got {batch_size} and {self.n} samples")
        self.batch_size = min(batch_size, self.n)
        self.seed = seed
        self.epoch = 0
        groups = [torch.nonzero(self.emotion_labels == c).flatten() for c in self.emotion_labels.unique()]
        groups += [torch.nonzero(self.cognition_labels[:, k] == 1).flatten() for k in range(self.cognition_labels.shape[1])]
        self.groups = [g for g in groups if len(g) > 0]
        self.min_per_label = min_per_label

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        for _ in range(len(self)):
            chosen = []
            for group in self.groups:
                take = group[torch.randperm(len(group), generator=generator)[: self.min_per_label]].tolist()
                chosen += [i for i in take if i not in chosen]
            chosen = chosen[: self.batch_size]
            rest = [i for i in torch.randperm(self.n, generator=generator).tolist() if i not in set(chosen)]
            yield chosen + rest[: self.batch_size - len(chosen)]


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
