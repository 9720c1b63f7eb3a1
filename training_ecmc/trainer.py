"""The custom part of training: batches from the feature cache, the two stages' losses in one
`Trainer.compute_loss`, the contrastive batch sampler, and checkpoints that are known complete."""

import copy
import json
import random
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import seed_worker

from modeling_ecmc.atomic_io import atomic_folder, write_text
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE
from processing_ecmc.cached_dataset import collate_cached

from .sampler import ContrastiveBatchSampler

COMPLETE_MARKER = "ecmc_complete.json"


class WithCaptions(torch.utils.data.Dataset):
    """A cached-feature data set whose items also carry their row's target caption, language and
    transcript (the decoder prompt holds it with `prompt_transcript`). `with_transcript_dropout`
    gives a copy whose items go without their transcript at random (`stage2.transcript_dropout`)."""

    def __init__(self, cached, rows):
        self.cached = cached
        self.captions = list(zip(rows["emotion_caption"], rows["cognition_caption"]))
        self.languages = rows["language"]
        self.transcripts = rows["transcript"]  # for `prompt_transcript` (sensitive: never logged)
        self.labels = rows["emotion_label"], rows["cognition_labels"]  # for the read-back selection
        self.transcript_dropout, self._rng = 0.0, None

    def with_transcript_dropout(self, share: float, seed: int) -> "WithCaptions":
        """This data set, each item read without its transcript with probability `share`, drawn anew
        at every read (so every epoch drops other rows), from a generator seeded with `seed`."""
        dropped = copy.copy(self)
        dropped.transcript_dropout, dropped._rng = share, random.Random(seed)
        return dropped

    def __len__(self):
        return len(self.cached)

    def __getitem__(self, index):
        transcript = self.transcripts[index]
        if self.transcript_dropout and self._rng.random() < self.transcript_dropout:
            transcript = None
        return {**self.cached[index], "caption": self.captions[index], "language": self.languages[index],
                "transcript": transcript}


class ECMCCollator:
    """Cached items -> model inputs. Stage 1 adds the labels; stage 2 the decoder prompt with the
    target caption (`labels` on caption tokens only), built by the processor."""

    def __init__(self, processor, stage: int, keep_labels: bool = False):
        self.processor, self.stage, self.keep_labels = processor, stage, keep_labels

    def __call__(self, items):
        batch = collate_cached(items)
        batch.pop("index")
        if self.stage == 2:
            if not self.keep_labels:
                batch.pop("emotion_labels", None)
                batch.pop("cognition_labels", None)
            captions = [item["caption"] for item in items]
            languages = [item["language"] or DEFAULT_LANGUAGE for item in items]  # each row its own prompt
            transcripts = [item.get("transcript") for item in items]
            batch.update(self.processor.caption_inputs(captions, language=languages, transcripts=transcripts))
        return batch


LABEL_READBACK = "label_readback"  # the metric of `stage2.select_by: readback`
# A read-back scorer: (the unwrapped model, the evaluation split, a `WithCaptions`) -> a score, higher
# is better. Training defines no scorer of its own (it would need the evaluation's caption parsing);
# the entry points inject `evaluation_ecmc.selection.readback_scorer(processor, cfg)`.
ReadBackScorer = Callable[[torch.nn.Module, "WithCaptions"], float]


