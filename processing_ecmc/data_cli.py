"""Command line for data sets: build from a manifest, import MMDA.

    python -m processing_ecmc.data_cli build  --manifest DIR/manifest.jsonl --output data/ecmc-synth
    python -m processing_ecmc.data_cli mmda   --csv mmda.csv --features-root feats/ --output data/mmda

`build` and `mmda` save the DatasetDict (atomically) and write every dropped row with its reason
to `<output>.dropped.jsonl` (ids, files and reasons only: never transcripts). Pushing a saved data
set to the Hub (private by default) is `python -m hub_card.push_dataset`.
"""

import argparse
import json
import logging
from pathlib import Path

from modeling_ecmc.atomic_io import write_text
from modeling_ecmc.vocabulary_ecmc import MIN_UTTERANCE_SECONDS
from .dataset_build import build_dataset
from .dataset_io import save_dataset
from .mmda import import_mmda


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
        command.add_argument("--min-duration", type=float, default=MIN_UTTERANCE_SECONDS,
                             help=f"drop shorter utterances (paper: {MIN_UTTERANCE_SECONDS:g} s)")
        command.add_argument("--max-duration", type=float, default=60.0, help="drop longer utterances")
        command.add_argument("--seed", type=int, default=0, help="seed of the by-subject split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    common = dict(min_duration=args.min_duration, max_duration=args.max_duration, seed=args.seed)
    if args.command == "build":
        _save(*build_dataset(args.manifest, data_root=args.data_root, **common), args.output)
    else:
        _save(*import_mmda(args.csv, media_root=args.media_root, features_root=args.features_root, **common), args.output)


if __name__ == "__main__":
    main()
