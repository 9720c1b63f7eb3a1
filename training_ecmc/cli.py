"""The training command line (`train.py`, `ecmc train`): parse the options, load the config, run
`training_ecmc.run.run_training`.

`main(argv, readback=...)` takes the read-back scorer factory of `stage2.select_by: readback` from
its caller, `(processor, cfg) -> scorer(model, dataset) -> float` (see `training_ecmc.run`): the entry
points pass one that imports `evaluation_ecmc.selection.readback_scorer` only when it is called.
"""

import argparse
import logging
from pathlib import Path

from .config import load_config
from .run import run_training


def build_parser(description: str | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML under configs/ (defaults: training_ecmc/config.py)")
    parser.add_argument("--stage", choices=["1", "2", "all"], default="all", help="which stage(s) to run")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    return parser


def main(argv=None, readback=None, description: str | None = None, prog: str | None = None):
    """Train as the command line `argv` says; `readback`: the scorer factory (module docstring);
    `description` / `prog`: the help text and program name (train.py passes its usage)."""
    args = build_parser(description, prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.set)
    stages = (1, 2) if args.stage == "all" else (int(args.stage),)
    final, _ = run_training(cfg, stages, args.resume, readback=readback)
    print(f"[ecmc] trained checkpoint written to {final.resolve()}")
