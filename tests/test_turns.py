"""Whole interviews with a timed transcript (processing_ecmc/transcript_files.py, turns.py, session.py
and `ecmc segment`): SRT / WebVTT / JSON read with speakers, turns merged, the patient chosen by the
documented rule, the paper's filter with its reasons, rows that `ecmc caption --inputs` takes as they
are, and bad inputs refused with the file named and nothing written."""

import json

import pytest

from media_fixtures import make_video
from processing_ecmc.session import drop_summary, segment_session
from processing_ecmc.transcript_files import Segment, TranscriptError, read_timed_transcript
from processing_ecmc.turns import SegmentationError, choose_patient, interview_turns, speaker_turns

VTT = """WEBVTT

00:00.000 --> 00:01.500
<v Interviewer>Hello, good morning.

00:01.800 --> 00:02.600
<v Patient>Good morning.

00:03.000 --> 00:05.000
<v Interviewer>What is your full name?

00:05.200 --> 00:08.000
<v Patient>My name is Ann Smith, I was born in Leeds.

00:08.500 --> 00:10.500
<v Interviewer>Can you tell me what day it is today?

00:11.000 --> 00:13.500
<v Patient>I think it is Tuesday, but I am not sure.

00:13.900 --> 00:16.000
<v Patient>Lately I forget things all the time.

00:16.500 --> 00:18.000
<v Interviewer>How have you been sleeping?

00:18.300 --> 00:19.200
<v Patient>Badly.

00:19.500 --> 00:21.000
<v Interviewer>And your mood?

00:21.300 --> 00:24.800
<v Patient>I feel low most days and nothing seems worth doing.
"""


def _srt(cues):
    def time(t):
        return f"00:00:{t:06.3f}".replace(".", ",")

    return "\n".join(f"{n}\n{time(a)} --> {time(b)}\n{text}\n" for n, (a, b, text) in enumerate(cues, 1))


def test_the_three_formats_give_the_same_segments(tmp_path):
    vtt = tmp_path / "s.vtt"
    vtt.write_text(VTT)
    segments = read_timed_transcript(vtt)
    assert len(segments) == 11 and segments[3] == Segment(5.2, 8.0, "Patient", "My name is Ann Smith, I was born in Leeds.")
    srt = tmp_path / "s.srt"
    srt.write_text(_srt([(s.start, s.end, f"{s.speaker}: {s.text}") for s in segments]))
    assert read_timed_transcript(srt) == segments
    js = tmp_path / "s.json"
    js.write_text(json.dumps({"segments": [vars(s) for s in segments]}))
    assert read_timed_transcript(js) == segments


def test_turns_patient_and_the_papers_filter(tmp_path):
    (tmp_path / "s.vtt").write_text(VTT)
    segments = read_timed_transcript(tmp_path / "s.vtt")
    assert choose_patient(speaker_turns(segments)) == "Patient"
    kept, dropped, patient = interview_turns(segments)
    assert patient == "Patient"
    # two segments 0.4 s apart: one turn; each clip from 0.1 s after the question to 0.2 s after the last word
    assert [(t.start, t.end) for t in kept] == [(10.6, 16.2), (21.1, 25.0)]
    assert kept[0].question == "Can you tell me what day it is today?"  # orientation: kept
    assert kept[0].transcript == "I think it is Tuesday, but I am not sure. Lately I forget things all the time."
    assert [reason for _, reason in dropped] == ["shorter than 2 s", "personal information", "shorter than 2 s"]
    assert drop_summary(dropped) == "3 dropped: 2 shorter than 2 s, 1 personal information"
    long_greeting = [Segment(0, 2, "I", "How are you?"), Segment(2.5, 5, "P", "Hello, thank you very much.")]
    assert interview_turns(long_greeting)[1][0][1] == "greeting"


def test_one_speaker_or_unnamed_speakers_need_the_patient_given():
    alone = [Segment(0, 3, "P", "I slept badly."), Segment(5, 9, "P", "And I feel tired.")]
    with pytest.raises(SegmentationError, match=r"one speaker only \(P\)"):
        interview_turns(alone)
    assert len(interview_turns(alone, patient="P")[0]) == 2
    with pytest.raises(SegmentationError, match="no speaker named"):
        interview_turns([Segment(0, 3, None, "Who knows?"), Segment(4, 8, "P", "Nobody does.")])
    with pytest.raises(SegmentationError, match=r"patient 'Q' does not speak.*\['P'\]"):
        interview_turns(alone, patient="Q")


