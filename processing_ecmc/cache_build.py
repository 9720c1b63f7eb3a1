"""Building the feature cache: run the frozen encoders once per data set and store their outputs.

DESIGN §4: the modality encoders (video, audio, text) are frozen, so their features are computed
once per utterance and stored (cache_store.py); stage-1 and stage-2 training and evaluation read
the cache (cached_dataset.py) instead of decoding media and running the encoders every epoch.

`build_feature_cache` loads each row's media through the processor, has the model encode each
batch (``ECMCModel.encode_per_row``: every row trimmed to its valid frames, audio encoders that are
not padding-invariant run on equal-length groups, so the cache does not depend on batch size or
order) and writes one file per utterance.

Resumes: a rerun verifies each existing file (readable header, format, utterance id, fingerprint,
checksum) and its input fingerprint (cache_fingerprint.py); it reuses what verifies and computes
only what is missing, stale (media or transcript changed) or corrupt (a warning names the file).

Pre-extracted features (MMDA): a row whose ``video_features_path`` / ``audio_features_path`` names
a ``.npy`` (frames x d_m) has that modality's features taken from the file (stored as float16)
instead of the encoder.

This module does not travel with checkpoints (it needs safetensors and tqdm). Nothing here logs
transcripts.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from modeling_ecmc.atomic_io import remove_dead_temporaries as _remove_dead_temporaries
from modeling_ecmc.vocabulary_ecmc import FEATURE_COLUMNS, MEDIA_COLUMNS, MODALITIES
from processing_ecmc.cache_fingerprint import (
    canonical,
    check_media_fingerprint,
    encoder_owner,
    fingerprint_description,
    fingerprint_of,
    inputs_fingerprint,
    resolve_path,
    row_get,
    row_text,
)
from processing_ecmc.cache_store import CacheError, cache_file_name, read_verified, to_store, write_entry, write_info
from processing_ecmc.feature_files import read_feature_file

logger = logging.getLogger(__name__)


def _read_npy(path: Path, modality: str, width: int) -> torch.Tensor:
    try:
        array = read_feature_file(path, width)
    except ValueError as error:
        raise ValueError(f"pre-extracted {modality} features: {error} (the cache takes only non-empty "
                         f"(frames, {width}) arrays of finite numbers; NaN and Inf are not finite)") from None
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _load_row(processor, row, data_root, use_video: bool, use_audio: bool, config):
    """(frames or None, waveform or None, transcript or None, {modality: npy features}) of one row."""
    video = row_text(row.get(MEDIA_COLUMNS["video"]))
    audio = row_text(row.get(MEDIA_COLUMNS["audio"]))
    start, end = row.get("start"), row.get("end")
    start = None if start is None else float(start)
    end = None if end is None else float(end)  # -1: the end of the media
    npy = {}
    for m, column in FEATURE_COLUMNS.items():
        feature_path = row_text(row.get(column))
        if feature_path and m in config.modalities:
            npy[m] = _read_npy(resolve_path(feature_path, data_root), m, config.feature_size(m))
    want_video = use_video and bool(video) and "video" not in npy
    want_audio = use_audio and bool(audio or video) and "audio" not in npy
    video_path = str(resolve_path(video, data_root)) if video else None
    audio_path = str(resolve_path(audio, data_root)) if audio else None
    frames = waveform = None
    # min_seconds=0: the rows' durations were checked when the data set was built (data.min_duration)
    if want_video and want_audio:  # the processor's own path (a video without audio track: no waveform)
        frames, waveform = processor.load_media(video_path, audio_path, start, end, min_seconds=0)
    elif want_video:  # the audio is not used or comes from features: do not decode it
        from modeling_ecmc.media_ecmc import load_video_frames

        frames = load_video_frames(video_path, start, end, processor.num_frames)
    elif want_audio:
        waveform = _load_audio_only(processor, audio_path, video_path, start, end)
    transcript = row_text(row.get("transcript")).strip() or None
    return frames, waveform, transcript, npy


def _load_audio_only(processor, audio_path, video_path, start, end):
    """The waveform of a separate audio file, else of a video's audio track (None if it has none)."""
    from modeling_ecmc.media_ecmc import NoAudioTrackError

    if audio_path:
        return processor.load_media(None, audio_path, start, end, min_seconds=0)[1]
    try:
        return processor.load_media(None, video_path, start, end, min_seconds=0)[1]
    except NoAudioTrackError:
        return None


