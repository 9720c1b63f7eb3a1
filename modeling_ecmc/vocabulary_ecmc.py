"""The one vocabulary of ECMC: modality and stream names, label names, the caption format, the
placeholder tokens and generation defaults. Everything else (model, processor, data sets, training,
evaluation, demo) imports these names from here, so renaming a label or adding a modality is one edit.

This file travels inside saved checkpoints (the config, model and processor import it, and
transformers copies it beside them), so it imports only the standard library.
"""

import re

# Modalities in their canonical order: the order of `modality_mask` columns and of the Q-Formers.
MODALITIES = ("video", "audio", "text")
STREAMS = ("emotion", "cognition")
# A data set row's file columns per modality: decoded media, and pre-extracted features (.npy, T x d).
MEDIA_COLUMNS = {"video": "video_path", "audio": "audio_path"}
FEATURE_COLUMNS = {"video": "video_features_path", "audio": "audio_features_path"}
# Model keyword names per modality: raw encoder inputs and their mask (None: the encoder needs none).
RAW_INPUTS = {
    "video": ("pixel_values_videos", None),
    "audio": ("input_values", "audio_attention_mask"),
    "text": ("text_input_ids", "text_attention_mask"),
}


def feature_input_names(modality: str) -> tuple[str, str]:
    """Model keyword names of one modality's precomputed features and their frame mask."""
    return f"{modality}_features", f"{modality}_feature_mask"


# Every modality keyword the model takes; `modality_mask` (batch, len(MODALITIES)) marks which
# modalities each sample really has.
MODALITY_INPUT_NAMES = tuple(
    name for m in MODALITIES for name in (*RAW_INPUTS[m], *feature_input_names(m)) if name
) + ("modality_mask",)

# Emotion valence y_e (paper §Emotional Representation Extraction).
EMOTION_LABELS = {-1: "negative", 0: "neutral", 1: "positive"}
# Cognition y_c in {0,1}^4, in this order (paper §Cognitive Representation Extraction, MMSE).
COGNITION_LABELS = ("orientation deficit", "attention deficit", "memory deficit", "language disorder")
# The cognitive domain each label is about (its first word), in the same order.
COGNITION_DOMAINS = tuple(label.split()[0] for label in COGNITION_LABELS)
# Subject-level screening labels (paper Eq. 5): 1 yes, 0 no, -1 unknown.
DISORDERS = ("depression", "anxiety")
SUBJECT_LABEL_VALUES = (-1, 0, 1)
LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"


def emotion_label_problem(value) -> str | None:
    """Why `value` is not an emotion label, or None when it is one."""
    return None if value in EMOTION_LABELS and not isinstance(value, bool) else (
        f"emotion label {value!r} is not one of {sorted(EMOTION_LABELS)}")


def cognition_labels_problem(flags) -> str | None:
    """Why `flags` are not cognition labels (one 0/1 flag per COGNITION_LABELS), or None."""
    try:
        flags = list(flags)
    except TypeError:
        flags = None
    if flags is None or len(flags) != len(COGNITION_LABELS) or any(f not in (0, 1) or isinstance(f, bool) for f in flags):
        return f"cognition labels {flags!r} are not {len(COGNITION_LABELS)} flags 0/1 ({', '.join(COGNITION_LABELS)})"
    return None


# Placeholders the processor puts into the decoder prompt; the model replaces their embeddings by
# the emotion / cognition query outputs (Eq. 3: [BOS] + h_e + h_c + prompt).
PLACEHOLDER_TOKENS = {"emotion": "<ecmc_emotion>", "cognition": "<ecmc_cognition>"}
EMOTION_TOKEN, COGNITION_TOKEN = PLACEHOLDER_TOKENS["emotion"], PLACEHOLDER_TOKENS["cognition"]
# Label id that the caption loss ignores (prompt and padding positions); transformers' convention.
IGNORE_INDEX = -100

# The reference implementation's target format; metrics are computed per part.
CAPTION_TEMPLATE = "Emotion:\n{emotion}\n\nCognition:\n{cognition}"
CAPTION_PARTS = ("emotion", "cognition")
_CAPTION_RE = re.compile(r"^\s*Emotion:\s*(?P<emotion>.*?)\s*(?:Cognition:\s*(?P<cognition>.*))?$", re.S)


def format_caption(emotion: str, cognition: str) -> str:
    return CAPTION_TEMPLATE.format(emotion=emotion.strip(), cognition=cognition.strip())


def reference_caption(row) -> str:
    """The target caption of a data set row (its `emotion_caption` and `cognition_caption`)."""
    return format_caption(row["emotion_caption"], row["cognition_caption"])


def split_caption(caption: str) -> dict:
    """Split a caption into its emotion and cognition parts; a part that is missing comes back ''."""
    match = _CAPTION_RE.match(caption)
    if match is None:  # no "Emotion:" header: the model wrote free text; treat it all as emotion
        head, sep, tail = caption.partition("Cognition:")
        return {"emotion": head.strip(), "cognition": tail.strip() if sep else ""}
    return {"emotion": (match["emotion"] or "").strip(), "cognition": (match["cognition"] or "").strip()}


# Greedy decoding, with these `max_new_tokens` unless a call says otherwise: a caption of the demo's
# longest training target is under 100 tokens; a profile summarises many captions.
MAX_NEW_TOKENS = {"caption": 128, "profile": 256}
# The paper keeps utterances of at least this many seconds (shorter ones are dropped).
MIN_UTTERANCE_SECONDS = 2.0
