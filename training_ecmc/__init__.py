"""Training, both stages: `config` (the YAML keys and their defaults), `run` (`run_training`: data ->
model -> feature cache -> stage 1 -> stage 2), `stages` (one stage's set-up: what trains, LoRA,
TrainingArguments), `trainer` (the Trainer subclass, collator, complete checkpoints), `sampler` (the
contrastive batch sampler), `cli` (the command line of `train.py` and `ecmc train`)."""
