"""Diagnostic: how well can stage 2 do with a *perfect* BridgeNet, in the same budget?

Replaces the BridgeNet of a stage-1 checkpoint by a small MLP over the TRUE emotion and cognition
labels (one-hot emotion + the four deficit flags -> both streams' query outputs), trains it and the
language projections with the LLM frozen (the paper's stage 2, same captions, batch and steps as
the demo), then captions the validation split greedily and reads the labels back. Whatever this
oracle cannot reach, no BridgeNet can reach in that budget. Not part of the package or the tests.

    OMP_NUM_THREADS=1 .venv/bin/python -m scripts.stage2_oracle --checkpoint outputs/demo/stage1/best

Prints the training loss every 10 steps, then distinct captions and the read-back scores (JSON).
"""

import argparse
import json
import time

import torch
from torch import nn

from evaluation_ecmc.label_readback import readback_scores
from modeling_ecmc import ECMCForConditionalGeneration
from modeling_ecmc.modeling_ecmc import ECMCModelOutput
from processing_ecmc.dataset_io import load_dataset_dict
from processing_ecmc.cached_dataset import cached_dataset, collate_cached
from modeling_ecmc.processing_ecmc import ECMCProcessor
from training_ecmc.trainer import ECMCCollator, WithCaptions


class LabelOracle(nn.Module):
    """True labels -> both streams' query outputs, standing in for ECMCModel."""

    def __init__(self, num_queries: int, width: int):
        super().__init__()
        self.shape = (2, num_queries, width)
        self.net = nn.Sequential(nn.Linear(7, 256), nn.ReLU(), nn.Linear(256, 2 * num_queries * width))

    def forward(self, emotion_labels=None, cognition_labels=None, **_):
        x = torch.cat([nn.functional.one_hot(emotion_labels + 1, 3).float(), cognition_labels.float()], dim=1)
        q = self.net(x).view(-1, *self.shape)
        return ECMCModelOutput(emotion_query_output=q[:, 0], cognition_query_output=q[:, 1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="outputs/demo/stage1/best")
    parser.add_argument("--dataset", default="outputs/ecmc-synth-dataset")
    parser.add_argument("--cache-dir", default="outputs/feature-cache")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = ECMCForConditionalGeneration.from_pretrained(args.checkpoint)
    processor = ECMCProcessor.from_pretrained(args.checkpoint, trust_remote_code=False)
    dsd = load_dataset_dict(args.dataset)
    # the cached features only supply the labels and captions here (the oracle ignores them)
    train = WithCaptions(cached_dataset(model, processor, dsd["train"], args.cache_dir, 8), dsd["train"])
    validation = cached_dataset(model, processor, dsd["validation"], args.cache_dir, 8)
    model.model = LabelOracle(model.config.num_query_tokens, model.config.bridge_hidden_size)
    model.requires_grad_(False)
    for module in (model.model, model.language_projections):
        module.requires_grad_(True)

    collate = ECMCCollator(processor, stage=2, keep_labels=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate,
                                  weight_decay=0.0)
    order = torch.Generator().manual_seed(0)
    start, step = time.time(), 0
    model.train()
    for _ in range(args.epochs):
        for rows in torch.randperm(len(train), generator=order).split(args.batch_size):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(**collate([train[int(i)] for i in rows])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % 10 == 0:
                print(f"step {step} loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)

    model.eval()
    captions, emotion, cognition = [], [], []
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(validation, batch_size=16, collate_fn=collate_cached):
            batch.pop("index")
            emotion += batch["emotion_labels"].tolist()
            cognition += batch["cognition_labels"].tolist()
            prompt = processor.caption_inputs(language="en", batch=len(batch["emotion_labels"]))
            ids = model.generate(**prompt, **batch, max_new_tokens=96, do_sample=False)
            captions += [c["caption"] for c in processor.post_process_caption(ids, prompt["input_ids"].shape[1])]
    scores = readback_scores(captions, emotion, cognition)
    print(json.dumps({"distinct_captions": len(set(captions)), "emotion": scores["emotion"],
                      "cognition_exact_match": scores["cognition"]["exact_match"],
                      "cognition_macro_f1": scores["cognition"]["macro_f1"]}, indent=1, default=str))


if __name__ == "__main__":
    main()
