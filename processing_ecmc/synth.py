"""ECMC-Synth: a small, deterministic, honest multimodal interview data set (DESIGN §2).

Each subject gets one session recording (MP4: H.264 video of a rendered face + AAC speech from
espeak-ng) of several interviewer-question / subject-answer turns; each answer is one utterance row
of the ECMC schema. Emotion is carried by face, voice and words, each only ~75 % reliable; cognition
cues are mostly verbal, with vocal (latency, word gaps) and visual (gaze) support. Which cue carries
what, and how reliably, is documented in `synth_card.md` (copied to README.md of every build).

    generate_synth("/tmp/ecmc_synth", preset="tiny", seed=0)   # -> .../manifest.jsonl
    python -m processing_ecmc.synth --output DIR --preset demo --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from modeling_ecmc.atomic_io import remove_dead_temporaries, temporary_name, write_text
from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, EMOTION_LABELS
from .schema import COLUMNS, SPLITS
from .synth_face import SIZE, gaze_at, head_box, render_frame, subject_look

logger = logging.getLogger(__name__)

VERSION = 1
PRESETS = {"tiny": {"num_subjects": 6, "utterances_per_subject": 3},
           "demo": {"num_subjects": 90, "utterances_per_subject": 6},
           # the demo's subjects and answers as whole interviews, with the turns the paper's filter drops
           "interview": {"num_subjects": 90, "utterances_per_subject": 6, "interview": True}}
FPS, TTS_SR, OUT_SR = 12, 22050, 16000
ESPEAK = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"

# ---- subject groups and their utterance label mix (paper Fig. 4) --------------------------------
GROUPS = ((0, 0), (1, 0), (0, 1), (1, 1))  # (depression, anxiety): healthy, dep, anx, both
GROUP_SHARE = (0.35, 0.25, 0.20, 0.20)
EMOTION_MIX = {(0, 0): (0.12, 0.50, 0.38), (1, 0): (0.55, 0.33, 0.12),  # P(neg, neu, pos)
               (0, 1): (0.45, 0.40, 0.15), (1, 1): (0.62, 0.28, 0.10)}
COGNITION_RATE = {(0, 0): (0.01, 0.05, 0.05, 0.06), (1, 0): (0.04, 0.22, 0.28, 0.30),  # O, A, M, L
                  (0, 1): (0.02, 0.18, 0.10, 0.12), (1, 1): (0.05, 0.28, 0.30, 0.32)}
SPLIT_SHARE = (0.70, 0.15, 0.15)
# emotion: which modality (if any) shows a different class than the label; the other two agree
EMOTION_OFF = (("none", 0.28), ("face", 0.22), ("voice", 0.22), ("text", 0.28))
# cognition cue channels: domain -> {channel: (P(cue | deficit), P(cue | no deficit))}
CHANNELS = {"orientation": {"text": (0.85, 0.0), "video": (0.60, 0.03)},
            "attention": {"text": (0.60, 0.0), "audio": (0.70, 0.05), "video": (0.50, 0.05)},
            "memory": {"text": (0.90, 0.0), "video": (0.50, 0.04)},
            "language": {"text": (0.70, 0.0), "audio": (0.75, 0.04)}}
DOMAINS = tuple(CHANNELS)
GAZE_KIND = {"orientation": "wander", "attention": "away", "memory": "up"}

# ---- text banks: (spoken clause, gist used by the captions) ---------------------------------------
EMOTION_CLAUSES = {
    -1: [("I feel hopeless most days.", "feeling hopeless"),
         ("Nothing seems worth doing anymore.", "nothing feeling worthwhile"),
         ("I have been so worried and tense.", "constant worry"),
         ("I feel lonely and tired all the time.", "loneliness and tiredness"),
         ("I cry a lot and sleep badly.", "crying and sleeping badly"),
         ("I am scared something bad will happen.", "fearing that something bad will happen")],
    0: [("I had breakfast and read the paper.", "breakfast and the paper"),
        ("I went to the shop this morning.", "a trip to the shop"),
        ("My son visits on Sundays.", "weekly family visits"),
        ("I watch the news in the evening.", "the evening news"),
        ("I take the bus to the clinic.", "taking the bus"),
        ("The weather was cloudy today.", "the weather")],
    1: [("I really enjoyed seeing my grandchildren.", "seeing the grandchildren"),
        ("I feel rested and quite happy lately.", "feeling rested and happy"),
        ("The garden looks lovely and I love it.", "the lovely garden"),
        ("We had a wonderful walk by the sea.", "a wonderful walk by the sea"),
        ("I am looking forward to the weekend.", "looking forward to the weekend"),
        ("My friends make me laugh a lot.", "laughing with friends")]}
DEFICIT_CLAUSES = {
    "orientation": [("I am not sure what day it is.", "is unsure what day it is"),
                    ("Where are we right now?", "does not know where they are"),
                    ("What year is it again?", "is unsure of the year"),
                    ("Is it still winter now?", "is unsure of the season")],
    "attention": [("Sorry, could you repeat the question?", "asks for the question to be repeated"),
                  ("Wait, what was I saying?", "loses track of what they were saying"),
                  ("Sorry, I drifted off there.", "admits drifting off"),
                  ("What did you ask me?", "forgets the question")],
    "memory": [("I cannot remember what I did yesterday.", "cannot recall the previous day"),
               ("I keep forgetting people's names.", "reports forgetting names"),
               ("I lost my keys again this week.", "reports losing keys again and again"),
               ("I forgot my doctor's appointment.", "forgot an appointment")]}
QUESTIONS = ["How have you been feeling lately?", "What did you do yesterday?", "How are you sleeping?",
             "Tell me about your family.", "How is your mood today?", "What do you enjoy doing?",
             "What day is it today?", "How is your memory these days?", "How do you spend your evenings?",
             "What are your plans for the weekend?", "How is your appetite?", "Where do you live now?"]
SUBJECT_VOICES = ["en-us+m1", "en-us+m2", "en-us+m3", "en-us+m4", "en-us+f1", "en-us+f2", "en-us+f3", "en-us+f4"]
INTERVIEWER = {"voice": "en-us+m7", "pitch": 50, "rate": 165, "gap": 0, "amp": 100}
# interview sessions open with turns the paper's filter must drop: (question, answer, expected reason)
OPENING = (("Hello, good morning. Thank you for coming in today.", "Good morning, thank you.", "greeting"),
           ("Could you tell me your full name, please?", "Yes, my name is Alex Morgan Taylor.", "personal information"))
OPENING_LATENCY, OPENING_PAUSE = 0.6, 0.7  # seconds; fixed, so the utterances' random draws are unchanged

# ---- caption phrase banks: (verb phrase, noun phrase) ---------------------------------------------
FACE = {-1: [("looks downcast", "a downcast look"), ("frowns with sad, raised inner brows", "a frown with sad brows"),
             ("keeps a drooping, unhappy face", "a drooping, unhappy face")],
        0: [("keeps a neutral face", "a neutral face"), ("shows little facial expression", "a calm, still face"),
            ("looks calm and composed", "a composed expression")],
        1: [("smiles", "a smile"), ("looks cheerful and animated", "a cheerful, animated face"),
            ("smiles with raised brows", "a broad smile")]}
VOICE = {-1: [("speaks in a flat, slow voice", "a flat, slow voice"),
              ("speaks slowly in a low, quiet voice", "slow, low-pitched speech")],
         0: [("speaks at an even pace", "an even, steady voice"),
             ("speaks in a steady, ordinary tone", "an ordinary tone of voice")],
         1: [("speaks in a bright, lively voice", "a bright, lively voice"),
             ("speaks quickly with a high, animated pitch", "quick, high-pitched speech")]}
WORDS = {-1: [("talks about {g}", "talk of {g}"), ("mentions {g}", "words about {g}")],
         0: [("describes {g} matter-of-factly", "a plain account of {g}"),
             ("talks plainly about {g}", "neutral talk of {g}")],
         1: [("talks happily about {g}", "happy talk of {g}"), ("speaks warmly about {g}", "warm words about {g}")]}
EMO_AGREE = ["The speaker {f}, {v} and {w}, suggesting {lab} emotion.",
             "{Lab} emotion: {F}, {V} and {W}.",
             "With {F} and {V}, the speaker {w}; the emotion appears {lab}."]
EMO_OFF = ["Although the speaker {x}, {A} and {B} point to {lab} emotion.",
           "The speaker {a} and {b} despite {X}, suggesting {lab} emotion.",
           "{A} and {B} outweigh {X}: {lab} emotion."]
EVIDENCE = {("orientation", "video"): ["looks around the room as if lost", "glances from side to side, disoriented"],
            ("attention", "audio"): ["takes a long time to start answering", "answers only after a long silence"],
            ("attention", "video"): ["looks away from the interviewer", "lets the gaze drift off to the side"],
            ("memory", "video"): ["glances upward as if searching for the memory", "looks up, trying to recall"],
            ("language", "text"): ["speaks in broken sentences with fillers",
                                   "uses fragmented sentences with ums and repeats"],
            ("language", "audio"): ["pauses long between words", "speaks haltingly with gaps between words"]}
COG_DEFICIT = ["{Name}: the speaker {ev}.", "Possible {name}, as the speaker {ev}.",
               "The speaker {ev}, suggesting {name}."]
COG_NONE = ["No obvious cognitive impairment: the answer is coherent and on topic.",
            "No signs of orientation, attention, memory or language problems.",
            "Cognition appears intact in this answer.",
            "No obvious impairment of orientation, attention, memory or language."]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _apportion(n: int, shares) -> list[int]:
    """Index sequence of length n interleaving categories in proportion to shares (largest deficit)."""
    counts, out = [0] * len(shares), []
    for j in range(n):
        k = max(range(len(shares)), key=lambda c: shares[c] * (j + 1) - counts[c])
        counts[k] += 1
        out.append(k)
    return out


def assign_subjects(num_subjects: int, seed: int) -> list[dict]:
    """Subject ids, depression/anxiety labels and a split, stratified by group; deterministic."""
    rng = np.random.default_rng([seed, 7001])
    groups = [GROUPS[g] for g in _apportion(num_subjects, GROUP_SHARE)]
    groups = [groups[i] for i in rng.permutation(num_subjects)]
    order = sorted(range(num_subjects), key=lambda i: (GROUPS.index(groups[i]), rng.random()))
    ks = _apportion(num_subjects, SPLIT_SHARE)
    for k in (1, 2):  # every split gets at least one subject (small builds)
        if k not in ks:
            ks[max(j for j, c in enumerate(ks) if c == 0 and ks.count(0) > 1)] = k
    splits = [""] * num_subjects
    for pos, k in zip(order, ks):
        splits[pos] = SPLITS[k]
    return [{"subject_id": f"s{i:03d}", "depression": groups[i][0], "anxiety": groups[i][1], "split": splits[i]}
            for i in range(num_subjects)]


def _fragment(clause: str, rng) -> str:
    """Broken speech: a repeated first word, fillers and a trailing-off break ('...')."""
    words = clause.rstrip(".?").split()
    words[0] = f"{words[0]}, {_pick(rng, ['um', 'uh'])}, {words[0].lower() if words[0] != 'I' else 'I'}"
    cut = max(2, len(words) // 2)
    words[cut - 1] += "..."
    words.insert(cut, _pick(rng, ["uh,", "um,", "the, the"]))
    return " ".join(words) + "."


def plan_subject(seed: int, index: int, depression: int, anxiety: int, num_utterances: int) -> dict:
    """Everything about one subject's session except the media: labels, cue parameters, texts and
    captions. Pure and deterministic in (seed, index, ...); `cues` holds the hidden cue values."""
    rng = np.random.default_rng([seed, index, 1])
    group = (int(depression), int(anxiety))
    subj = {"voice": _pick(rng, SUBJECT_VOICES), "pitch": rng.normal(0, 6), "rate": rng.normal(0, 8),
            "curv": rng.normal(0, 0.12), "brow": rng.normal(0, 0.12)}
    questions = [QUESTIONS[i] for i in rng.permutation(len(QUESTIONS))]
    utts = []
    for u in range(num_utterances):
        emo = int(rng.choice([-1, 0, 1], p=EMOTION_MIX[group]))
        cog = [int(rng.random() < r) for r in COGNITION_RATE[group]]
        off = str(rng.choice([k for k, _ in EMOTION_OFF], p=[p for _, p in EMOTION_OFF]))
        shown = {}
        for m in ("face", "voice", "text"):
            if m != off:
                shown[m] = emo
            elif emo != 0:
                shown[m] = 0 if rng.random() < (0.7 if m == "text" else 0.6) else -emo
            else:
                shown[m] = int(rng.choice([-1, 1]))
        channels = {}
        for d, flag in zip(DOMAINS, cog):
            while True:
                present = {c: bool(rng.random() < p[0 if flag else 1]) for c, p in CHANNELS[d].items()}
                if not flag or any(present.values()):
                    break
            channels[d] = present
        # transcript: [attention] emotion-clause [orientation] [memory]
        emo_clause, emo_gist = _pick(rng, EMOTION_CLAUSES[shown["text"]])
        gists, parts = {}, []
        if channels["attention"]["text"]:
            clause, gists["attention"] = _pick(rng, DEFICIT_CLAUSES["attention"])
            parts.append(clause)
        parts.append(_fragment(emo_clause, rng) if channels["language"]["text"] else emo_clause)
        for d in ("orientation", "memory"):
            if channels[d]["text"]:
                clause, gists[d] = _pick(rng, DEFICIT_CLAUSES[d])
                parts.append(clause)
        transcript = " ".join(parts)
        f, v = shown["face"], shown["voice"]
        lang_audio, attn_audio = channels["language"]["audio"], channels["attention"]["audio"]
        cues = {"face": f, "voice": v, "text": shown["text"], "off": off,
                "curvature": float(np.clip(0.85 * f + subj["curv"] + rng.normal(0, 0.15), -1.3, 1.3)),
                "brow": float(np.clip(0.85 * f + subj["brow"] + rng.normal(0, 0.15), -1.3, 1.3)),
                "eye_open": float(1 + 0.12 * f + rng.normal(0, 0.05)),
                "head_amp": float({-1: 0.5, 0: 1.1, 1: 2.0}[f] * math.exp(rng.normal(0, 0.25))),
                "droop": float({-1: 2.5, 0: 0.3, 1: -0.5}[f] + rng.normal(0, 0.5)),
                "pitch": int(np.clip(round({-1: 22, 0: 45, 1: 68}[v] + subj["pitch"] + rng.normal(0, 4)), 5, 95)),
                "rate": int(max(110, round({-1: 135, 0: 160, 1: 185}[v] + subj["rate"] + rng.normal(0, 6)
                                           - 10 * lang_audio))),
                "amp": int(round({-1: 80, 0: 100, 1: 120}[v] + rng.normal(0, 5))),
                "gap": int(rng.integers(4, 7)) if lang_audio else int(rng.integers(0, 2)),
                "word_breaks": (sorted(int(i) for i in rng.choice(np.arange(2, 6), 1 + int(rng.random() < 0.5),
                                                                  replace=False)) if lang_audio else []),
                "break_ms": int(rng.integers(500, 800)),
                "latency": float(rng.uniform(1.8, 2.8) if attn_audio else rng.uniform(0.35, 0.8)),
                "gaze": [GAZE_KIND[d] for d in GAZE_KIND if channels[d].get("video")],
                "channels": channels}
        utts.append({"utterance_id": f"s{index:03d}_u{u:02d}", "question": questions[u % len(questions)],
                     "transcript": transcript, "emotion_label": emo, "cognition_labels": cog, "cues": cues,
                     "emotion_caption": _emotion_caption(rng, emo, shown, off, emo_gist),
                     "cognition_caption": _cognition_caption(rng, cog, channels, gists)})
    return {"subject_id": f"s{index:03d}", "depression": group[0], "anxiety": group[1], "voice": subj["voice"],
            "utterances": utts}


def _emotion_caption(rng, emo: int, shown: dict, off: str, gist: str) -> str:
    face, voice = _pick(rng, FACE[shown["face"]]), _pick(rng, VOICE[shown["voice"]])
    words = tuple(p.format(g=gist) for p in _pick(rng, WORDS[shown["text"]]))
    desc, lab = {"face": face, "voice": voice, "text": words}, EMOTION_LABELS[emo]
    if off == "none":
        return _pick(rng, EMO_AGREE).format(f=face[0], v=voice[0], w=words[0], F=face[1], V=voice[1], W=words[1],
                                            lab=lab, Lab=_cap(lab))
    a, b = [desc[m] for m in ("face", "voice", "text") if m != off]
    text = _pick(rng, EMO_OFF).format(x=desc[off][0], X=desc[off][1], a=a[0], b=b[0], A=a[1], B=b[1], lab=lab)
    return _cap(text)


def _cognition_caption(rng, cog: list, channels: dict, gists: dict) -> str:
    if not any(cog):
        return _pick(rng, COG_NONE)
    sentences = []
    for d, name, flag in zip(DOMAINS, COGNITION_LABELS, cog):
        if not flag:
            continue
        ev = [gists[d] if (d, c) not in EVIDENCE else _pick(rng, EVIDENCE[(d, c)])
              for c, on in channels[d].items() if on]
        sentences.append(_pick(rng, COG_DEFICIT).format(Name=_cap(name), name=name, ev=" and ".join(ev)))
    return " ".join(sentences)


# ---- audio --------------------------------------------------------------------------------------
def _ssml(text: str, breaks: list, break_ms: int) -> str:
    words = re.sub(r"\.\.\.", " ...", text).split()
    out = []
    for i, w in enumerate(words):
        if w == "...":
            out.append(f'<break time="{break_ms if breaks else 200}ms"/>')
            continue
        out.append(w)
        if i + 1 in breaks:
            out.append(f'<break time="{break_ms}ms"/>')
    return "<speak>" + " ".join(out) + "</speak>"


def _speak(text: str, voice: str, pitch: int, rate: int, gap: int, amp: int, workdir: str,
           breaks=(), break_ms: int = 0) -> np.ndarray:
    path = os.path.join(workdir, "tts.wav")
    cmd = [ESPEAK, "-m", "-w", path, "-v", voice, "-p", str(pitch), "-s", str(max(80, rate)), "-g", str(gap),
           "-a", str(amp), _ssml(text, list(breaks), break_ms)]
    subprocess.run(cmd, check=True, capture_output=True)
    with wave.open(path, "rb") as w:
        assert w.getframerate() == TTS_SR and w.getnchannels() == 1
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(x) > 0.02)
    return x[max(0, loud[0] - 200): loud[-1] + 200] if loud.size else x


def _build_session(plan: dict, seed: int, index: int, out_path: Path, interview: bool = False):
    """Synthesize speech, render the face and mux the session MP4; return (start, end) of each answer
    and the session's truth: every speech turn (speaker, start, end, text, kind) and the face box of
    every frame. `interview` opens the session with the OPENING turns."""
    rng = np.random.default_rng([seed, index, 2])
    look = subject_look(rng)
    sr = TTS_SR
    interviewer, subject, turns, spans, speech_turns = [], [], [], [], []
    t = int(0.6 * sr)

    def say(who, text, x, kind):
        (interviewer if who == "interviewer" else subject).append((t, x))
        speech_turns.append({"speaker": who, "start": round(t / sr, 3), "end": round((t + len(x)) / sr, 3),
                             "text": text, "kind": kind})

    with tempfile.TemporaryDirectory(prefix="ecmc_synth_") as tmp:
        first = plan["utterances"][0]["cues"]
        for question, answer, reason in OPENING if interview else ():
            q = _speak(question, workdir=tmp, **INTERVIEWER)
            say("interviewer", question, q, "question")
            t += len(q) + int(OPENING_LATENCY * sr)
            a = _speak(answer, plan["voice"], first["pitch"], first["rate"], 0, first["amp"], tmp)
            say("patient", answer, a, reason)
            t += len(a) + int(OPENING_PAUSE * sr)
        for utt in plan["utterances"]:
            c = utt["cues"]
            q = _speak(utt["question"], workdir=tmp, **INTERVIEWER)
            say("interviewer", utt["question"], q, "question")
            turn_start, t = t, t + len(q)
            seg_start = t / sr + 0.1
            t += int(c["latency"] * sr)
            a = _speak(utt["transcript"], plan["voice"], c["pitch"], c["rate"], c["gap"], c["amp"], tmp,
                       c["word_breaks"], c["break_ms"])
            say("patient", utt["transcript"], a, "answer")
            speech = (t / sr, (t + len(a)) / sr)
            t += len(a)
            spans.append((round(seg_start, 3), round(t / sr + 0.2, 3)))
            turns.append((turn_start / sr, c, speech, seg_start))
            t += int(rng.uniform(0.5, 0.8) * sr)
        n_frames = int(math.ceil((t + 0.4 * sr) * FPS / sr))
        n_samples = int(round(n_frames * sr / FPS))
        mix, voice = np.zeros(n_samples, np.float32), np.zeros(n_samples, np.float32)
        for start, x in interviewer:
            mix[start:start + len(x)] += x
        for start, x in subject:
            voice[start:start + len(x)] += x
        mix = np.clip(0.8 * (mix + voice) + rng.normal(0, 0.002, n_samples).astype(np.float32), -1, 1)
        wav_path = os.path.join(tmp, "session.wav")
        with wave.open(wav_path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes((mix * 32767).astype("<i2").tobytes())
        # per-frame mouth opening from the subject's speech envelope
        hop = sr / FPS
        rms = np.array([np.sqrt(np.mean(voice[int(i * hop): int((i + 1) * hop)] ** 2) + 1e-12)
                        for i in range(n_frames)])
        ref = np.percentile(rms[rms > 1e-3], 90) if np.any(rms > 1e-3) else 1.0
        mouth = np.clip(rms / ref, 0, 1)
        blinks = np.cumsum(rng.uniform(2.0, 4.5, int(n_frames / FPS / 2) + 2))
        events = []
        for _, c, (s0, s1), seg_start in turns:
            kinds = c["gaze"]
            for k, kind in enumerate(kinds):  # split the answer among the gaze cues, 'away' starts early
                lo = seg_start if kind == "away" else s0 + (s1 - s0) * k / len(kinds)
                hi = s0 + (s1 - s0) * (k + 1) / len(kinds)
                length = min(hi - lo, max(1.0, 0.6 * (hi - lo)))
                t0 = lo + rng.uniform(0, max(0.0, hi - lo - length))
                events.append((t0, t0 + length, kind))
        cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "-",
               "-i", wav_path, "-map", "0:v", "-map", "1:a",
               "-c:v", "libx264", "-preset", "medium", "-crf", "25", "-pix_fmt", "yuv420p", "-g", str(2 * FPS),
               "-bf", "0", "-c:a", "aac", "-b:a", "48k", "-ar", str(OUT_SR), "-ac", "1",
               "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
               "-movflags", "+faststart", "-threads", "1", "-f", "mp4", str(out_path)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        turn_starts = [tr[0] for tr in turns]
        boxes = []
        for i in range(n_frames):
            ti = i / FPS
            k = max(0, int(np.searchsorted(turn_starts, ti, side="right")) - 1)
            blink = float(np.min(np.abs(blinks - ti)) < 0.08)
            frame = render_frame(look, turns[k][1], ti, float(mouth[i]), gaze_at(ti, events, rng.normal(0, 0.08)),
                                 blink, rng)
            boxes.append(head_box(look, turns[k][1], ti))
            proc.stdin.write(frame.tobytes())
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return spans, {"duration": round(n_samples / sr, 3), "fps": FPS, "speech": speech_turns, "face_boxes": boxes}


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _build_subject(job: tuple) -> tuple[list, dict]:
    seed, index, subject, n_utts, media_dir, interview = job
    plan = plan_subject(seed, index, subject["depression"], subject["anxiety"], n_utts)
    final = Path(media_dir) / f"{subject['subject_id']}.mp4"
    tmp = temporary_name(final)  # per process: an orphaned ffmpeg of a killed build writes its own file
    try:
        spans, truth = _build_session(plan, seed, index, tmp, interview)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    rows = []
    for utt, (start, end) in zip(plan["utterances"], spans):
        row = {"subject_id": subject["subject_id"], "utterance_id": utt["utterance_id"],
               "video_path": f"media/{final.name}", "audio_path": "", "start": start, "end": end,
               "transcript": utt["transcript"], "emotion_caption": utt["emotion_caption"],
               "cognition_caption": utt["cognition_caption"], "emotion_label": utt["emotion_label"],
               "cognition_labels": utt["cognition_labels"], "depression": subject["depression"],
               "anxiety": subject["anxiety"], "language": "en", "audio_features_path": "", "video_features_path": ""}
        assert list(row) == list(COLUMNS)
        row["split"] = subject["split"]
        rows.append((row, {"utterance_id": utt["utterance_id"], **utt["cues"]}))
    return rows, {"subject_id": subject["subject_id"], "video_path": f"media/{final.name}", "split": subject["split"],
                  **truth, "utterances": [{"utterance_id": r["utterance_id"], "start": r["start"], "end": r["end"]}
                                          for r, _ in rows]}


def _write_jsonl(path: Path, records) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def generate_synth(output_dir, preset="tiny", seed=0, num_subjects=None, utterances_per_subject=None,
                   progress=True, split=None) -> Path:
    """Build ECMC-Synth under output_dir (media/<subject>.mp4, manifest.jsonl, subjects.jsonl,
    cues.jsonl, README.md, build_info.json; the interview preset adds sessions.jsonl, the truth of
    every session); return the manifest path. `split` builds only that split's subjects (each exactly
    as in the whole build). Deterministic in its arguments; a complete build with the same settings
    is reused."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    n = int(num_subjects or PRESETS[preset]["num_subjects"])
    k = int(utterances_per_subject or PRESETS[preset]["utterances_per_subject"])
    if n < 3 or k < 1:
        raise ValueError("need at least 3 subjects (one per split) and 1 utterance per subject")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    interview = bool(PRESETS[preset].get("interview"))
    out = Path(output_dir)
    manifest, info_path = out / "manifest.jsonl", out / "build_info.json"
    info = {"generator": "ecmc-synth", "version": VERSION, "preset": preset, "seed": int(seed),
            "num_subjects": n, "utterances_per_subject": k, **({"split": split} if split else {})}
    indexed = [(i, s) for i, s in enumerate(assign_subjects(n, int(seed))) if split in (None, s["split"])]
    subjects = [s for _, s in indexed]
    if info_path.exists() and manifest.exists():
        try:
            old = json.loads(info_path.read_text())
        except (OSError, ValueError):
            old = {}
        if {key: old.get(key) for key in info} == info and all(
                (out / "media" / f"{s['subject_id']}.mp4").exists() for s in subjects):
            logger.info("ECMC-Synth: reusing the complete build in %s", out)
            return manifest
    if not Path(ESPEAK).exists():
        raise RuntimeError("ECMC-Synth needs espeak-ng (e.g. `apt-get install espeak-ng`)")
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)  # a killed rebuild must not look complete
    for folder in (out, media):  # temporaries of a killed build
        remove_dead_temporaries(folder)
    keep = {f"{s['subject_id']}.mp4" for s in subjects}
    for stale in media.glob("s[0-9][0-9][0-9]*.mp4"):
        if stale.name not in keep:
            stale.unlink()
    jobs = [(int(seed), i, s, k, str(media), interview) for i, s in indexed]
    from tqdm.auto import tqdm

    bar = dict(total=len(jobs), desc="ECMC-Synth subjects", unit="subject", disable=not progress)
    if len(jobs) >= 8 and (os.cpu_count() or 1) > 1:
        method = "fork" if "fork" in mp.get_all_start_methods() else None
        with mp.get_context(method).Pool(2) as pool:
            results = list(tqdm(pool.imap(_build_subject, jobs), **bar))
    else:
        results = [_build_subject(job) for job in tqdm(jobs, **bar)]
    rows = [r for res, _ in results for r, _ in res]
    cues = [c for res, _ in results for _, c in res]
    if interview:
        _write_jsonl(out / "sessions.jsonl", [truth for _, truth in results])
    _write_jsonl(out / "cues.jsonl", cues)
    _write_jsonl(out / "subjects.jsonl", subjects)
    _write_jsonl(manifest, rows)
    write_text(out / "README.md", (Path(__file__).with_name("synth_card.md")).read_text(encoding="utf-8"))
    write_text(info_path, json.dumps({**info, "num_utterances": len(rows)}, indent=2) + "\n")  # last: marks complete
    logger.info("ECMC-Synth: %d subjects, %d utterances written to %s", len(jobs), len(rows), out)
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Generate the ECMC-Synth data set.")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-subjects", type=int, default=None)
    parser.add_argument("--utterances-per-subject", type=int, default=None)
    parser.add_argument("--split", choices=SPLITS, help="build only this split's subjects")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    path = generate_synth(args.output, args.preset, args.seed, args.num_subjects, args.utterances_per_subject,
                          progress=not args.no_progress, split=args.split)
    print(f"ECMC-Synth ({args.preset}, seed {args.seed}) written to {path.parent} (manifest: {path})")


if __name__ == "__main__":
    main()
