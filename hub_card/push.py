"""Push an ECMC checkpoint to the Hugging Face Hub: model + processor + custom code + pipeline + card.

    python -m hub_card.push --checkpoint outputs/demo/checkpoint --repo-id me/ecmc-demo \\
        --evaluation outputs/demo/evaluation/report.json              # private repository
    python -m hub_card.push ... --dry-run outputs/hub-upload          # write the folder, upload nothing
    python -m hub_card.push ... --public                              # only when asked

The checkpoint is loaded with this package's classes and saved again, so the folder always carries
the current code, `auto_map`, `custom_pipelines` and pipeline_ecmc.py (a checkpoint saved before the
pipeline existed gains it), with local paths removed from the config. The repository is created
**private** unless `--public`; an existing public repository is refused without `--public`.
Uploading needs a token (`hf auth login` or HF_TOKEN) and HF_HUB_OFFLINE unset.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from .cards import OURS, SUB_CONFIGS, base_model_id, build_dataset_card, build_model_card


class HubPushError(RuntimeError):
    """Nothing was uploaded; the message says why."""


def hub_token() -> str:
    """The user's Hub token, or a HubPushError that says how to get one (checked before any work)."""
    from huggingface_hub import constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise HubPushError("HF_HUB_OFFLINE is set: unset it (or set HF_HUB_OFFLINE=0) to upload; nothing was uploaded")
    token = get_token()
    if not token:
        raise HubPushError("no Hugging Face token: run `hf auth login` or set HF_TOKEN; nothing was uploaded")
    return token


def create_repo(api, repo_id: str, repo_type: str, private: bool, **kwargs) -> None:
    """Create the repository (private unless asked; `kwargs` go to `HfApi.create_repo`, e.g. a Space's
    `space_sdk`); refuse to upload into an existing public one unless `private=False`, so that
    private-by-default holds for repositories made elsewhere."""
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs)
    if private and not api.repo_info(repo_id, repo_type=repo_type).private:
        raise HubPushError(f"{repo_type} repository {repo_id} exists and is public: make it private first, or pass "
                           "--public to upload to it anyway; nothing was uploaded")


def assemble(checkpoint, output, repo_id: str, report: dict | None = None, dataset_name: str = "ECMC-Synth",
             dataset_id: str | None = None, base_model: list[str] | None = None) -> Path:
    """Write the folder to upload: safetensors weights, config, processor, code, pipeline, README.md."""
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise HubPushError(f"{output} is not empty: give a new or empty folder")
    model = ECMCForConditionalGeneration.from_pretrained(checkpoint)
    processor = ECMCProcessor.from_pretrained(checkpoint, trust_remote_code=False)  # never runs the folder's code
    card = build_model_card(model, processor, repo_id, report, dataset_name, dataset_id, base_model)
    for name in SUB_CONFIGS:  # a local folder means nothing on the Hub and leaks the local layout
        sub = getattr(model.config, name, None)
        if sub is not None and os.path.isabs(sub.name_or_path or ""):
            sub.name_or_path = base_model_id(sub.name_or_path) or ""
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    processor.save_pretrained(output)
    card.save(output / "README.md")
    return output


def upload(folder, repo_id: str, private: bool = True, repo_type: str = "model") -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=hub_token())
    create_repo(api, repo_id, repo_type, private)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                               commit_message="Upload ECMC checkpoint (model, processor, code, pipeline, card)")
    return commit.commit_url


def upload_dataset_card(dsd, repo_id: str, private: bool = True) -> None:
    """Create the data set repository (private unless asked) and upload its card from the template.
    Call before `push_dataset.push_dataset`: `datasets`' push_to_hub keeps an existing card's text
    and metadata and only adds the split and feature metadata."""
    from huggingface_hub import HfApi

    token = hub_token()
    create_repo(HfApi(token=token), repo_id, "dataset", private)
    build_dataset_card(dsd, repo_id).push_to_hub(repo_id, repo_type="dataset", token=token,
                                                 commit_message="Data set card (ECMC template)")


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a saved ECMC checkpoint folder")
    parser.add_argument("--repo-id", required=True, help="USER/NAME of the Hub model repository")
    parser.add_argument("--evaluation", type=Path, help="report.json of evaluation_ecmc.run_evaluation (fills model-index)")
    parser.add_argument("--dataset-name", default="ECMC-Synth", help="name of the evaluation data set (default: ECMC-Synth)")
    parser.add_argument("--dataset-id", help="Hub id of the training / evaluation data set, if pushed")
    parser.add_argument("--base-model", action="append", help="Hub id of a pretrained component (repeatable; "
                                                               "default: read from the checkpoint's config)")
    parser.add_argument("--public", action="store_true", help="make the repository public (default: private)")
    parser.add_argument("--dry-run", type=Path, metavar="OUT_DIR", help="write the folder that would be uploaded; upload nothing")
    args = parser.parse_args(argv)
    try:
        if not args.dry_run:
            hub_token()  # fail before the slow part
        if not (args.checkpoint / "config.json").is_file():
            raise HubPushError(f"{args.checkpoint}: not a checkpoint folder (no config.json)")
        report = json.loads(args.evaluation.read_text(encoding="utf-8")) if args.evaluation else None
        if report is not None and OURS not in report.get("metrics", {}):
            raise HubPushError(f"{args.evaluation}: not a report.json of evaluation_ecmc.run_evaluation "
                               f"(no metrics for {OURS!r})")
        kwargs = dict(report=report, dataset_name=args.dataset_name, dataset_id=args.dataset_id,
                      base_model=args.base_model)
        if args.dry_run:
            folder = assemble(args.checkpoint, args.dry_run, args.repo_id, **kwargs)
            print(f"[ecmc] dry run: the folder for {args.repo_id} is {folder.resolve()} (nothing uploaded)")
            return
        with tempfile.TemporaryDirectory(prefix="ecmc-hub-") as tmp:
            folder = assemble(args.checkpoint, tmp, args.repo_id, **kwargs)
            url = upload(folder, args.repo_id, private=not args.public)
        print(f"[ecmc] pushed {args.checkpoint} to {args.repo_id} ({'public' if args.public else 'private'}): {url}")
    except (HubPushError, OSError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main(prog="python -m hub_card.push")
