"""Bad inputs across the package (issue 8). Each one gets a clear error -- the exception type AND a
message naming the file (or row / key) and the problem -- or a reported drop with its reason, or,
where the input is merely unusual (another sample rate, six channels), a correct normalisation. An
autouse fixture hashes every file of a set of outputs written before the module's tests (a saved
data set and its drop report, a feature cache, a stage checkpoint with its log, an evaluation
report) before and after *each* test: nothing already written may change. The data CLI, training
and evaluation cases aim their failing runs at exactly those outputs.

89 distinct bad inputs -- 82 clear errors or reported drops, 7 handled by normalising or cleaning
up (5 unusual media, an over-long transcript, a dead writer's .tmp) -- none repeated from the
other test files (tests/test_media.py, test_datasets.py, test_feature_cache.py, test_processing.py,
test_modeling.py and test_train.py already cover missing / empty / random-byte / unknown-container
media, bad segments, malformed JSON lines, latin-1 CSVs, out-of-range labels, duplicate ids, `../`
paths in video_path, NaN and 3-D MMDA features, flipped / truncated cache files, unknown config
keys):

- media through the processor (MEDIA_ERRORS, 11): a PNG named .mp4, an MP4 cut in half (index at
  the end), a cut "faststart" MP4 (index intact, data missing), a text file named .wav, WAVs
  holding NaN / Inf samples, a 5 ms clip, a 61 s clip (longer than `max_audio_seconds`), a folder
  named .mp4, a segment past the end of a truncated WAV, a separate audio file that has no audio;
- unusual media normalised correctly (MEDIA_NORMALISED, 5): 8 kHz, 1 kHz and 96 kHz input rates,
  six channels, a one-frame video;
- decoded inputs to the processor and the model (DIRECT_ERRORS, 11 + 1 normalised): bytes, lone
  surrogates, a number as transcript; stereo, NaN and empty waveforms; float frames, a single image
  as frames; a non-text caption and caption part; Inf features into the model; a 200 000-word
  transcript (truncated to `max_text_tokens`);
- manifests for `build_dataset` (MANIFEST_ERRORS, 17): empty file, a JSON array, UTF-16, a CSV row
  with an extra field, a duplicated CSV column, NUL in a path, a symlink to /etc/passwd inside
  the data root, `../../etc/passwd` as audio_path, `~/...`, an escaping features path, a JSON list
  as transcript, a lone-surrogate transcript, `true` as emotion label, 0.5 as emotion label,
  `nan` as start, conflicting subject-level depression labels, a folder as manifest;
- usable-but-bad rows dropped with their reason (MANIFEST_DROPS, 5): the PNG, the cut MP4, the NaN
  WAV, a folder as video, a segment beyond a truncated WAV;
- saved data sets edited by hand (SAVED_DATASET_ERRORS, 3): emotion label 5, a cognition flag 2,
  one utterance id in two splits;
- MMDA (MMDA_DROPS 5 + MMDA_ERRORS 2): text bytes named .npy, Inf, an empty (0 x d) array, a
  string array, hdTimeStart after hdTimeEnd; a bad time_unit, a file as features_root;
- the feature cache (CACHE_ERRORS 4 + 2): a zero-byte cache file, a NaN file with a valid
  checksum, another format version, a foreign safetensors file, a half-written `.tmp` left by a
  dead process (removed); a pre-extracted .npy with NaN given straight to `build_feature_cache`;
- configs (CONFIG_ERRORS, 16): YAML syntax error, latin-1 bytes, a duplicated key, a list at the
  top level, `precision: fp8`, batch size 0, a negative learning rate, an unknown scheduler, an
  unknown `model.overrides` field, an unknown LoRA key, `seed: true`, a required key set to null,
  warmup_ratio 1.5, `--set stage1=3`, `--set` with broken YAML, an unknown evaluation split;
- training (TRAINING, 4): a checkpoint holding only pickled weights (`pytorch_model.bin`), a
  missing checkpoint folder, a truncated `model.safetensors`, half-written and size-mismatched
  `checkpoint-N` folders on `--resume`;
- evaluation (2) and the data CLI (1): an empty split, a missing checkpoint; a bad manifest
  aimed at an existing data set.

Not handled well before this file, fixed in the library: a PNG / cut MP4 was "has no audio track"
or kept (media_duration fell back to the audio track); bytes, lone surrogates, numbers, stereo /
NaN / empty waveforms, float frames and non-text captions reached the tokenizer or the model
(obscure TypeErrors, or silently wrong shapes); an empty manifest gave an empty data set; NUL in a
path was a bare "embedded null byte"; list / dict transcripts were stringified; `true` was a
positive valence; conflicting subject labels, hand-edited labels and ids shared by two splits were
accepted; a text file named .npy was "pickled data"; a NaN .npy or a crafted NaN cache file
reached training; YAML errors named "<unicode string>" instead of the file, a latin-1 config was a
bare UnicodeDecodeError, duplicate keys, `precision: fp8` (silently fp32), batch size 0, negative
rates, unknown schedulers / overrides / LoRA keys, `seed: true` and null required keys were
accepted; pickled checkpoints were loaded, a missing one was a "Repo id" error, a truncated one an
unnamed SafetensorError; evaluation loaded the model before finding its split empty.
"""

