"""Whole-interview segmentation measured against ECMC-Synth's truth (`--preset interview`, sessions.jsonl).

    python -m processing_ecmc.synth --preset interview --split test --output outputs/ecmc-synth-interview
    python -m evaluation_ecmc.segmentation_eval --data outputs/ecmc-synth-interview \\
        [--checkpoint outputs/demo/checkpoint] [--output outputs/segmentation.json]

Each session's recording alone (no transcript) goes through `segment_session`; its kept turns are
compared with the truth:
- **turn boundaries**: kept turns' starts and ends against the true answers' (manifest rows), matched
  one-to-one within TOLERANCE s; precision, recall, F1;
- **attribution**: the share of kept turns whose words are the patient's (the true speaker with most
  overlap), and of all speech regions given the right speaker;
- **WER**: all transcribed speech against the spoken texts, and the kept turns' transcripts against
  the answers they overlap; words compared after `normalise_words` (lower case, no punctuation,
  a few contractions expanded, fillers dropped);
- **drops**: the opening turns (a greeting, a personal-information question) and why they went;
- **faces**: the sampled frames of every true answer (16, as the processor samples them), the
  patient's track (modeling_ecmc.faces_ecmc): found, and IoU >= 0.5 with the true box;
- **speed**: seconds of work per second of recording (segmentation, and with a checkpoint captioning);
- with `--checkpoint`: the captions of the automatic turns against those of the true turns, same
  checkpoint: emotion read-back and cognition exact match (true labels of the overlapped answer),
  CIDEr-D (its references). Automatic turns that overlap no answer are counted, not scored.
Texts never reach the console; the JSON report holds numbers only.
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.5  # seconds: a boundary this close to the true one is found
FACE_IOU = 0.5
_FILLERS = {"um", "uh", "er", "ah", "hmm", "mm", "mhm"}
_CONTRACTIONS = {"i'm": "i am", "it's": "it is", "cannot": "can not", "can't": "can not", "don't": "do not",
                 "i've": "i have", "that's": "that is", "what's": "what is", "we're": "we are", "you're": "you are"}


def normalise_words(text: str) -> list[str]:
    """Lower case, no punctuation, a few contractions expanded, fillers dropped (as Whisper's
    English normaliser drops "um", "uh", "hmm": Whisper does not write them)."""
    words = re.findall(r"[a-z0-9']+", text.lower().replace("...", " "))
    return [w for w in " ".join(_CONTRACTIONS.get(w, w) for w in words).split() if w not in _FILLERS]


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance in words (substitutions + deletions + insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref != hyp))
    return row[-1]


def boundary_matches(found: list[float], true: list[float], tolerance: float = TOLERANCE) -> int:
    """How many of `found` match a distinct `true` time within `tolerance` (closest pairs first)."""
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found) for j, t in enumerate(true) if abs(f - t) <= tolerance)
    used_f, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    return len(used_f)


def _overlap(a, b) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _best(span, candidates):
    """Index of the candidate span overlapping `span` most, or None."""
    scores = [_overlap(span, (c["start"], c["end"])) for c in candidates]
    return int(np.argmax(scores)) if scores and max(scores) > 0 else None


def _prf(matched_found: int, n_found: int, n_true: int) -> dict:
    p = matched_found / n_found if n_found else 0.0
    r = matched_found / n_true if n_true else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def face_scores(root: Path, sessions, num_frames: int = 16) -> dict:
    """Share of the true answers' sampled frames where the patient's face is found / found with IoU >= 0.5."""
    import decord

    from modeling_ecmc.faces_ecmc import FaceBox, face_track

    found = hit = total = 0
    for s in sessions:
        reader = decord.VideoReader(str(root / s["video_path"]))
        for utt in s["utterances"]:
            first, last = int(utt["start"] * s["fps"]), min(int(utt["end"] * s["fps"]), len(reader)) - 1
            count = last - first + 1
            idx = first + np.floor((np.arange(num_frames) + 0.5) * count / num_frames).astype(int)
            boxes = face_track(reader.get_batch(idx.tolist()).asnumpy())
            for t, box in zip(idx, boxes):
                total += 1
                if box is not None:
                    found += 1
                    hit += box.iou(FaceBox(*s["face_boxes"][t])) >= FACE_IOU
    return {"frames": total, "found": found / total, "found_iou_0.5": hit / total}


def segmentation_scores(root: Path, sessions, manifest_rows, **transcribe_options) -> tuple[dict, dict]:
    """(scores, {subject_id: kept rows}) of every session (module docstring): each recording is
    transcribed (processing_ecmc.transcribe), then segmented from those segments (`segment_session`)."""
    from processing_ecmc.session import segment_session
    from processing_ecmc.transcribe import transcribe_session

    truth_rows = {}
    for row in manifest_rows:
        truth_rows.setdefault(row["subject_id"], []).append(row)
    counts = dict(starts=0, ends=0, found=0, true=0, patient_turns=0, regions=0, regions_right=0,
                  errors_all=0, words_all=0, errors_kept=0, words_kept=0, openings=0, openings_dropped=0)
    reasons, kept_rows, seconds, audio_seconds = {}, {}, 0.0, 0.0
    for s in sessions:
        t0 = time.perf_counter()
        segments, _ = transcribe_session(root / s["video_path"], progress=False, **transcribe_options)
        rows, dropped, patient = segment_session(root / s["video_path"], segments, subject_id=s["subject_id"])
        seconds += time.perf_counter() - t0
        audio_seconds += s["duration"]
        kept_rows[s["subject_id"]] = rows
        true = truth_rows[s["subject_id"]]
        counts["starts"] += boundary_matches([r["start"] for r in rows], [r["start"] for r in true])
        counts["ends"] += boundary_matches([r["end"] for r in rows], [r["end"] for r in true])
        counts["found"] += 2 * len(rows)
        counts["true"] += 2 * len(true)
        speech = s["speech"]
        for r in rows:
            k = _best((r["start"], r["end"]), speech)
            counts["patient_turns"] += k is not None and speech[k]["speaker"] == "patient"
        for seg in segments:  # every speech region (kept, dropped or the interviewer's) against the true speaker
            k = _best((seg.start, seg.end), speech)
            counts["regions"] += 1
            counts["regions_right"] += k is not None and (speech[k]["speaker"] == "patient") == (seg.speaker == patient)
        said = normalise_words(" ".join(t["text"] for t in speech))
        counts["errors_all"] += word_errors(said, normalise_words(" ".join(seg.text for seg in segments)))
        counts["words_all"] += len(said)
        for r in rows:  # kept turns against the answers they overlap
            k = _best((r["start"], r["end"]), true)
            if k is not None:
                ref = normalise_words(true[k]["transcript"])
                counts["errors_kept"] += word_errors(ref, normalise_words(r["transcript"]))
                counts["words_kept"] += len(ref)
        for opening in (t for t in speech if t["kind"] not in ("question", "answer")):
            counts["openings"] += 1
            k = next((i for i, (turn, _) in enumerate(dropped) if _overlap((turn.start, turn.end),
                                                                           (opening["start"], opening["end"])) > 0), None)
            if k is not None:
                counts["openings_dropped"] += 1
                key = f"{opening['kind']} -> {dropped[k][1]}"
                reasons[key] = reasons.get(key, 0) + 1
    matched = counts["starts"] + counts["ends"]
    scores = {"sessions": len(sessions), "audio_seconds": round(audio_seconds, 1),
              "kept_turns": counts["found"] // 2, "true_turns": counts["true"] // 2,
              "boundaries": {**_prf(matched, counts["found"], counts["true"]), "tolerance_s": TOLERANCE},
              "attribution": {"kept_turns_patient": counts["patient_turns"] / max(1, counts["found"] // 2),
                              "regions_right": counts["regions_right"] / max(1, counts["regions"]),
                              "regions": counts["regions"]},
              "wer": {"all_speech": counts["errors_all"] / max(1, counts["words_all"]),
                      "kept_turns": counts["errors_kept"] / max(1, counts["words_kept"])},
              "openings": {"total": counts["openings"], "dropped": counts["openings_dropped"], "reasons": reasons},
              "segmentation_real_time_factor": seconds / audio_seconds}
    return scores, kept_rows


def caption_agreement(checkpoint, root: Path, manifest_rows, kept_rows, batch_size: int = 8) -> dict:
    """Captions of the true turns and of the automatic ones, same checkpoint, scored the same way."""
    from evaluation_ecmc.caption_metrics import compute_caption_metrics
    from evaluation_ecmc.label_readback import readback_scores
    from evaluation_ecmc.session_profile import turn_inputs
    from modeling_ecmc.pipeline_ecmc import load_pipeline
    from modeling_ecmc.vocabulary_ecmc import reference_caption

    pipe = load_pipeline(checkpoint)

    def caption(rows):  # both sides read the media the way profile_session does
        return [r["caption"] for r in pipe(turn_inputs(rows, pipe), batch_size=batch_size)]

    true_rows = [{"video_path": str(root / r["video_path"]), "start": r["start"], "end": r["end"],
                  "transcript": r["transcript"]} for r in manifest_rows]
    true_captions = caption(true_rows)
    by_subject = {}
    for row in manifest_rows:
        by_subject.setdefault(row["subject_id"], []).append(row)
    auto_rows, auto_truth, unmatched = [], [], 0
    for subject, rows in kept_rows.items():
        for r in rows:
            k = _best((r["start"], r["end"]), by_subject[subject])
            if k is None:
                unmatched += 1
                continue
            auto_rows.append(r)
            auto_truth.append(by_subject[subject][k])
    t0 = time.perf_counter()
    auto_captions = caption(auto_rows)
    auto_seconds = time.perf_counter() - t0

    def scored(captions, rows):
        read = readback_scores(captions, [r["emotion_label"] for r in rows], [r["cognition_labels"] for r in rows])
        cider = compute_caption_metrics(captions, [reference_caption(r) for r in rows], parts=("caption",),
                                        metrics=("CIDEr",))["caption"]["CIDEr"]
        return {"n": len(rows), "emotion_readback": read["emotion"]["accuracy"],
                "cognition_exact": read["cognition"]["exact_match"], "cider_d": cider}

    true_scores, auto_scores = scored(true_captions, manifest_rows), scored(auto_captions, auto_truth)
    return {"true_turns": true_scores, "automatic_turns": auto_scores, "automatic_unmatched": unmatched,
            "emotion_readback_difference_points": 100 * (auto_scores["emotion_readback"] - true_scores["emotion_readback"]),
            "cider_d_relative_difference": auto_scores["cider_d"] / true_scores["cider_d"] - 1,
            "captioning_seconds": auto_seconds}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an ECMC-Synth build of the interview preset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--checkpoint", type=Path, help="also compare captions of automatic and true turns")
    parser.add_argument("--no-faces", action="store_true", help="skip the face measurement")
    parser.add_argument("--output", type=Path, help="write the report here (JSON)")
    args = parser.parse_args(argv)
    sessions = [s for s in read_jsonl(args.data / "sessions.jsonl") if s["split"] == args.split]
    if not sessions:
        raise SystemExit(f"{args.data}: no {args.split} session in sessions.jsonl (build it with --preset interview)")
    subjects = {s["subject_id"] for s in sessions}
    rows = [r for r in read_jsonl(args.data / "manifest.jsonl") if r["subject_id"] in subjects]
    report, kept = segmentation_scores(args.data, sessions, rows)
    if not args.no_faces:
        report["faces"] = face_scores(args.data, sessions)
    if args.checkpoint:
        report["captions"] = caption_agreement(args.checkpoint, args.data, rows, kept)
        report["real_time_factor"] = (report["segmentation_real_time_factor"] * report["audio_seconds"]
                                      + report["captions"]["captioning_seconds"]) / report["audio_seconds"]
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        from modeling_ecmc.atomic_io import write_text

        write_text(args.output, text + "\n")
    return report


if __name__ == "__main__":
    main()
