"""Training support for `train.py`: configuration, the contrastive batch sampler, the Trainer subclass."""