import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from media_fixtures import make_audio, make_video, run_ffmpeg

from processing_ecmc.dataset_build import build_dataset
from processing_ecmc.dataset_io import load_dataset_dict, save_dataset
from processing_ecmc.mmda import import_mmda
from processing_ecmc.cache_build import build_feature_cache
from processing_ecmc.cache_fingerprint import cache_fingerprint
from processing_ecmc.cache_store import CacheError, cache_file_name, load_cached_features
from modeling_ecmc.media_ecmc import MediaError
from training_ecmc.config import ConfigError, load_config

SECRET = "SECRET-TRANSCRIPT-bad-inputs"


# ----------------------------------------------------------------------------- fixtures
def float_wav(path: Path, samples, rate=16000) -> Path:
    """A mono 32-bit float WAV (format 3), which can hold NaN and Inf (PCM cannot)."""
    payload = np.asarray(samples, dtype="<f4").tobytes()
    header = (b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(payload)))
    path.write_bytes(header + payload)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-media")
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=1:duration=1", "-frames:v", "1", str(d / "image.png"))
    (d / "image.mp4").write_bytes((d / "image.png").read_bytes())
    good = make_video(d / "good.mp4", 3, fps=10, size=(64, 48), audio_rate=16000)
    data = good.read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    run_ffmpeg("-i", str(good), "-c", "copy", "-movflags", "+faststart", str(d / "faststart.mp4"))
    fast = (d / "faststart.mp4").read_bytes()
    (d / "cut_faststart.mp4").write_bytes(fast[: len(fast) // 2])  # index intact, frames missing
    (d / "notes.wav").write_text("these are interview notes, not audio\n" * 40)
    tone = (0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    float_wav(d / "nan.wav", np.where(np.arange(16000) // 100 == 3, np.nan, tone))
    float_wav(d / "inf.wav", np.where(np.arange(16000) == 5, np.inf, tone))
    make_audio(d / "tiny.wav", 0.005, rate=16000)
    make_audio(d / "long.wav", 61, rate=8000)
    (d / "folder.mp4").mkdir()
    full = make_audio(d / "full.wav", 3.0, rate=16000)
    (d / "cut.wav").write_bytes(full.read_bytes()[: 44 + 16000 * 2])  # 3 s announced, 1 s present
    make_audio(d / "rate8k.wav", 1.0, rate=8000)
    make_audio(d / "rate1k.wav", 1.0, rate=1000, frequency=100)
    make_audio(d / "rate96k.flac", 1.0, rate=96000)
    make_audio(d / "six.wav", 1.0, rate=48000, channels=6)
    make_video(d / "one_frame.mp4", 0.1, fps=10, size=(64, 48))
    make_video(d / "silent.mp4", 2, fps=10, size=(64, 48))
    return d


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    """(model, processor) of the tiny checkpoint, loaded with our own classes."""
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    model = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint).eval()
    return model, ECMCProcessor.from_pretrained(tiny_checkpoint, trust_remote_code=False)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory, tiny_synth_dataset, tiny_checkpoint, tiny):
    """Outputs of earlier runs that no bad input may damage: a data set (+ its drop report), a
    feature cache, a finished stage-1 checkpoint with its log, an evaluation report."""
    from evaluation_ecmc.report import write_report
    from training_ecmc.trainer import mark_complete

    root = tmp_path_factory.mktemp("written")
    dsd = load_dataset_dict(tiny_synth_dataset)
    save_dataset(dsd, root / "dataset")
    (root / "dataset.dropped.jsonl").write_text('{"row": 0, "reason": "too short: 1.00 s"}\n')
    model, processor = tiny
    build_feature_cache(model, processor, dsd["validation"], root / "cache", progress=False)
    best = root / "run" / "stage1" / "best"
    shutil.copytree(tiny_checkpoint, best)
    mark_complete(best)
    (root / "run" / "stage1" / "log_history.json").write_text(json.dumps([{"step": 1, "loss": 1.0}]))
    write_report(root / "run" / "evaluation", "earlier report", [("Numbers", "| a |\n|---|\n| 1 |")], data={"a": 1})
    return root


@pytest.fixture(autouse=True)
def nothing_written_is_damaged(written):
    before = snapshot(written)
    yield
    assert snapshot(written) == before, "a bad input changed an output written before it"


def check_message(error, *fragments):
    message = str(error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert SECRET not in message


# ----------------------------------------------------------------------------- media through the processor
MEDIA_ERRORS = {  # name: (processor kwargs given the media folder, exception, fragments of the message)
    "PNG named .mp4": (lambda d: dict(videos=str(d / "image.mp4")), MediaError,
                       ["image.mp4", "cannot be opened as video"]),
    "MP4 cut in half": (lambda d: dict(videos=str(d / "cut.mp4")), MediaError,
                        ["cut.mp4", "cannot be opened as video"]),
    "faststart MP4 cut in half": (lambda d: dict(videos=str(d / "cut_faststart.mp4")), MediaError,
                                  ["cut_faststart.mp4", "corrupt"]),
    "text named .wav": (lambda d: dict(audios=str(d / "notes.wav")), MediaError,
                        ["notes.wav", "cannot be opened as audio"]),
    "NaN samples": (lambda d: dict(audios=str(d / "nan.wav")), MediaError, ["nan.wav", "NaN or infinite samples"]),
    "Inf samples": (lambda d: dict(audios=str(d / "inf.wav")), MediaError, ["inf.wav", "NaN or infinite samples"]),
    "5 ms clip": (lambda d: dict(audios=str(d / "tiny.wav")), MediaError, ["tiny.wav", "too short"]),
    "61 s clip": (lambda d: dict(audios=str(d / "long.wav")), MediaError,
                  ["long.wav", "longer than max_audio_seconds=60"]),
    "folder named .mp4": (lambda d: dict(videos=str(d / "folder.mp4")), MediaError, ["folder.mp4", "is a directory"]),
    "segment past a truncated WAV": (lambda d: dict(audios=str(d / "cut.wav"), starts=0.5, ends=2.5), MediaError,
                                     ["cut.wav", "beyond the audio duration"]),
    "audio file without audio": (lambda d: dict(audios=str(d / "silent.mp4")), MediaError,
                                 ["silent.mp4", "no audio track"]),
}


@pytest.mark.parametrize("case", MEDIA_ERRORS)
def test_bad_media_is_a_clear_error(media, tiny, case):
    make_kwargs, error_type, fragments = MEDIA_ERRORS[case]
    _, processor = tiny
    with pytest.raises(error_type) as info:
        processor(transcripts=f"{SECRET} words", **make_kwargs(media))
    check_message(info.value, *fragments)


MEDIA_NORMALISED = {  # name: (file, seconds of audio or None, dominant frequency)
    "8 kHz input": ("rate8k.wav", 1.0, 440),
    "1 kHz input": ("rate1k.wav", 1.0, 100),
    "96 kHz input": ("rate96k.flac", 1.0, 440),
    "six channels": ("six.wav", 1.0, 440),
    "one-frame video": ("one_frame.mp4", None, None),
}


@pytest.mark.parametrize("case", MEDIA_NORMALISED)
def test_unusual_media_is_normalised(media, tiny, case, monkeypatch):
    from media_fixtures import dominant_frequency

    name, seconds, frequency = MEDIA_NORMALISED[case]
    _, processor = tiny
    monkeypatch.setattr(processor, "min_seconds", 0)  # these clips are under the paper's 2 s on purpose
    if seconds is None:  # a single frame is repeated to num_frames; no audio track: audio marked missing
        out = processor(videos=str(media / name))
        assert out["pixel_values_videos"].shape[1] == processor.num_frames
        assert out["modality_mask"].tolist() == [[True, False, False]]
        return
    out = processor(audios=str(media / name))
    length = int(out["audio_attention_mask"].sum())
    assert length == round(seconds * processor.sampling_rate)  # resampled to 16 kHz mono, exactly
    from modeling_ecmc.media_ecmc import load_audio

    wave = load_audio(media / name, sample_rate=processor.sampling_rate)
    assert wave.ndim == 1 and np.isfinite(wave).all()
    assert dominant_frequency(wave, processor.sampling_rate) == pytest.approx(frequency, abs=5)


# ----------------------------------------------------------------------------- decoded inputs
def _image(shape=(4, 32, 32, 3), dtype=np.uint8):
    return np.zeros(shape, dtype=dtype)


DIRECT_ERRORS = {  # name: (call(processor, model), fragments); all ValueError
    "bytes transcript": (lambda p, m: p(transcripts=b"caf\xe9 au lait"), ["utterance 0", "decode the bytes as UTF-8"]),
    "lone-surrogate transcript": (lambda p, m: p(transcripts="caf\udce9"), ["utterance 0", "not valid Unicode"]),
    "number as transcript": (lambda p, m: p(transcripts=[42]), ["utterance 0", "must be text (str), got int"]),
    "stereo waveform": (lambda p, m: p(waveforms=[np.zeros((2, 16000), np.float32)]), ["utterance 0", "1-D mono"]),
    "NaN waveform": (lambda p, m: p(waveforms=[np.full(16000, np.nan, np.float32)]), ["utterance 0", "NaN or Inf"]),
    "empty waveform": (lambda p, m: p(waveforms=[np.zeros(0, np.float32)]), ["utterance 0", "with samples"]),
    "float frames": (lambda p, m: p(frames=[_image(dtype=np.float64)]), ["utterance 0", "uint8"]),
    "an image as frames": (lambda p, m: p(frames=[_image((32, 32, 3))]), ["utterance 0", "(frames >= 1, height, width, 3)"]),
    "non-text caption": (lambda p, m: p(transcripts="fine", captions=[123]), ["captions", "must be text"]),
    "non-text caption part": (lambda p, m: p(transcripts="fine", captions=[("calm", None)]), ["caption part", "NoneType"]),
    "Inf features into the model": (lambda p, m: m.model(text_features=torch.full((1, 5, m.config.feature_size("text")),
                                                                                   float("inf"))),
                                    ["text features", "NaN or Inf"]),
}


@pytest.mark.parametrize("case", DIRECT_ERRORS)
def test_bad_decoded_inputs(tiny, case):
    call, fragments = DIRECT_ERRORS[case]
    model, processor = tiny
    with pytest.raises(ValueError) as info:
        call(processor, model)
    check_message(info.value, *fragments)


def test_extremely_long_transcript_is_truncated(tiny):
    _, processor = tiny
    out = processor(transcripts="word " * 200_000)
    assert out["text_input_ids"].shape == (1, processor.max_text_tokens)


# ----------------------------------------------------------------------------- manifests
def row(uid="u1", subject="s1", **extra):
    base = {"subject_id": subject, "utterance_id": uid, "transcript": f"{SECRET} {uid}", "emotion_label": 0,
            "cognition_labels": [0, 0, 0, 0], "end": 3.0}
    base.update(extra)
    return base


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


CSV_HEADER = b"subject_id,utterance_id,transcript,emotion_label,cognition_labels\n"
MANIFEST_ERRORS = {  # name: (file name, bytes, fragments after "<manifest>[, line N]: ")
    "empty file": ("m.jsonl", b"", ["m.jsonl: no data rows"]),
    "a JSON array": ("m.json", json.dumps([row()]).encode(), ["m.json, line 1", "JSON Lines"]),
    "UTF-16": ("m.jsonl", jsonl(row()).decode().encode("utf-16"), ["m.jsonl: not valid UTF-8", "UTF-16"]),
    "CSV row with an extra field": ("m.csv", CSV_HEADER + b"s1,u1,hello,0,0000,extra\n",
                                    ["m.csv, line 2", "6 fields but the header has 5"]),
    "duplicated CSV column": ("m.csv", b"subject_id,utterance_id,subject_id\ns1,u1,s1\n",
                              ["m.csv, line 1", "duplicate column"]),
    "NUL in a path": ("m.jsonl", jsonl(row(video_path="clips/a\x00.mp4")), ["m.jsonl, line 1", "NUL"]),
    "symlink to /etc/passwd": ("m.jsonl", jsonl(row(video_path="link.mp4")),
                               ["m.jsonl, line 1", "resolves to /etc/passwd, outside data_root"]),
    "../../etc/passwd as audio_path": ("m.jsonl", jsonl(row(audio_path="../../etc/passwd")),
                                       ["m.jsonl, line 1", "audio_path '../../etc/passwd'", "outside data_root"]),
    "home-relative path": ("m.jsonl", jsonl(row(video_path="~/interview.mp4")), ["m.jsonl, line 1", "outside data_root"]),
    "escaping features path": ("m.jsonl", jsonl(row(video_features_path="feats/../../x.npy")),
                               ["m.jsonl, line 1", "video_features_path", "outside data_root"]),
    "a list as transcript": ("m.jsonl", jsonl(row(transcript=["I", "am", "fine"])),
                             ["m.jsonl, line 1", "transcript must be text"]),
    "lone surrogate in the transcript": ("m.jsonl", b'{"subject_id": "s1", "utterance_id": "u1", "transcript": '
                                                    b'"caf\\udce9", "emotion_label": 0, "cognition_labels": [0,0,0,0]}\n',
                                         ["m.jsonl, line 1", "transcript is not valid Unicode"]),
    "true as emotion label": ("m.jsonl", jsonl(row(emotion_label=True)), ["m.jsonl, line 1", "not a valence"]),
    "0.5 as emotion label": ("m.jsonl", jsonl(row(emotion_label=0.5)), ["m.jsonl, line 1", "not an integer"]),
    "nan as start": ("m.jsonl", jsonl(row(start="nan")), ["m.jsonl, line 1", "start 'nan' is not a finite number"]),
    "conflicting depression labels": ("m.jsonl", jsonl(row("u1", depression=1), row("u2", depression=0)),
                                      ["m.jsonl, line 2", "subject 's1' has depression 0 here but 1 on line 1"]),
    "a folder as manifest": ("m.jsonl", None, ["m.jsonl: not a file"]),
}


@pytest.mark.parametrize("case", MANIFEST_ERRORS)
def test_malformed_manifests(tmp_path, case):
    name, data, fragments = MANIFEST_ERRORS[case]
    manifest = tmp_path / name
    if data is None:
        manifest.mkdir()
    else:
        manifest.write_bytes(data)
    (tmp_path / "link.mp4").symlink_to("/etc/passwd")
    with pytest.raises(ValueError) as info:
        build_dataset(manifest, check_media=False)
    check_message(info.value, *fragments)


MANIFEST_DROPS = {  # name: (manifest row, reason category, fragments of the reason)
    "PNG named .mp4": (dict(video_path="image.mp4"), "unreadable media", ["image.mp4", "cannot be opened as video"]),
    "MP4 cut in half": (dict(video_path="cut.mp4"), "unreadable media", ["cut.mp4", "cannot be opened as video"]),
    "NaN samples": (dict(audio_path="nan.wav", end=-1), "unreadable media", ["nan.wav", "NaN"]),
    "a folder as video": (dict(video_path="folder.mp4"), "missing file", ["folder.mp4", "is a directory"]),
    "segment past a truncated WAV": (dict(audio_path="cut.wav", start=0.0, end=2.5), "segment beyond media",
                                     ["cut.wav", "but the media lasts 0.999 s"]),
}


def test_unusable_rows_are_dropped_with_reasons(media, tmp_path):
    rows = [row("ok", audio_path="full.wav")] + [row(f"bad{i}", **values) for i, (values, _, _) in
                                                  enumerate(MANIFEST_DROPS.values())]
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(jsonl(*rows))
    dsd, dropped = build_dataset(manifest, data_root=media, min_duration=0.5)
    assert [r["utterance_id"] for split in dsd.values() for r in split] == ["ok"]
    assert len(dropped) == len(MANIFEST_DROPS)
    for drop, (case, (_, category, fragments)) in zip(dropped, MANIFEST_DROPS.items()):
        assert drop["reason"].startswith(category + ":"), (case, drop)
        check_message(f"{drop['reason']} (file {drop['file']})", *fragments)
        assert drop["line"] == drop["row"] + 1


SAVED_DATASET_ERRORS = {  # a saved data set edited by hand: (split, row, column, value, fragments)
    "emotion label 5": ("train", 0, "emotion_label", 5, ["split 'train', row 0", "emotion_label 5 out of range"]),
    "cognition flag 2": ("validation", 1, "cognition_labels", [0, 2, 0, 0], ["split 'validation', row 1", "flags 0/1"]),
    "one utterance in two splits": ("test", 0, "utterance_id", None, ["split 'test', row 0", "duplicate utterance_id"]),
}


@pytest.mark.parametrize("case", SAVED_DATASET_ERRORS)
def test_hand_edited_saved_dataset(tmp_path, tiny_synth_dataset, case):
    split, index, column, value, fragments = SAVED_DATASET_ERRORS[case]
    dsd = load_dataset_dict(tiny_synth_dataset)
    if value is None:  # copy a train utterance id
        value = dsd["train"][0]["utterance_id"]

    def edit(example, i):
        if i == index:
            example[column] = value
        return example

    dsd[split] = dsd[split].map(edit, with_indices=True, keep_in_memory=True)
    save_dataset(dsd, tmp_path / "edited")
    with pytest.raises(ValueError) as info:
        load_dataset_dict(tmp_path / "edited")
    check_message(info.value, "edited", *fragments)


# ----------------------------------------------------------------------------- MMDA
def mmda_csv(path: Path, rows) -> Path:
    header = "id,hdTimeStart,hdTimeEnd,content,emotion,cognition,emotion_bin,cognition_bin\n"
    path.write_text(header + "".join(f'{s},{a},{b},{SECRET},sad,fine,0,"[0, 0, 0, 0]"\n' for s, a, b in rows),
                    encoding="utf-8")
    return path


MMDA_DROPS = {  # name: (times, what the .npy holds, reason fragments)
    "text bytes named .npy": ((1000, 5000), b"not an array", ["bad features", "not a readable .npy"]),
    "Inf features": ((6000, 9000), np.full((4, 8), np.inf, np.float32), ["bad features", "NaN or Inf"]),
    "empty (0 x d) features": ((10000, 14000), np.zeros((0, 8), np.float32), ["bad features", "is empty"]),
    "string features": ((15000, 19000), np.array([["a", "b"]]), ["bad features", "non-numeric dtype"]),
    "start after end": ((25000, 21000), np.zeros((4, 8), np.float32), ["invalid segment", "is not after start"]),
}


def test_mmda_bad_features_and_times_are_dropped(tmp_path):
    feats = tmp_path / "features"
    feats.mkdir()
    rows = [("p1", 30000, 34000)] + [("p1", *times) for times, _, _ in MMDA_DROPS.values()]
    for (subject, t0, t1), content in zip(rows, [np.zeros((4, 8), np.float32)] + [c for _, c, _ in MMDA_DROPS.values()]):
        target = feats / f"{subject}_{t0}_{t1}.npy"
        target.write_bytes(content) if isinstance(content, bytes) else np.save(target, content)
    dsd, dropped = import_mmda(mmda_csv(tmp_path / "mmda.csv", rows), features_root=feats)
    assert [r["utterance_id"] for split in dsd.values() for r in split] == ["p1_30000_34000"]
    by_id = {d["utterance_id"]: d for d in dropped}
    for case, ((t0, t1), _, fragments) in MMDA_DROPS.items():
        drop = by_id[f"p1_{t0}_{t1}"]
        check_message(drop["reason"], *fragments)
        if "features" in fragments[0]:
            assert f"p1_{t0}_{t1}.npy" in drop["reason"], case


MMDA_ERRORS = {
    "unknown time_unit": (dict(time_unit="minutes"), ["time_unit 'minutes'"]),
    "a file as features_root": (dict(features_root="mmda.csv"), ["features_root", "mmda.csv", "is not a folder"]),
}


@pytest.mark.parametrize("case", MMDA_ERRORS)
def test_mmda_bad_arguments(tmp_path, case):
    kwargs, fragments = MMDA_ERRORS[case]
    csv_path = mmda_csv(tmp_path / "mmda.csv", [("p1", 1000, 5000)])
    kwargs = {k: (tmp_path / v if k.endswith("_root") else v) for k, v in kwargs.items()}
    with pytest.raises(ValueError) as info:
        import_mmda(csv_path, **kwargs)
    check_message(info.value, *fragments)


# ----------------------------------------------------------------------------- feature cache
def _rewrite(path: Path, change) -> None:
    """Rewrite a cache file with changed tensors / metadata and a *valid* checksum (a crafted file)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from processing_ecmc.cache_store import tensors_checksum as _checksum

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    change(tensors, metadata)
    metadata["checksum"] = _checksum(tensors)
    save_file(tensors, str(path), metadata=metadata)


def _nan_features(tensors, metadata):
    name = next(k for k in tensors if k.endswith("_features"))
    tensors[name] = tensors[name].clone()
    tensors[name][0, 0] = float("nan")


CACHE_ERRORS = {  # name: (how the cache file is damaged, fragment of the CacheError)
    "zero-byte file": (lambda p: p.write_bytes(b""), "not a valid safetensors file"),
    "NaN with a valid checksum": (lambda p: _rewrite(p, _nan_features), "features contain NaN or Inf"),
    "another format version": (lambda p: _rewrite(p, lambda t, m: m.update(version="0")), "cache format version '0'"),
    "a foreign safetensors file": (lambda p: _rewrite(p, lambda t, m: m.pop("format")), "not an ECMC feature-cache file"),
}


@pytest.mark.parametrize("case", CACHE_ERRORS)
def test_damaged_cache_files_are_refused_on_read(tmp_path, written, tiny, case):
    damage, fragment = CACHE_ERRORS[case]
    model, processor = tiny
    fingerprint = cache_fingerprint(model, processor)
    cache = tmp_path / "cache"
    shutil.copytree(written / "cache", cache)
    uid = load_dataset_dict(written / "dataset")["validation"][0]["utterance_id"]
    path = cache / fingerprint[:16] / cache_file_name(uid)
    damage(path)
    with pytest.raises(CacheError) as info:
        load_cached_features(cache, uid, fingerprint)
    check_message(info.value, str(path), fragment)


def test_dead_writers_temporary_is_removed_and_nan_npy_refused(tmp_path, written, tiny):
    """A `.tmp` of a killed writer is removed by the next build; a pre-extracted .npy holding NaN given
    straight to build_feature_cache (bypassing the data set's checks) is an error naming the .npy,
    and the existing cache files stay as they were (the autouse fixture checks the written cache)."""
    import subprocess
    import sys

    model, processor = tiny
    rows = load_dataset_dict(written / "dataset")["validation"]
    folder = written / "cache" / cache_fingerprint(model, processor)[:16]
    cache = tmp_path / "cache"
    shutil.copytree(written / "cache", cache)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = cache / folder.name / f".{cache_file_name('x')}.{dead.pid}.tmp"
    leftover.write_bytes(b"half")
    build_feature_cache(model, processor, rows, cache, progress=False)
    assert not leftover.exists()

    bad = np.random.default_rng(0).standard_normal((6, model.config.feature_size("audio"))).astype(np.float32)
    bad[2, 3] = np.nan
    np.save(tmp_path / "audio.npy", bad)
    row = dict(rows[0], utterance_id="with-nan", audio_features_path=str(tmp_path / "audio.npy"))
    with pytest.raises(ValueError) as info:
        build_feature_cache(model, processor, [row], written / "cache", progress=False)
    check_message(info.value, "audio.npy", "not finite")


# ----------------------------------------------------------------------------- configs
CONFIG_ERRORS = {  # name: (YAML text or bytes, --set overrides, fragments)
    "YAML syntax error": ("stage1:\n  epochs: [1, 2\n", [], ["c.yaml, line 3", "not valid YAML"]),
    "latin-1 bytes": ("seed: 0\n# caf\xe9\n".encode("latin-1"), [], ["c.yaml: not valid UTF-8 at byte offset 13"]),
    "a key given twice": ("seed: 1\nseed: 2\n", [], ["c.yaml, line 2: key 'seed' is given twice"]),
    "a list at the top level": ("- seed\n", [], ["c.yaml: the top level must be a mapping"]),
    "precision fp8": ("training: {precision: fp8}\n", [], ["c.yaml: training.precision 'fp8' is not one of"]),
    "batch size 0": ("stage1: {batch_size: 0}\n", [], ["c.yaml: stage1.batch_size must be > 0"]),
    "negative learning rate": ("stage2: {learning_rate: -1e-4}\n", [], ["stage2.learning_rate must be > 0"]),
    "unknown scheduler": ("stage1: {lr_scheduler: cosinus}\n", [], ["stage1.lr_scheduler 'cosinus' is not one of"]),
    "unknown model.overrides field": ("model: {overrides: {modalitiez: [audio]}}\n", [],
                                      ["model.overrides has unknown ECMCConfig field(s) ['modalitiez']"]),
    "unknown LoRA key": ("stage2: {lora: {r: 8, alpah: 16}}\n", [], ["stage2.lora has unknown key(s) ['alpah']"]),
    "true as seed": ("seed: true\n", [], ["c.yaml: seed must be a number, got True"]),
    "a required key set to null": ("data: {dataset: null}\n", [], ["data.dataset must be set", "got null"]),
    "warmup ratio 1.5": ("stage1: {warmup_ratio: 1.5}\n", [], ["stage1.warmup_ratio is a fraction"]),
    "--set on a section": ("seed: 0\n", ["stage1=3"], ["--set stage1=3: stage1 must be a mapping"]),
    "--set with broken YAML": ("seed: 0\n", ["stage1.epochs=[1"], ["--set stage1.epochs=[1", "not valid YAML"]),
    "unknown evaluation split": ("evaluate: {split: holdout}\n", [], ["evaluate.split 'holdout' is not one of"]),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_bad_configs(tmp_path, case):
    text, overrides, fragments = CONFIG_ERRORS[case]
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    check_message(info.value, *fragments)


# ----------------------------------------------------------------------------- training
def train_config(written, tmp_path, checkpoint) -> dict:
    """A config whose run would write into the outputs of `written` (it must fail before touching them)."""
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(written / "run"),
        "model": {"checkpoint": str(checkpoint)},
        "data": {"synth_preset": None, "dataset": str(written / "dataset"), "cache_dir": str(written / "cache")},
        "stage1": {"epochs": 1, "batch_size": 4}, "stage2": {"epochs": 1, "batch_size": 4},
    }))
    return load_config(path)


def _pickle_only(folder: Path, tiny_checkpoint):
    from safetensors.torch import load_file

    shutil.copytree(tiny_checkpoint, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


def _truncated(folder: Path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


TRAINING_CHECKPOINTS = {  # name: (make the model.checkpoint folder, exception, fragments)
    "only pickled weights": (_pickle_only, OSError, ["ckpt", "model.safetensors"]),
    "missing folder": (lambda folder, _: None, FileNotFoundError, ["ckpt: no such checkpoint folder"]),
    "truncated model.safetensors": (_truncated, OSError, ["ckpt", "corrupt or truncated"]),
}


@pytest.mark.parametrize("case", TRAINING_CHECKPOINTS)
def test_training_refuses_bad_checkpoints_before_any_work(tmp_path, written, tiny_checkpoint, case):
    from training_ecmc.run import run_training

    make, error_type, fragments = TRAINING_CHECKPOINTS[case]
    make(tmp_path / "ckpt", tiny_checkpoint)
    with pytest.raises(error_type) as info:
        run_training(train_config(written, tmp_path, tmp_path / "ckpt"), stages=(1,))
    check_message(info.value, *fragments)


def test_resume_skips_half_written_checkpoints(tmp_path, tiny_checkpoint):
    """Checkpoints are verified on read: `--resume` takes the newest *complete* checkpoint-N."""
    from training_ecmc.trainer import is_complete, last_complete_checkpoint, mark_complete

    stage = tmp_path / "stage1"
    good = stage / "checkpoint-4"
    shutil.copytree(tiny_checkpoint, good)
    mark_complete(good)
    shutil.copytree(good, stage / "checkpoint-8")  # complete marker, then a file cut short (disk full)
    weights = stage / "checkpoint-8" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    shutil.copytree(tiny_checkpoint, stage / "checkpoint-12")  # killed before its marker
    (stage / "checkpoint-16").mkdir()  # killed while creating it
    assert not is_complete(stage / "checkpoint-8") and not is_complete(stage / "checkpoint-12")
    assert last_complete_checkpoint(stage) == good


# ----------------------------------------------------------------------------- evaluation and the data CLI
def test_evaluation_of_an_empty_split_leaves_the_report(tmp_path, written, tiny_checkpoint):
    from evaluation_ecmc.run_evaluation import evaluate
    from processing_ecmc.dataset_io import save_dataset

    dsd = load_dataset_dict(written / "dataset")
    dsd["test"] = dsd["test"].select([])
    save_dataset(dsd, tmp_path / "no-test")
    cfg = train_config(written, tmp_path, tiny_checkpoint)
    cfg["data"]["dataset"] = str(tmp_path / "no-test")
    with pytest.raises(ValueError) as info:
        evaluate(tiny_checkpoint, cfg, output=written / "run" / "evaluation", split="test")
    check_message(info.value, "no-test", "no rows in split 'test'")


def test_evaluation_of_a_missing_checkpoint(tmp_path, written):
    from evaluation_ecmc.run_evaluation import evaluate

    cfg = train_config(written, tmp_path, tmp_path / "gone")
    with pytest.raises(FileNotFoundError) as info:
        evaluate(tmp_path / "gone", cfg, output=written / "run" / "evaluation", split="validation")
    check_message(info.value, "gone: no such checkpoint folder")


def test_data_cli_bad_manifest_keeps_the_existing_data_set(tmp_path, written):
    from processing_ecmc.data_cli import main

    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(jsonl(row("u1"), row("u1", "s2")))
    with pytest.raises(ValueError) as info:
        main(["build", "--manifest", str(manifest), "--output", str(written / "dataset")])
    check_message(info.value, "m.jsonl, line 2", "duplicate utterance_id 'u1'")
