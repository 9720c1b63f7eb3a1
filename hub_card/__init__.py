"""Hub publishing for ECMC: model and data set card templates (`model_card.md`, `dataset_card.md`),
filled from a checkpoint and its evaluation report or from a data set, and the push commands.

    python -m hub_card.push --checkpoint DIR --repo-id USER/NAME [--evaluation report.json] [--public] [--dry-run OUT]
    python -m hub_card.push_dataset --dataset DIR --repo-id USER/NAME [--public]

Repositories are private unless asked otherwise; cards carry numbers and settings, never transcripts
or captions.
"""

from .cards import build_dataset_card, build_model_card

__all__ = ["build_model_card", "build_dataset_card"]
