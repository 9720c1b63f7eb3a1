"""Push a saved ECMC data set to the Hugging Face Hub with its card (`hub_card/dataset_card.md`).

    python -m hub_card.push_dataset --dataset data/ecmc-synth --repo-id me/ecmc-synth            # private
    python -m hub_card.push_dataset --dataset data/ecmc-synth --repo-id me/ecmc-synth --public   # only when asked

The repository is created **private** unless `--public`; an existing public repository is refused
without `--public`. The card goes first (`push_to_hub` keeps it and adds the split metadata), then
the table, with its paths made relative to the data set's root (`dataset_io.with_relative_paths`):
absolute paths would leak the local folder layout and mean nothing elsewhere. The media themselves
are never uploaded. Uploading needs a token (`hf auth login` or HF_TOKEN) and HF_HUB_OFFLINE unset.
"""

import argparse
import logging
from pathlib import Path

from processing_ecmc.dataset_io import data_root_of, load_dataset_dict, with_relative_paths
from . import push

logger = logging.getLogger(__name__)

__all__ = ["push_dataset", "main"]


def push_dataset(dsd, repo_id: str, private: bool = True, token=None, relative_paths: bool = True):
    """Push to the Hub, **private unless asked otherwise**. Media files are not uploaded; with
    ``relative_paths`` (default) paths are made relative to ``data_root`` first, so the pushed table
    does not carry the local folder layout."""
    root = data_root_of(dsd)
    if relative_paths and root:
        dsd = with_relative_paths(dsd, root)
    logger.info("pushing data set to %s (private=%s)", repo_id, private)
    return dsd.push_to_hub(repo_id, private=private, token=token)


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="a saved ECMC data set folder")
    parser.add_argument("--repo-id", required=True, help="USER/NAME of the Hub data set repository")
    parser.add_argument("--public", action="store_true", help="make the Hub repository public (default: private)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    dsd = load_dataset_dict(args.dataset)
    try:  # the card (hub_card/dataset_card.md) first: push_to_hub keeps it and adds the split metadata
        push.upload_dataset_card(dsd, args.repo_id, private=not args.public)
    except push.HubPushError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    push_dataset(dsd, args.repo_id, private=not args.public)
    print(f"[ecmc] pushed {args.dataset} to {args.repo_id} ({'public' if args.public else 'private'})")


if __name__ == "__main__":
    main(prog="python -m hub_card.push_dataset")
