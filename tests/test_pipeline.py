"""The "ecmc-captioning" pipeline on a saved checkpoint, in a fresh Python where our packages cannot
be imported: real ECMC-Synth media (rendered face, espeak-ng speech), single and batched (batched ==
one at a time, greedy), the profile entry, bad inputs, and nothing sensitive in the log."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from media_fixtures import make_audio, make_video, write_bytes

from modeling_ecmc.vocabulary_ecmc import format_caption

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "ecmc_pipeline.ipynb"

OUR_PACKAGES = ("modeling_ecmc", "processing_ecmc", "evaluation_ecmc", "training_ecmc", "hub_card", "ecmc_cli")

FRESH_PYTHON = textwrap.dedent(
    """
    import json, sys
    for name in %r:
        sys.modules[name] = None  # as if our packages were not installed
    import transformers
    from transformers import pipeline
    transformers.logging.set_verbosity_info()  # anything the pipeline logs lands on stderr
    folder, spec = sys.argv[1], json.load(open(sys.argv[2]))
    pipe = pipeline(model=folder, trust_remote_code=True, max_new_tokens=12)
    utterances = spec["utterances"]
    single = [pipe(u) for u in utterances]
    batched = pipe(utterances, batch_size=3)  # batches of 3 and 1
    listed = pipe(utterances[:2])  # a list without batch_size
    profile = pipe({"captions": spec["captions"]}, max_new_tokens=16)
    errors = {}
    for name, bad in spec["bad"].items():
        try:
            pipe(bad)
            errors[name] = None
        except Exception as exc:
            errors[name] = {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                            "message": str(exc)}
    print(json.dumps({"task": pipe.task, "class": type(pipe).__name__, "module": type(pipe).__module__,
                      "single": single, "batched": batched, "listed": listed, "profile": profile,
                      "errors": errors}))
    """
    % (OUR_PACKAGES,)
)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from processing_ecmc.synth import generate_synth

    root = tmp_path_factory.mktemp("synth")
    generate_synth(root, preset="tiny", seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def synth_rows(synth_dir):
    rows = [json.loads(line) for line in (synth_dir / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        row["video_path"] = str(synth_dir / row["video_path"])
    return rows


@pytest.fixture(scope="module")
def bad_media(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-media")
    return {
        "empty": write_bytes(root / "empty.mp4", b""),
        "text": write_bytes(root / "notes.txt", "not a video at all\n".encode()),
        "silent": make_video(root / "silent.mp4", seconds=2, fps=10, size=(64, 64)),  # no audio track
        "tone": make_audio(root / "tone.wav", seconds=2),  # no video stream
    }


def utterances(rows):
    r0, r1, r2 = rows[:3]
    return [
        {"video": r0["video_path"], "start": r0["start"], "end": r0["end"], "transcript": r0["transcript"]},
        {"video": r1["video_path"], "start": r1["start"], "end": r1["end"]},  # no transcript
        {"transcript": r2["transcript"], "language": "en"},  # text only
        {"audio": r2["video_path"], "start": r2["start"], "end": r2["end"], "transcript": r2["transcript"]},
    ]


def bad_inputs(rows, media):
    ok = {"video": rows[0]["video_path"], "start": rows[0]["start"], "end": rows[0]["end"]}
    return {
        "wrong_file_type": {"video": str(media["text"])},
        "empty_file": {"video": str(media["empty"]), "transcript": "hello"},
        "missing_file": {"video": "/nowhere/clip.mp4"},
        "audio_file_without_audio_track": {"audio": str(media["silent"])},
        "video_file_without_video": {"video": str(media["tone"])},
        "empty_transcript": {**ok, "transcript": "   "},
        "no_modality": {"start": 1.0},
        "unknown_key": {"vidoe": str(media["silent"])},
        "not_a_dict": str(media["silent"]),
        "empty_profile": {"captions": []},
    }


def test_pipeline_in_fresh_python(offline_checkpoint, synth_rows, bad_media, tmp_path):
    spec = {"utterances": utterances(synth_rows), "bad": bad_inputs(synth_rows, bad_media),
            "captions": [format_caption(r["emotion_caption"], r["cognition_caption"]) for r in synth_rows[:3]]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "run.py").write_text(FRESH_PYTHON)
    result = subprocess.run([sys.executable, "run.py", str(offline_checkpoint), "spec.json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["task"] == "ecmc-captioning" and report["class"] == "ECMCCaptioningPipeline"
    assert report["module"].startswith("transformers_modules")  # the checkpoint's copy, not our package

    single, batched = report["single"], report["batched"]
    assert len(single) == len(batched) == 4
    for out in single:
        assert set(out) == {"emotion", "cognition", "caption", "generated_text"} and out["caption"]
        assert out["generated_text"] == out["caption"]  # transformers' key beside ours
    assert batched == single  # greedy: batching does not change the text
    assert report["listed"] == single[:2]
    assert len({out["caption"] for out in single}) > 1  # the captions depend on the input

    assert set(report["profile"]) == {"profile"} and report["profile"]["profile"]

    errors = report["errors"]
    assert all(errors[name] is not None for name in spec["bad"]), errors
    for name, error in errors.items():
        assert "ValueError" in error["mro"], (name, error)
    assert errors["wrong_file_type"]["type"] == "MediaError" and "notes.txt" in errors["wrong_file_type"]["message"]
    assert "empty.mp4" in errors["empty_file"]["message"] and "empty" in errors["empty_file"]["message"]
    assert "/nowhere/clip.mp4: file not found" in errors["missing_file"]["message"]
    assert errors["audio_file_without_audio_track"]["type"] == "NoAudioTrackError"
    assert "silent.mp4 has no audio track" in errors["audio_file_without_audio_track"]["message"]
    assert "tone.wav has no video stream" in errors["video_file_without_video"]["message"]
    assert "transcript" in errors["empty_transcript"]["message"] and "empty" in errors["empty_transcript"]["message"]
    assert "at least one of 'video', 'audio', 'transcript'" in errors["no_modality"]["message"]
    assert "vidoe" in errors["unknown_key"]["message"]
    assert "takes a dict" in errors["not_a_dict"]["message"]
    assert "non-empty list" in errors["empty_profile"]["message"]

    # never logged: transcripts, captions, the profile
    sensitive = [r["transcript"] for r in synth_rows[:3]] + [o["caption"] for o in single]
    sensitive += [report["profile"]["profile"]]
    assert not [s for s in sensitive if s.strip() and s in result.stderr]


def test_resaved_old_checkpoint_registers_the_pipeline(tiny_checkpoint, tmp_path):
    from transformers import pipeline

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    old = tmp_path / "old"  # as saved before the pipeline existed
    shutil.copytree(tiny_checkpoint, old)
    (old / "pipeline_ecmc.py").unlink()
    (old / "generation_ecmc.py").unlink()
    config = json.loads((old / "config.json").read_text())
    config.pop("custom_pipelines")
    (old / "config.json").write_text(json.dumps(config))

    model, processor = ECMCForConditionalGeneration.from_pretrained(old), ECMCProcessor.from_pretrained(old)
    new = tmp_path / "new"
    model.save_pretrained(new)
    processor.save_pretrained(new)
    saved = json.loads((new / "config.json").read_text())["custom_pipelines"]
    assert saved == {"ecmc-captioning": {"impl": "pipeline_ecmc.ECMCCaptioningPipeline",
                                         "pt": ["AutoModelForCausalLM"], "type": "multimodal"}}
    assert (new / "pipeline_ecmc.py").is_file() and (new / "generation_ecmc.py").is_file()

    # inside our package the task is registered: a loaded model and processor make a pipeline directly
    pipe = pipeline("ecmc-captioning", model=model, processor=processor, max_new_tokens=4)
    out = pipe({"transcript": "I keep forgetting names."})
    assert set(out) == {"emotion", "cognition", "caption", "generated_text"}


def test_example_notebook_runs(offline_checkpoint, synth_dir, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("ECMC_CHECKPOINT", str(offline_checkpoint))
    monkeypatch.setenv("ECMC_SYNTH_DIR", str(synth_dir))
    monkeypatch.setenv("ECMC_MAX_NEW_TOKENS", "12")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in notebook.cells
               if cell.cell_type == "code"]
    assert "ecmc-captioning ECMCCaptioningPipeline" in printed[1]
    assert printed[2].strip() and printed[4].strip()  # a caption, a profile
    assert "MediaError - no-such-session.mp4: file not found" in printed[5]


def test_profile_model_writes_the_profiles(tiny_checkpoint, caplog):
    """`profile_model=`: another LLM writes the profiles (e.g. the untouched LLM when stage 2 merged a
    LoRA into the decoder); without it such a checkpoint warns that its decoder answers with captions."""
    import copy

    import torch
    from transformers import pipeline

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.generation_ecmc import generate_texts
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    model, processor = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint), ECMCProcessor.from_pretrained(tiny_checkpoint)
    other = copy.deepcopy(model.language_model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p), alpha=0.5)
    captions = [format_caption("A flat voice: negative emotion.", "No obvious cognitive impairment.")]
    prompt = [processor.profile_prompt(captions)]
    expected = generate_texts(other, processor.tokenizer, prompt, 16, 1)[0]
    assert expected != generate_texts(model.language_model, processor.tokenizer, prompt, 16, 1)[0]

    pipe = pipeline("ecmc-captioning", model=model, processor=processor, profile_model=other)
    assert pipe({"captions": captions}, max_new_tokens=16)["profile"] == expected

    model.config.decoder_lora = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}
    own = pipeline("ecmc-captioning", model=model, processor=processor)
    with caplog.at_level("WARNING"):
        own({"captions": captions}, max_new_tokens=4)
    assert "pass profile_model=" in caplog.text
