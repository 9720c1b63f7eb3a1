"""Hub publishing for ECMC: model and data set card templates (`model_card.md`, `dataset_card.md`),
filled from a checkpoint and its evaluation report, and the push command.

    python -m hub_card.push --checkpoint DIR --repo-id USER/NAME [--evaluation report.json] [--public] [--dry-run OUT]

Repositories are private unless asked otherwise; cards carry numbers and settings, never transcripts
or captions.
"""

from .cards import build_dataset_card, build_model_card

__all__ = ["build_model_card", "build_dataset_card"]
