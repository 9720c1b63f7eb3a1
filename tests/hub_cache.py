"""A Hugging Face cache that holds given repositories, as if they had been downloaded: with
HF_HUB_OFFLINE=1 and HF_HOME pointing at it, `hf_hub_download` / `from_pretrained(repo_id)` read
them by hub id, the way a Space reads its checkpoint.

    cache_repo(tmp_path / "hf-home", "someone/ecmc-demo", checkpoint_folder)
"""

import shutil
from pathlib import Path

COMMIT = "0" * 40  # any 40-hex revision: the cache maps refs/main to it


def cache_repo(hf_home: Path, repo_id: str, folder: Path, repo_type: str = "model") -> Path:
    """Copy `folder` into the cache as `repo_id`'s main revision; returns the snapshot folder."""
    repo = Path(hf_home) / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    return snapshot
