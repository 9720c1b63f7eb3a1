"""ECMC-Synth generator: schema, media, determinism, splits and that the cues carry the labels."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

decord = pytest.importorskip("decord")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("PIL")
from processing_ecmc import synth  # noqa: E402
from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, EMOTION_LABELS  # noqa: E402
from processing_ecmc.schema import COLUMNS, SPLITS  # noqa: E402
from processing_ecmc.synth_face import render_frame, subject_look  # noqa: E402

if not Path(synth.ESPEAK).exists():
    pytest.skip("espeak-ng is not installed", allow_module_level=True)


def _rows(manifest):
    return [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synth.generate_synth(tmp_path_factory.mktemp("synth") / "a", preset="tiny", seed=0, progress=False)


def test_tiny_manifest_matches_schema(tiny):
    root = tiny.parent
    rows = _rows(tiny)
    n, k = synth.PRESETS["tiny"]["num_subjects"], synth.PRESETS["tiny"]["utterances_per_subject"]
    assert len(rows) == n * k
    assert len({r["utterance_id"] for r in rows}) == len(rows)
    for r in rows:
        assert list(r) == list(COLUMNS) + ["split"]
        assert r["split"] in SPLITS and r["language"] == "en"
        assert r["audio_path"] == r["audio_features_path"] == r["video_features_path"] == ""
        assert r["video_path"] == f"media/{r['subject_id']}.mp4" and (root / r["video_path"]).is_file()
        assert r["emotion_label"] in EMOTION_LABELS
        assert len(r["cognition_labels"]) == len(COGNITION_LABELS) and set(r["cognition_labels"]) <= {0, 1}
        assert r["depression"] in (0, 1) and r["anxiety"] in (0, 1)
        assert 5 <= len(r["transcript"].split()) <= 30
        assert EMOTION_LABELS[r["emotion_label"]] in r["emotion_caption"].lower()
        caption = r["cognition_caption"].lower()
        for name, flag in zip(COGNITION_LABELS, r["cognition_labels"]):
            assert (name in caption) == bool(flag)
    subjects = _rows(root / "subjects.jsonl")
    assert [s["subject_id"] for s in subjects] == sorted({r["subject_id"] for r in rows})
    by_id = {s["subject_id"]: s for s in subjects}
    for r in rows:
        s = by_id[r["subject_id"]]
        assert (r["depression"], r["anxiety"], r["split"]) == (s["depression"], s["anxiety"], s["split"])
    assert (root / "README.md").read_text().startswith("# ECMC-Synth")
    info = json.loads((root / "build_info.json").read_text())
    assert info["preset"] == "tiny" and info["seed"] == 0 and info["num_utterances"] == len(rows)
    assert not list(root.rglob(".*.tmp")) and not list(root.rglob(".*.old"))  # atomic_io temporaries


def test_media_have_video_and_audio_and_segments_fit(tiny):
    root = tiny.parent
    rows = _rows(tiny)
    for path in sorted({r["video_path"] for r in rows}):
        vr = decord.VideoReader(str(root / path))
        fps = vr.get_avg_fps()
        assert fps == pytest.approx(synth.FPS)
        assert vr[0].shape == (synth.SIZE, synth.SIZE, 3)
        ar = decord.AudioReader(str(root / path), sample_rate=16000, mono=True)
        audio = ar[:].asnumpy()[0]
        duration = min(len(vr) / fps, len(audio) / 16000)
        for r in (r for r in rows if r["video_path"] == path):
            assert 0 <= r["start"] < r["end"] <= duration
            assert r["end"] - r["start"] > 1.0
            seg = audio[int(r["start"] * 16000): int(r["end"] * 16000)]
            assert np.sqrt(np.mean(seg ** 2)) > 0.01  # the subject speaks inside the segment
        segs = sorted((r["start"], r["end"]) for r in rows if r["video_path"] == path)
        assert all(a[1] < b[0] for a, b in zip(segs, segs[1:]))  # answers never overlap


def test_same_seed_is_byte_identical_and_other_seed_differs(tiny, tmp_path, capsys, caplog):
    caplog.set_level("DEBUG")
    again = synth.generate_synth(tmp_path / "b", preset="tiny", seed=0, progress=False)
    a, b = tiny.parent, again.parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    other = synth.generate_synth(tmp_path / "c", preset="tiny", seed=1, progress=False)
    assert other.read_bytes() != tiny.read_bytes()
    assert (other.parent / "media/s000.mp4").read_bytes() != (a / "media/s000.mp4").read_bytes()
    # sensitive-data policy: no transcript or caption reaches the console or the log
    out, err = capsys.readouterr()
    captured = out + err + caplog.text
    for r in _rows(tiny) + _rows(other):
        for key in ("transcript", "emotion_caption", "cognition_caption"):
            assert r[key] not in captured


def test_complete_build_is_reused_and_cli(tiny, capsys):
    before = {p: p.stat().st_mtime_ns for p in tiny.parent.rglob("*") if p.is_file()}
    assert synth.generate_synth(tiny.parent, preset="tiny", seed=0, progress=False) == tiny
    synth.main(["--output", str(tiny.parent), "--preset", "tiny", "--seed", "0", "--no-progress"])
    assert str(tiny.parent) in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in tiny.parent.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="preset"):
        synth.generate_synth(tiny.parent, preset="huge")


def test_splits_are_disjoint_by_subject(tiny):
    rows = _rows(tiny)
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["subject_id"], r["split"]) == r["split"]
    assert set(split_of.values()) == set(SPLITS)
    for n in (3, 5, 72):
        subjects = synth.assign_subjects(n, seed=3)
        assert synth.assign_subjects(n, seed=3) == subjects
        assert len({s["subject_id"] for s in subjects}) == n
        assert {s["split"] for s in subjects} == set(SPLITS)


def _plans(num_subjects=240, k=6):
    subjects = synth.assign_subjects(num_subjects, seed=0)
    return [(s, u) for i, s in enumerate(subjects)
            for u in synth.plan_subject(0, i, s["depression"], s["anxiety"], k)["utterances"]]


def test_every_modality_carries_part_of_the_emotion_signal():
    utts = _plans()
    label = np.array([u["emotion_label"] for _, u in utts])
    keys = ("face", "voice", "text", "curvature", "pitch", "rate")
    cue = {key: np.array([u["cues"][key] for _, u in utts]) for key in keys}
    neg, pos = label == -1, label == 1
    assert cue["curvature"][neg].mean() < cue["curvature"][pos].mean() - 0.6
    assert cue["pitch"][neg].mean() < cue["pitch"][pos].mean() - 20
    assert cue["rate"][neg].mean() < cue["rate"][pos].mean() - 20
    shown = np.stack([cue["face"], cue["voice"], cue["text"]])
    for m in shown:  # each modality informative but not enough on its own
        assert 0.6 < (m == label).mean() < 0.88
    assert ((shown == label).sum(0) >= 2).all()  # ... while the majority of the three always is


def test_cognition_cues_and_subject_groups():
    utts = _plans()
    cog = np.array([u["cognition_labels"] for _, u in utts])
    for d, domain in enumerate(synth.DOMAINS):
        present = np.array([any(u["cues"]["channels"][domain].values()) for _, u in utts])
        assert present[cog[:, d] == 1].all()  # a deficit always shows at least one cue
    assert cog[:, 0].mean() < cog[:, 1:].mean(0).min()  # orientation is rare

    def rates(dep, anx):
        sel = [(u["emotion_label"] == -1, sum(u["cognition_labels"])) for s, u in utts
               if (s["depression"], s["anxiety"]) == (dep, anx)]
        return np.mean([a for a, _ in sel]), np.mean([b for _, b in sel])

    (hn, hc), (dn, dc), (an, ac) = rates(0, 0), rates(1, 0), rates(0, 1)
    assert hn < an and hn < dn and hc < ac < dc


def test_cues_reach_the_pixels_and_the_voice():
    rng = np.random.default_rng(0)
    look = subject_look(rng)

    def mouth_bend(curvature):  # centre minus corner height of the mouth line (image y grows down)
        expr = dict(curvature=curvature, brow=0.0, eye_open=1.0, head_amp=0.0, droop=0.0)
        img = render_frame(look, expr, 0.0, 0.0, (0.0, 0.0), 0.0, rng, noise=0.0).astype(int)
        mask = (img[..., 0] - img[..., 1] > 50) & (img[..., 1] < 90)  # the dark-red mouth line
        mask[: synth.SIZE // 2] = False
        ys, xs = np.nonzero(mask)
        cx = (xs.min() + xs.max()) / 2
        centre, corners = ys[abs(xs - cx) <= 2].mean(), ys[abs(xs - cx) >= (xs.max() - cx) - 2].mean()
        return centre - corners

    assert mouth_bend(1.0) > 1.5 and mouth_bend(-1.0) < -1.5

    def f0(x, sr=synth.TTS_SR):
        n = int(0.04 * sr)
        frames = [x[i:i + n] for i in range(0, len(x) - n, n)]
        energy = np.array([np.sqrt(np.mean(f ** 2)) for f in frames])
        lags = []
        for f in (f for f, e in zip(frames, energy) if e > 0.3 * energy.max()):
            f = f - f.mean()
            ac = np.correlate(f, f, "full")[n - 1:]
            lo, hi = sr // 400, sr // 60
            lags.append(lo + int(np.argmax(ac[lo:hi])))
        return sr / np.median(lags)

    with tempfile.TemporaryDirectory() as tmp:
        low, high = (f0(synth._speak("I went to the shop this morning.", "en-us+m1", p, 150, 0, 100, tmp))
                     for p in (22, 68))
    assert high > 1.2 * low
