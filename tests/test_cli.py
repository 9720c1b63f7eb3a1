"""The `ecmc` command: help for every verb, `ecmc caption` / `ecmc profile` on a real MP4 with a
saved checkpoint, and clear one-line errors with a non-zero exit for a bad verb or a bad file."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from media_fixtures import make_video

import ecmc_cli

ECMC = shutil.which("ecmc", path=str(Path(sys.executable).parent))


def run_ecmc(*args, timeout=600):
    assert ECMC, "the `ecmc` console script is not installed: rerun scripts/setup.sh (pip install -e .)"
    return subprocess.run([ECMC, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_top_level_help_lists_every_verb():
    result = run_ecmc("--help")
    assert result.returncode == 0, result.stderr
    for verb in ecmc_cli.COMMANDS:
        assert re.search(rf"\n    {verb}\s", result.stdout), verb  # a long verb's help goes on the next line
    assert "ecmc COMMAND --help" in result.stdout


@pytest.mark.parametrize("verb", list(ecmc_cli.COMMANDS))
def test_each_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ecmc_cli.main([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: ecmc {verb}" in capsys.readouterr().out


def test_unknown_verb_is_an_error():
    result = run_ecmc("captoin", "x.mp4")
    assert result.returncode == 2
    assert "unknown command 'captoin'" in result.stderr and "caption" in result.stderr


@pytest.mark.slow
def test_caption_and_profile_a_real_mp4(tiny_checkpoint, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", seconds=3, fps=10, size=(64, 64), audio_rate=16000)
    result = run_ecmc("caption", "--checkpoint", tiny_checkpoint, clip, "--start", 0.5, "--end", 2.5,
                      "--transcript", "I am not sure what day it is.", "--max-new-tokens", 4)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"# video={clip} start=0.5 end=2.5" in result.stdout

    out = tmp_path / "captions.jsonl"
    result = run_ecmc("caption", "--checkpoint", tiny_checkpoint, clip, clip, "--end", 2.0, "--batch-size", 2,
                      "--max-new-tokens", 4, "--output", out)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["video"] for r in rows] == [str(clip)] * 2 and {"emotion", "cognition", "caption"} <= set(rows[0])
    assert str(out.resolve()) in result.stdout

    result = run_ecmc("profile", "--checkpoint", tiny_checkpoint, "--caption", "Emotion:\nSad.\n\nCognition:\nNone.",
                      "--max-new-tokens", 4, "--output", tmp_path / "profile.txt")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "profile.txt").is_file()


@pytest.mark.slow
def test_bad_file_is_one_clear_line(tiny_checkpoint, tmp_path):
    result = run_ecmc("caption", "--checkpoint", tiny_checkpoint, tmp_path / "missing.mp4")
    assert result.returncode == 1
    assert f"ecmc caption: error: {tmp_path / 'missing.mp4'}: file not found" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_ecmc("caption", "--checkpoint", tmp_path, "--transcript", "hello")
    assert result.returncode == 1 and "not a checkpoint folder" in result.stderr


def test_init_assembles_only_presets_built_from_components(tmp_path):
    """`ecmc init` with a config that starts from the offline preset (built by train.py itself) is one
    clear line and exit 1; a paper config whose component resolves nowhere names the part."""
    root = Path(__file__).resolve().parents[1]
    result = run_ecmc("init", "--config", root / "configs" / "offline_demo.yaml")
    assert result.returncode == 1 and "nothing to assemble" in result.stderr
    result = run_ecmc("init", "--config", root / "configs" / "paper.yaml", "--set", f"output_dir={tmp_path / 'out'}",
                      "--set", "model.components.video=/nowhere/videomae")
    assert result.returncode == 1
    assert "ecmc init: error: model.components.video: cannot read the config of '/nowhere/videomae'" in result.stderr
    assert not (tmp_path / "out").exists()
