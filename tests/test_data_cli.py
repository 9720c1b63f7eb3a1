"""The data set command line on a real ECMC-Synth build: saved DatasetDict, drop report, no transcripts printed."""

import json

from processing_ecmc.data_cli import main
from processing_ecmc.dataset_io import load_dataset_dict
from processing_ecmc.synth import generate_synth


def test_build_command_saves_dataset_and_drop_report(tmp_path, capsys):
    manifest = generate_synth(tmp_path / "synth", preset="tiny", seed=3, progress=False)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    # min-duration above some utterances' length: those rows must be reported, never dropped silently
    cutoff = sorted(r["end"] - r["start"] for r in rows)[len(rows) // 3]
    main(["build", "--manifest", str(manifest), "--output", str(tmp_path / "ds"), "--min-duration", str(cutoff)])
    dsd = load_dataset_dict(tmp_path / "ds")
    dropped = [json.loads(line) for line in (tmp_path / "ds.dropped.jsonl").read_text().splitlines()]
    assert sum(len(s) for s in dsd.values()) + len(dropped) == len(rows)
    assert dropped and all("too short" in d["reason"] for d in dropped)
    printed = capsys.readouterr()
    assert "written to" in printed.out
    assert not any(r["transcript"] in printed.out + printed.err for r in rows)