class ECMCTrainer(Trainer):
    """`Trainer` with the ECMC losses: stage 1 L_emo + L_cog (Eq. 13), stage 2 caption cross-entropy
    (Eq. 14); both go through the wrapped model's forward so DDP/DeepSpeed see them. `readback`, a
    `ReadBackScorer`, adds `eval_label_readback` to every evaluation (`stage2.select_by: readback`)."""

    def __init__(self, *args, stage: int, contrastive_sampler: ContrastiveBatchSampler | None = None,
                 contrastive_weight: float = 0.0, learning_rates: dict | None = None,
                 readback: ReadBackScorer | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.readback = readback
        self.contrastive_sampler = contrastive_sampler
        self.contrastive_weight = contrastive_weight
        self.learning_rates = dict(learning_rates or {})  # parameter-name prefix -> its own learning rate

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with `learning_rates` giving parameters under some prefixes their
        own rate (the first matching prefix wins; the scheduler scales every group alike)."""
        if self.optimizer is not None or not self.learning_rates:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups = {}
        for name, p in opt_model.named_parameters():
            if p.requires_grad:
                lr = next((lr for prefix, lr in self.learning_rates.items() if name.startswith(prefix)),
                          self.args.learning_rate)
                key = (lr, self.args.weight_decay if name in decay else 0.0)
                groups.setdefault(key, []).append(p)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                       **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The Trainer's own loss path: in stage 2 (batches with `labels`) it passes `num_items_in_batch`,
        # the caption tokens of the whole accumulated batch on all processes, through the model to the
        # LLM's loss, which then sums and divides by it; the Trainer leaves such a loss undivided by the
        # accumulation steps. Dropping the count (as this method once did) made every update
        # `gradient_accumulation_steps` times too large. Stage 1 has no count: a per-batch mean that the
        # Trainer divides by the accumulation steps.
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.stage == 2 and self.contrastive_weight and outputs.contrastive_loss is not None:
            # not in the paper (stage 2 is cross-entropy only): keeps h_e / h_c from collapsing. A
            # per-batch mean, so it needs the accumulation scaling the caption loss already has.
            contrastive = outputs.contrastive_loss
            if num_items_in_batch is not None and model.training:
                contrastive = contrastive / self.current_gradient_accumulation_steps
            loss = loss + self.contrastive_weight * contrastive
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.readback is not None:  # every rank captions the whole split: the same greedy captions, one value
            # fork_rng: the pass's DataLoader draws a seed, which would otherwise shift the training
            # that follows; this way only the kept epoch differs from loss selection
            with torch.random.fork_rng(devices=[]), torch.no_grad(), self.autocast_smart_context_manager():
                score = self.readback(self.accelerator.unwrap_model(self.model), self.eval_dataset)
            output.metrics[f"{metric_key_prefix}_{LABEL_READBACK}"] = score
        return output

    def get_train_dataloader(self):
        """The Trainer's training DataLoader (its worker seeding, pinning and worker settings), with
        the contrastive sampler's batches in place of random ones. The sampler is rank-aware (its own
        shard per process), so the `BatchSamplerShard` that `accelerator.prepare` wraps around it is
        made a pass-through, as transformers does for its rank-aware `BatchRebalanceSampler`; the
        Trainer reaches the sampler's `set_epoch` through that wrapper every epoch."""
        if self.contrastive_sampler is None:
            return super().get_train_dataloader()
        args = self.args
        loader = torch.utils.data.DataLoader(
            self.train_dataset, batch_sampler=self.contrastive_sampler,
            collate_fn=self._get_collator_with_removed_columns(self.data_collator, description="Training"),
            num_workers=args.dataloader_num_workers, pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers,
            multiprocessing_context=args.dataloader_multiprocessing_context,
            prefetch_factor=args.dataloader_prefetch_factor, in_order=args.dataloader_in_order,
            worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        )
        loader = self.accelerator.prepare(loader)
        shard = getattr(loader, "batch_sampler", None)
        if getattr(shard, "batch_sampler", None) is self.contrastive_sampler:
            shard.num_processes, shard.process_index = 1, 0
        return loader


class CompleteCheckpointMarker(TrainerCallback):
    """Writes `ecmc_complete.json` (file sizes) into a checkpoint after everything else is saved, so
    an interrupted save is recognisable and never resumed from."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                mark_complete(folder)
        return control


def mark_complete(folder: Path):
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())
             if p.is_file() and p.name != COMPLETE_MARKER and not p.name.startswith(".")}
    write_text(folder / COMPLETE_MARKER, json.dumps(sizes))


def is_complete(folder: Path) -> bool:
    marker = Path(folder) / COMPLETE_MARKER
    try:
        sizes = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return all((Path(folder) / name).is_file() and (Path(folder) / name).stat().st_size == size for name, size in sizes.items())


def last_complete_checkpoint(output_dir) -> Path | None:
    """The newest `checkpoint-N` folder whose save finished; half-written ones are skipped."""
    folders = [p for p in Path(output_dir).glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)]
    for folder in sorted(folders, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        if is_complete(folder):
            return folder
    return None


def save_complete(model, processor, folder: Path) -> Path:
    """Save model + processor to `folder` atomically (`atomic_io.atomic_folder`: a temporary sibling,
    renamed into place; the previous version survives until the new one is complete)."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
        mark_complete(tmp)
    return folder