@pytest.mark.parametrize("name, text, message", [
    ("a.srt", "1\n00:00:05,000 --> 00:00:04,000\nP: hi\n", r"a.srt, line 2: the cue ends"),
    ("b.vtt", "00:01.000 --> 00:02.000\nhi\n", "starts with 'WEBVTT'"),
    ("c.json", "[{\"start\": 1}]", r"c.json, segment 0: a segment needs"),
    ("d.json", "{not json", r"d.json: not JSON"),
    ("e.txt", "hello", "unsupported transcript type .txt"),
    ("f.srt", "just words, no times\n", "no timed text found"),
])
def test_bad_transcripts_name_the_file_and_the_place(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(TranscriptError, match=message):
        read_timed_transcript(tmp_path / name)
    (tmp_path / "g.srt").write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nP: caf\xe9\n")
    with pytest.raises(TranscriptError, match="not valid UTF-8"):
        read_timed_transcript(tmp_path / "g.srt")


def test_ecmc_segment_then_caption_the_turns(tmp_path, tiny_checkpoint):
    import ecmc_cli

    session = make_video(tmp_path / "s01.mp4", 26, size=(64, 64), audio_rate=16000)
    (tmp_path / "s01.vtt").write_text(VTT)
    turns = tmp_path / "turns.jsonl"
    assert ecmc_cli.main(["segment", str(session), "--transcript", str(tmp_path / "s01.vtt"), "--output", str(turns)]) == 0
    rows = [json.loads(line) for line in turns.read_text().splitlines()]
    assert [(r["utterance_id"], r["start"], r["end"], r["speaker"]) for r in rows] == [
        ("s01_t001", 10.6, 16.2, "Patient"), ("s01_t002", 21.1, 25.0, "Patient")]
    assert rows[0]["video_path"] == str(session.resolve()) and rows[1]["question"] == "And your mood?"
    captions = tmp_path / "captions.jsonl"
    assert ecmc_cli.main(["caption", "--checkpoint", str(tiny_checkpoint), "--inputs", str(turns),
                          "--max-new-tokens", "8", "--output", str(captions)]) == 0
    out = [json.loads(line) for line in captions.read_text().splitlines()]
    assert [(o["video"], o["start"], o["end"]) for o in out] == [(r["video_path"], r["start"], r["end"]) for r in rows]


def test_ecmc_segment_refuses_mismatched_or_broken_inputs(tmp_path, capsys):
    import ecmc_cli

    short = make_video(tmp_path / "short.mp4", 10, size=(32, 32), audio_rate=16000)
    (tmp_path / "s.vtt").write_text(VTT)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    out = tmp_path / "turns.jsonl"
    cases = [([str(short), "--transcript", str(tmp_path / "s.vtt")], "its last segment ends at 24.8 s, but .*short.mp4 lasts 10.0 s"),
             ([str(broken), "--transcript", str(tmp_path / "s.vtt")], "broken.mp4: cannot be opened as video")]
    for args, message in cases:
        assert ecmc_cli.main(["segment", *args, "--output", str(out)]) == 1
        err = capsys.readouterr().err
        assert __import__("re").search(message, err), err
        assert not out.exists()
    assert "Ann Smith" not in err  # transcripts never in messages


def test_ecmc_profile_session_writes_turns_captions_profile_and_screening(tmp_path, tiny_checkpoint, capsys):
    import ecmc_cli

    session = make_video(tmp_path / "s01.mp4", 26, size=(64, 64), audio_rate=16000)
    (tmp_path / "s01.vtt").write_text(VTT)
    out = tmp_path / "s01"
    assert ecmc_cli.main(["profile-session", str(session), "--transcript", str(tmp_path / "s01.vtt"),
                          "--checkpoint", str(tiny_checkpoint), "--output", str(out), "--detection"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["captions.jsonl", "profile.txt", "screening.json", "turns.jsonl"]
    assert len((out / "captions.jsonl").read_text().splitlines()) == 2
    assert set(json.loads((out / "screening.json").read_text())) == {"depression", "anxiety"}
    printed = capsys.readouterr().out
    assert "2 turn(s) of Patient kept, 3 dropped" in printed and str(out.resolve()) in printed
    assert "Tuesday" not in printed


def test_manifest_rows_become_pipeline_inputs():
    from processing_ecmc.session import pipeline_input

    row = {"subject_id": "s", "utterance_id": "s_1", "video_path": "a.mp4", "audio_path": "", "start": 0.0, "end": -1,
           "transcript": "x", "emotion_label": 1, "cognition_labels": [0, 0, 0, 0], "speaker": "P", "question": "q?"}
    assert pipeline_input(row) == {"video": "a.mp4", "start": 0.0, "transcript": "x"}
    assert pipeline_input({"video": "b.mp4", "trancript": "typo"}) == {"video": "b.mp4", "trancript": "typo"}  # named by the pipeline
