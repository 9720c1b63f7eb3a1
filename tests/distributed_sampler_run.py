"""Run by test_trainer.py under `torchrun --nproc_per_node 2`: two epochs of stage 1 through the real
`ECMCTrainer` with the contrastive sampler, recording the rows of every batch this rank trained on
(`{output}/rank{R}.json`)."""

import json
import sys
from pathlib import Path

import torch
from transformers import TrainingArguments

from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.processing_ecmc import ECMCProcessor
from training_ecmc.freezing import freeze_for_stage
from training_ecmc.sampler import ContrastiveBatchSampler
from training_ecmc.trainer import ECMCCollator, ECMCTrainer


class RecordingCollator(ECMCCollator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = []

    def __call__(self, items):
        self.batches.append(sorted(int(item["index"]) for item in items))
        return super().__call__(items)


def main(checkpoint: str, output: str):
    args = TrainingArguments(output, per_device_train_batch_size=3, num_train_epochs=2, learning_rate=1e-3,
                             save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False,
                             label_names=["emotion_labels", "cognition_labels"], seed=0)
    g = torch.Generator().manual_seed(0)
    emotion = [i % 3 for i in range(24)]
    cognition = [[int(i % 5 == 0), int(i % 7 == 0), 0, int(i % 4 == 1)] for i in range(24)]
    items = [{"modality_mask": torch.tensor([False, False, True]), "text_features": torch.randn(4, 24, generator=g),
              "index": i, "emotion_label": emotion[i], "cognition_labels": cognition[i],
              "caption": ("", ""), "language": "en"} for i in range(24)]
    model = ECMCForConditionalGeneration.from_pretrained(checkpoint)
    freeze_for_stage(model, 1)
    sampler = ContrastiveBatchSampler(emotion, cognition, 3, seed=0, num_replicas=args.world_size,
                                      rank=args.process_index)
    collator = RecordingCollator(ECMCProcessor.from_pretrained(checkpoint), stage=1)
    trainer = ECMCTrainer(model=model, args=args, train_dataset=items, data_collator=collator, stage=1,
                          contrastive_sampler=sampler)
    trainer.train()
    per_epoch = len(sampler)
    loader = trainer.get_train_dataloader()
    record = {"world_size": args.world_size, "batches_per_epoch": per_epoch,
              "epochs": [collator.batches[e * per_epoch:(e + 1) * per_epoch] for e in range(2)],
              "worker_init": dict(loader.worker_init_fn.keywords) if loader.worker_init_fn else None}
    (Path(output) / f"rank{args.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:3])
