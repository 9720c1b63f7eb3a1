"""One whole interview recording -> the patient's turns, a caption of each, the profile (and the
screening answers): what `ecmc profile-session` and the demo's Profile tab do, from Python.

    from modeling_ecmc.pipeline_ecmc import load_pipeline
    from evaluation_ecmc.detection import attach_profile_llm
    pipe = attach_profile_llm(load_pipeline("outputs/demo/checkpoint"), "auto")
    result = profile_session(pipe, "s01.mp4")                  # transcribed, speakers found by voice
    result = profile_session(pipe, "s01.mp4", "s01.vtt", detection=True)
    result.turns, result.captions, result.profile, result.screening

The turns come from processing_ecmc.session.segment_session (its rule for the patient and the
paper's filter); captions are written in batches with a progress bar. Each turn's audio is decoded
from a seek to its start (`turn_inputs`), so a two-hour recording's track is never in memory whole.
Nothing is logged but counts.
"""

import importlib.util
from dataclasses import dataclass

from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE
from processing_ecmc.session import drop_summary, pipeline_input, segment_session
from processing_ecmc.turns import SegmentationError


@dataclass
class SessionProfile:
    turns: list[dict]  # kept turns as `ecmc segment` rows
    dropped: list  # [(Turn, reason)]
    patient: str
    captions: list[dict]  # pipeline outputs, one per turn
    profile: str
    screening: dict | None  # {disorder: detect(...) result} with detection=True

    @property
    def summary(self) -> str:
        return f"{len(self.turns)} turn(s) of {self.patient} kept, {drop_summary(self.dropped)}"


def profile_session(pipe, recording, transcript=None, *, detection: bool = False, batch_size: int = 8,
                    language: str = DEFAULT_LANGUAGE, progress: bool = True, **segment_options) -> SessionProfile:
    """`segment_options`: patient, subject_id, min_seconds, asr_model, num_speakers (segment_session).
    `pipe` needs a profile LLM for `detection` (evaluation_ecmc.detection.attach_profile_llm)."""
    from tqdm.auto import tqdm

    from .detection import DISORDERS, detect

    rows, dropped, patient = segment_session(recording, transcript, language=language, progress=progress,
                                             **segment_options)
    if not rows:
        raise SegmentationError(f"{transcript or recording}: no turn of the patient ({patient}) is left "
                                f"({drop_summary(dropped)})")
    items = turn_inputs(rows, pipe)
    stream = pipe((x for x in items), batch_size=batch_size, language=language)
    captions = list(tqdm(stream, total=len(items), desc="Captioning", unit="turn", disable=not progress))
    written = [c["caption"] for c in captions if c["caption"].strip()]
    if not written:
        raise SegmentationError(f"{recording}: the model wrote an empty caption for every turn; no profile")
    profile = pipe({"captions": written, "language": language})["profile"]
    screening = None
    if detection:
        said = " ".join(row["transcript"] for row in rows)
        screening = {d: detect(pipe.profile_model, pipe.profile_tokenizer, said, d, profile=profile,
                               language=language) for d in DISORDERS}
    return SessionProfile(rows, dropped, patient, captions, profile, screening)


def turn_inputs(rows, pipe) -> list[dict]:
    """Pipeline inputs of `ecmc segment` rows, each with its turn's waveform read by seeking
    (processing_ecmc.transcribe.read_segment, PyAV from the `interview` extra). Without PyAV, or for
    a checkpoint whose code predates waveform inputs, the pipeline reads the files itself (decoding
    each track whole, once)."""
    items = [pipeline_input(row) for row in rows]
    if importlib.util.find_spec("av") is None or not getattr(pipe.processor, "takes_audio_waveforms", False):
        return items
    from processing_ecmc.transcribe import read_segment

    for item in items:
        item["audio"] = read_segment(item.get("audio") or item["video"], item["start"], item["end"])
    return items