class _Builder:
    def __init__(self, owner, processor, folder, fingerprint, data_root, callback, bar):
        self.owner, self.processor, self.folder = owner, processor, folder
        self.fingerprint, self.data_root, self.callback, self.bar = fingerprint, data_root, callback, bar
        self.stats = Counter()

    def check(self, path: Path, utterance_id, inputs: dict) -> str:
        """"valid", "missing", "stale" or "corrupt"."""
        if not path.exists():
            return "missing"
        try:
            _, metadata = read_verified(path, utterance_id, self.fingerprint)
        except CacheError as error:
            logger.warning("feature cache: %s; rebuilding it", error)
            return "corrupt"
        if metadata.get("inputs") != canonical(inputs):
            logger.info("feature cache: %s is stale (media, segment or transcript changed); rebuilding it", path)
            return "stale"
        return "valid"

    def done(self, utterance_id, status: str):
        self.stats[status] += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(computed=self.stats["computed"] + self.stats["rebuilt"], reused=self.stats["reused"],
                                 refresh=False)
        if self.callback is not None:
            self.callback(utterance_id, status)

    def compute(self, pending: list):
        config = self.owner.config
        use_video, use_audio = "video" in config.modalities, "audio" in config.modalities
        loaded = []
        for utterance_id, row, path, inputs, status in pending:
            try:
                loaded.append(_load_row(self.processor, row, self.data_root, use_video, use_audio, config))
            except Exception as error:
                logger.error("feature cache: cannot load the inputs of utterance %r (%s)", utterance_id, type(error).__name__)
                if hasattr(error, "add_note"):  # Python >= 3.11
                    error.add_note(f"while caching the features of utterance {utterance_id!r}")
                raise
        frames = [f for f, _, _, _ in loaded]
        waveforms = [w for _, w, _, _ in loaded]
        transcripts = [t if "text" in config.modalities else None for _, _, t, _ in loaded]
        if any(x is not None for x in frames + waveforms + transcripts):
            inputs = self.processor(frames=frames, waveforms=waveforms, transcripts=transcripts, return_tensors="pt")
            encoded = self.owner.encode_per_row(**inputs)
        else:
            encoded = {}
        for b, (utterance_id, row, path, inputs_fp, status) in enumerate(pending):
            tensors, flags = {}, []
            for m in MODALITIES:
                features = loaded[b][3].get(m)
                if features is None and m in encoded:
                    features = encoded[m][b]
                if features is not None and features.shape[0] == 0:
                    logger.warning("feature cache: utterance %r gives no %s frames; stored as missing", utterance_id, m)
                    features = None
                flags.append(features is not None)
                if features is not None:
                    tensors[f"{m}_features"] = to_store(features, utterance_id, m)
            if not any(flags):
                raise ValueError(f"utterance {utterance_id!r} has no modality the model uses (no media, no transcript)")
            tensors["modality_mask"] = torch.tensor(flags, dtype=torch.bool)
            write_entry(path, tensors, utterance_id, self.fingerprint, canonical(inputs_fp))
            self.done(utterance_id, "computed" if status == "missing" else "rebuilt")


def build_feature_cache(model, processor, rows, cache_dir, batch_size: int = 8, progress: bool = True, *,
                        data_root=None, media_fingerprint: str = "stat", callback=None) -> Path:
    """Run the frozen encoders of `model` (an ECMCModel or ECMCForConditionalGeneration) once over
    `rows` (dicts with the schema columns, e.g. a `datasets.Dataset` split) and store every
    utterance's features under ``cache_dir/<fingerprint[:16]>/``; return that folder.

    Resumable: files that exist, verify and match their utterance's inputs are reused; missing,
    stale or corrupt ones are (re)computed. `data_root` resolves relative media paths (default: the
    working directory). `media_fingerprint`: "stat" (size + mtime_ns) or "sha256" (file content).
    `callback(utterance_id, status)`, status "reused" / "computed" / "rebuilt", runs after each
    utterance (an exception from it stops the build; what was written stays valid)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_media_fingerprint(media_fingerprint)
    from tqdm.auto import tqdm

    owner = encoder_owner(model)
    description = fingerprint_description(model, processor)
    fingerprint = fingerprint_of(description)
    folder = Path(cache_dir) / fingerprint[:16]
    folder.mkdir(parents=True, exist_ok=True)
    write_info(folder, fingerprint, description)
    removed = _remove_dead_temporaries(folder)
    if removed:
        logger.info("feature cache: removed %d temporary file(s) of interrupted runs in %s", removed, folder)

    total = len(rows) if hasattr(rows, "__len__") else None
    modes = {name: module.training for name, module in owner.encoders.named_modules()}
    owner.encoders.eval()  # no dropout in cached features, whatever mode the model was left in
    seen = set()
    bar = tqdm(total=total, desc="Feature cache", unit="utt", disable=not progress)
    builder = _Builder(owner, processor, folder, fingerprint, data_root, callback, bar)
    try:
        with torch.no_grad():
            pending = []
            for index, row in enumerate(rows):
                utterance_id = row_get(row, "utterance_id")
                if utterance_id is None or str(utterance_id) == "":
                    raise ValueError(f"row {index} has no utterance_id")
                utterance_id = str(utterance_id)
                if utterance_id in seen:
                    raise ValueError(f"row {index}: duplicate utterance_id {utterance_id!r}")
                seen.add(utterance_id)
                path = folder / cache_file_name(utterance_id)
                inputs = inputs_fingerprint(row, data_root, media_fingerprint)
                status = builder.check(path, utterance_id, inputs)
                if status == "valid":
                    builder.done(utterance_id, "reused")
                    continue
                pending.append((utterance_id, row, path, inputs, status))
                if len(pending) >= batch_size:
                    builder.compute(pending)
                    pending = []
            if pending:
                builder.compute(pending)
    finally:
        bar.close()
        for name, module in owner.encoders.named_modules():
            module.training = modes.get(name, module.training)
    stats = builder.stats
    logger.info(
        "feature cache %s: %d utterances, %d computed, %d rebuilt, %d reused",
        folder, sum(stats.values()), stats["computed"], stats["rebuilt"], stats["reused"],
    )
    return folder


__all__ = ["build_feature_cache"]
