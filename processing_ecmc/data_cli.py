"""Command line for data sets: build from a manifest, import MMDA, push to the Hub.

    python -m processing_ecmc.data_cli build  --manifest DIR/manifest.jsonl --output data/ecmc-synth
    python -m processing_ecmc.data_cli mmda   --csv mmda.csv --features-root feats/ --output data/mmda
    python -m processing_ecmc.data_cli push   --dataset data/ecmc-synth --repo-id me/ecmc-synth [--public]

`build` and `mmda` save the DatasetDict (atomically) and write every dropped row with its reason
to `<output>.dropped.jsonl` (ids, files and reasons only: never transcripts).
"""

import argparse
import json
import logging
from pathlib import Path

from modeling_ecmc.atomic_io import write_text
from .datasets_ecmc import build_dataset, import_mmda, load_dataset_dict, push_dataset, save_dataset


def _save(dsd, dropped, output: Path):
    save_dataset(dsd, output)
    report = output.with_name(output.name + ".dropped.jsonl")
    write_text(report, "".join(json.dumps(row) + "\n" for row in dropped))
    sizes = ", ".join(f"{name} {len(split)}" for name, split in dsd.items())
    print(f"[ecmc] data set ({sizes}; {len(dropped)} dropped, see {report}) written to {output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="manifest (JSONL/CSV) of clips or sessions -> DatasetDict")
    build.add_argument("--manifest", type=Path, required=True)
    build.add_argument("--data-root", type=Path, help="folder media paths are relative to (default: the manifest's)")
    mmda = sub.add_parser("mmda", help="import the MMDA layout of the authors' loader")
    mmda.add_argument("--csv", type=Path, required=True)
    mmda.add_argument("--media-root", type=Path)
    mmda.add_argument("--features-root", type=Path)
    for command in (build, mmda):
        command.add_argument("--output", type=Path, required=True, help="folder for the saved DatasetDict")
        command.add_argument("--min-duration", type=float, default=2.0, help="drop shorter utterances (paper: 2 s)")
        command.add_argument("--max-duration", type=float, default=60.0, help="drop longer utterances")
        command.add_argument("--seed", type=int, default=0, help="seed of the by-subject split")
    push = sub.add_parser("push", help="push a saved data set to the Hub (private unless --public)")
    push.add_argument("--dataset", type=Path, required=True)
    push.add_argument("--repo-id", required=True)
    push.add_argument("--public", action="store_true", help="make the Hub repository public (default: private)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    common = lambda: dict(min_duration=args.min_duration, max_duration=args.max_duration, seed=args.seed)  # noqa: E731
    if args.command == "build":
        _save(*build_dataset(args.manifest, data_root=args.data_root, **common()), args.output)
    elif args.command == "mmda":
        _save(*import_mmda(args.csv, media_root=args.media_root, features_root=args.features_root, **common()), args.output)
    else:
        from hub_card.push import HubPushError, upload_dataset_card

        dsd = load_dataset_dict(args.dataset)
        try:  # the card (hub_card/dataset_card.md) first: push_to_hub keeps it and adds the split metadata
            upload_dataset_card(dsd, args.repo_id, private=not args.public)
        except HubPushError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
        push_dataset(dsd, args.repo_id, private=not args.public)
        print(f"[ecmc] pushed {args.dataset} to {args.repo_id} ({'public' if args.public else 'private'})")


if __name__ == "__main__":
    main()
