"""The ECMC data set schema: one row per utterance (DESIGN §2).

Media stay as path strings (decoded by decord in the processor), so a data set needs no second
decoder. Paths are relative to the data set's root folder (stored in the DatasetDict's info) or
absolute. A missing modality is an empty string, never a fake file.
"""

from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, FEATURE_COLUMNS, MEDIA_COLUMNS

# name -> (datasets feature dtype, meaning). Order is the column order of built data sets.
COLUMNS = {
    "subject_id": ("string", "pseudonymous subject id; splits never share a subject"),
    "utterance_id": ("string", "unique id of the utterance"),
    "video_path": ("string", "video file (MP4 etc.), or '' when there is no video"),
    "audio_path": ("string", "separate audio file (wav/flac/mp3), or '' to use the video's audio track"),
    "start": ("float64", "segment start in seconds within the media (0 for a clip)"),
    "end": ("float64", "segment end in seconds; -1 means the end of the media"),
    "transcript": ("string", "what the subject said (sensitive: never logged)"),
    "emotion_caption": ("string", "target emotion caption ('' if unannotated)"),
    "cognition_caption": ("string", "target cognition caption ('' if unannotated)"),
    "emotion_label": ("int8", "valence: -1 negative, 0 neutral, 1 positive"),
    "cognition_labels": ("list_int8", "four 0/1 flags in the order of COGNITION_LABELS"),
    "depression": ("int8", "subject-level: 1 yes, 0 no, -1 unknown"),
    "anxiety": ("int8", "subject-level: 1 yes, 0 no, -1 unknown"),
    "language": ("string", "'en' or 'zh' (chooses prompts and metric tokenisation)"),
    "audio_features_path": ("string", "pre-extracted audio features (.npy, T x d), or ''"),
    "video_features_path": ("string", "pre-extracted video features (.npy, T x d), or ''"),
}
SPLITS = ("train", "validation", "test")
# The file columns, in the order a row's files are checked (the first problem found is its drop reason).
MEDIA_PATHS = tuple(MEDIA_COLUMNS.values())  # video, audio
FEATURE_PATHS = (FEATURE_COLUMNS["audio"], FEATURE_COLUMNS["video"])  # the schema's order: audio first
PATH_COLUMNS = MEDIA_PATHS + FEATURE_PATHS


def features():
    """The `datasets.Features` of the schema (imported lazily: `datasets` is an optional extra)."""
    import datasets

    def feature(dtype):
        if dtype == "list_int8":
            return datasets.Sequence(datasets.Value("int8"), length=len(COGNITION_LABELS))
        return datasets.Value(dtype)

    return datasets.Features({name: feature(dtype) for name, (dtype, _) in COLUMNS.items()})


__all__ = ["COLUMNS", "SPLITS", "MEDIA_PATHS", "FEATURE_PATHS", "PATH_COLUMNS", "features"]
