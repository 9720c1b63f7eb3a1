"""Build the offline-default ECMC (untrained BridgeNet) and save a checkpoint folder that loads with
`AutoModel/AutoProcessor.from_pretrained(folder, trust_remote_code=True)`.

    python -m modeling_ecmc.build_offline --output outputs/offline-default
"""

import argparse
import logging
from pathlib import Path

from .presets import build_offline_default


def save_checkpoint(model, processor, output: Path) -> Path:
    """Model + processor into `output`, atomically (an existing folder is replaced only when done)."""
    from .atomic_io import atomic_folder

    with atomic_folder(output) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("outputs/offline-default"), help="checkpoint folder to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model, processor = build_offline_default()
    save_checkpoint(model, processor, args.output)
    print(f"[ecmc] offline-default checkpoint (untrained BridgeNet) written to {args.output.resolve()}")


if __name__ == "__main__":
    main()
