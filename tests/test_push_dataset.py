"""hub_card.push_dataset: a data set goes to the Hub private by default, with relative paths and its card."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from hub_card.push_dataset import push_dataset  # noqa: E402
from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.dataset_io import data_root_of  # noqa: E402

try:
    from dataset_fixtures import row, write_jsonl
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import row, write_jsonl


def test_push_is_private_with_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", [row("a", video_path="v/a.mp4", end=3)]), check_media=False)
    calls = []

    def fake_push(self, repo_id, **kwargs):
        descriptions = " ".join(s.info.description for s in self.values())
        calls.append((repo_id, kwargs, [r["video_path"] for s in self.values() for r in s], descriptions))

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", fake_push)
    push_dataset(dsd, "me/ecmc-private")
    repo_id, kwargs, paths, descriptions = calls[0]
    assert repo_id == "me/ecmc-private" and kwargs["private"] is True
    assert paths == ["v/a.mp4"]
    assert str(tmp_path) not in descriptions  # no local folder layout in the pushed card either
    push_dataset(dsd, "me/public", private=False)
    assert calls[1][1]["private"] is False
    # the caller's data set keeps its absolute paths and data_root
    assert [r["video_path"] for s in dsd.values() for r in s] == [str((tmp_path / "v" / "a.mp4").resolve())]
    assert data_root_of(dsd) == str(tmp_path.resolve())


def test_command_pushes_the_card_then_the_data_privately_unless_public(tmp_path, monkeypatch, capsys):
    import hub_card.push
    from hub_card import push_dataset as command
    from processing_ecmc.dataset_io import save_dataset

    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", [row("a", end=3)]), check_media=False)
    saved = save_dataset(dsd, tmp_path / "ds")
    calls = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo_id, **kw: calls.append(("data", repo_id, kw)))
    monkeypatch.setattr(hub_card.push, "upload_dataset_card",
                        lambda dsd, repo_id, private=True: calls.append(("card", repo_id, private)))
    command.main(["--dataset", str(saved), "--repo-id", "me/interviews"])
    command.main(["--dataset", str(saved), "--repo-id", "me/interviews", "--public"])
    assert calls == [("card", "me/interviews", True), ("data", "me/interviews", {"private": True, "token": None}),
                     ("card", "me/interviews", False), ("data", "me/interviews", {"private": False, "token": None})]
    out = capsys.readouterr().out
    assert "to me/interviews (private)" in out and "to me/interviews (public)" in out

    def refuse(dsd, repo_id, private=True):
        raise hub_card.push.HubPushError("no Hugging Face token: run `hf auth login`; nothing was uploaded")

    calls.clear()
    monkeypatch.setattr(hub_card.push, "upload_dataset_card", refuse)
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--dataset", str(saved), "--repo-id", "me/interviews"], prog="push-test")
    assert exit_info.value.code == 2 and not calls  # nothing pushed after the card failed
    assert "push-test: error: no Hugging Face token" in capsys.readouterr().err
