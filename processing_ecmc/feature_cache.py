"""The feature cache: run the frozen encoders once per data set, store their outputs, train from them.

DESIGN §4: the modality encoders (video, audio, text) are frozen, so their features are computed
once per utterance and stored; stage-1 and stage-2 training and evaluation read the cache instead
of decoding media and running the encoders every epoch.

    fingerprint = cache_fingerprint(model, processor)
    folder = build_feature_cache(model, processor, dataset["train"], "cache/features")
    ds = CachedFeatureDataset(dataset["train"], "cache/features", fingerprint)
    loader = DataLoader(ds, batch_size=64, shuffle=True, collate_fn=collate_cached)
    batch = next(iter(loader)); index = batch.pop("index")
    out = model.model(**batch)            # stage 1: emotion_labels / cognition_labels included

Layout
------
``cache_dir/<fingerprint[:16]>/<sha1(utterance_id)>.safetensors``, one file per utterance, plus
``cache_info.json`` (what the fingerprint covers, for humans). Each file holds, for every modality
the utterance has, ``{m}_features`` (frames, d_m) float16 -- exactly what
``ECMCModel.encode_modalities`` returns for it, trimmed to its valid frames/tokens -- and
``modality_mask`` (3,) bool in the order video, audio, text. A modality the utterance lacks (the
processor's ``modality_mask``), or that the model does not use, has no tensor and a False flag: it
is never stored as zeros. The safetensors metadata holds the format version, the utterance id, the
cache fingerprint, the utterance's input fingerprint and a sha256 checksum of the tensors.

Fingerprints
------------
- **Cache fingerprint** (``cache_fingerprint``): sha256 over the format version and storage dtype,
  the configured modalities, each encoder's config (``to_dict()`` without run-time keys such as
  ``transformers_version``, ``_name_or_path``, ``dtype``, ``architectures``), each encoder's
  parameter dtype and a sha256 of its weights (every state-dict tensor's bytes; computed once per
  module and reused while the weights are unchanged), the processor settings that shape the
  features (``num_frames``, ``sampling_rate``, ``max_text_tokens``, the image processor's and the
  feature extractor's ``to_dict()``, the text tokenizer's vocabulary, normaliser and
  pre-tokeniser), and the model's ``text_feature_mode`` (the stored text features are token states
  in either mode; the mode is included so that an ablation never shares a folder by accident).
  Any change gives a new folder; old folders are left alone (delete them by hand).
- **Input fingerprint** (per utterance, checked on every resume and by ``CachedFeatureDataset``):
  the segment (``start``, ``end``), a sha256 of the transcript (never the text), and for every
  file used (``video_path``, ``audio_path``, ``*_features_path``) its name and either its size and
  ``st_mtime_ns`` (``media_fingerprint="stat"``, the default: free, like make/rsync; copying the
  media without keeping modification times, e.g. ``cp`` without ``-p``, makes the cache rebuild) or
  a sha256 of its content (``"sha256"``: survives copies, costs one read of every file per run;
  session recordings shared by many utterances are hashed once). Paths themselves are not part of
  it, so a data set can move.

Writes, resumes, verification
-----------------------------
Every file is written to a temporary file in the same folder, flushed, fsync'ed and renamed over
its final name (``atomic_io.write_bytes``), so a killed run leaves whole files or none (and temporaries of
dead processes, removed on the next build). A rerun verifies each existing file (readable header,
format, utterance id, fingerprint, checksum) and its input fingerprint; it reuses what verifies and
computes only what is missing, stale (media or transcript changed) or corrupt (a warning names
the file). Readers verify the checksum (and that every feature is finite) on every load and raise
``CacheError`` naming the file; a bad file is never used.

Pre-extracted features (MMDA): a row whose ``video_features_path`` / ``audio_features_path`` names
a ``.npy`` (frames x d_m) has that modality's features taken from the file (stored as float16)
instead of the encoder.

Audio batching: wav2vec2/HuBERT encoders with ``feat_extract_norm="group"`` (HuBERT-base and the
offline default) normalise over the whole padded waveform, so their output for an utterance
depends on how much padding its batch adds. Such encoders are run on groups of equal-length
waveforms (in practice one utterance at a time), which makes the cache independent of batch size
and order; encoders with ``"layer"`` norm are batched with an attention mask.

Privacy: the cache holds features derived from interviews (text features can reveal the
transcript); keep it where the data lives. Nothing here logs transcripts.

This module does not travel with checkpoints (it needs safetensors and tqdm).
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from modeling_ecmc.atomic_io import remove_dead_temporaries as _remove_dead_temporaries
from modeling_ecmc.atomic_io import write_bytes as _write_atomic
from modeling_ecmc.vocabulary_ecmc import MODALITIES

logger = logging.getLogger(__name__)

FORMAT = "ecmc-feature-cache"
FORMAT_VERSION = 1
STORE_DTYPE = torch.float16
INFO_FILE = "cache_info.json"
MEDIA_FINGERPRINTS = ("stat", "sha256")
FILE_COLUMNS = ("video_path", "audio_path", "video_features_path", "audio_features_path")
# Config keys that describe how a model is run or saved, not what it computes.
_VOLATILE_CONFIG_KEYS = {
    "transformers_version", "architectures", "output_hidden_states", "output_attentions", "return_dict",
    "dtype", "torch_dtype", "id2label", "label2id", "problem_type", "use_cache", "tokenizer_class",
}


class CacheError(ValueError):
    """A cache file is missing, unreadable, corrupt or was built for other encoders / inputs.
    ``path`` names the file, ``problem`` says what is wrong."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# ----------------------------------------------------------------------------- fingerprints
def _encoder_owner(model):
    """The module that has `encode_modalities` and `encoders` (an ECMCModel), given it or its wrapper."""
    if hasattr(model, "encode_modalities"):
        return model
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "encode_modalities"):
        return inner
    raise TypeError(f"expected an ECMCModel or ECMCForConditionalGeneration, got {type(model).__name__}")


def _tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()


_WEIGHT_HASHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _weights_sha256(module: torch.nn.Module) -> str:
    """sha256 of every state-dict tensor (name, dtype, shape, bytes); recomputed only when a tensor
    was replaced or modified in place (data pointer / version counter changed)."""
    state = module.state_dict()
    key = tuple((name, t.device.type, t.data_ptr(), t._version, t.dtype, tuple(t.shape)) for name, t in state.items())
    cached = _WEIGHT_HASHES.get(module)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if tensor.device.type == "meta":
            raise ValueError(f"cannot fingerprint encoder weights on the meta device ({name}); load real weights first")
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(_tensor_bytes(tensor))
    value = digest.hexdigest()
    _WEIGHT_HASHES[module] = (key, value)
    return value


def _clean_dict(values: dict, drop=()) -> dict:
    return {k: v for k, v in sorted(values.items()) if not str(k).startswith("_") and k not in drop}


def _tokenizer_digest(tokenizer) -> dict:
    """What decides the token ids a tokenizer produces: class, truncation side and a sha256 of its
    vocabulary and pipeline (without the per-call truncation/padding state a fast tokenizer keeps)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        text = json.dumps(spec, sort_keys=True)
    else:
        text = json.dumps(sorted(tokenizer.get_vocab().items())) + f"|lower={getattr(tokenizer, 'do_lower_case', None)}"
    return {
        "class": type(tokenizer).__name__,
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def fingerprint_description(model, processor) -> dict:
    """The JSON-able description `cache_fingerprint` hashes (also written to cache_info.json)."""
    owner = _encoder_owner(model)
    config = owner.config
    encoders = {}
    for m in config.modalities:
        encoder = owner.encoders[m]
        parameter = next(encoder.parameters(), None)
        encoders[m] = {
            "config": _clean_dict(config.encoder_config(m).to_dict(), _VOLATILE_CONFIG_KEYS),
            "dtype": str(parameter.dtype) if parameter is not None else None,
            "weights_sha256": _weights_sha256(encoder),
        }
    processor_settings = {
        "num_frames": processor.num_frames,
        "sampling_rate": processor.sampling_rate,
        "max_text_tokens": processor.max_text_tokens,
        # `auto_map` appears once a processor has been saved: it says nothing about the features
        "image_processor": _clean_dict(processor.image_processor.to_dict(), {"processor_class", "auto_map"}),
        "feature_extractor": _clean_dict(processor.feature_extractor.to_dict(), {"processor_class", "auto_map"}),
        "text_tokenizer": _tokenizer_digest(processor.text_tokenizer),
    }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "store_dtype": str(STORE_DTYPE),
        "modalities": list(config.modalities),
        "encoders": encoders,
        "processor": processor_settings,
        "text_feature_mode": config.text_feature_mode,
    }


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def cache_fingerprint(model, processor) -> str:
    """sha256 (hex) of the encoders (configs, dtypes, weights), the processor settings that shape the
    features and `text_feature_mode` (see the module docstring). Same inputs, same fingerprint."""
    return hashlib.sha256(_canonical(fingerprint_description(model, processor)).encode()).hexdigest()


def cache_file_name(utterance_id) -> str:
    return hashlib.sha1(str(utterance_id).encode("utf-8")).hexdigest() + ".safetensors"


def _resolve(path_text, data_root) -> Path:
    path = Path(path_text)
    if not path.is_absolute() and data_root is not None:
        path = Path(data_root) / path
    return path


_CONTENT_HASHES: dict = {}  # (path, size, mtime_ns) -> sha256


def _file_fingerprint(path: Path, mode: str) -> dict:
    try:
        stat = path.stat()
    except OSError as error:
        raise FileNotFoundError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if mode == "stat":
        return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CONTENT_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if len(_CONTENT_HASHES) > 4096:
            _CONTENT_HASHES.clear()
        _CONTENT_HASHES[key] = digest.hexdigest()
    return {"name": path.name, "size": stat.st_size, "sha256": _CONTENT_HASHES[key]}


def _text(value) -> str:
    return "" if value is None else str(value)


def inputs_fingerprint(row: dict, data_root=None, media_fingerprint: str = "stat") -> dict:
    """Per-utterance input fingerprint: segment, transcript sha256, and each used file's name with
    size + mtime_ns ("stat") or content sha256 ("sha256"). Raises FileNotFoundError for a missing file."""
    if media_fingerprint not in MEDIA_FINGERPRINTS:
        raise ValueError(f"media_fingerprint must be one of {MEDIA_FINGERPRINTS}, got {media_fingerprint!r}")
    files = {}
    for column in FILE_COLUMNS:
        if _text(row.get(column)):
            files[column] = _file_fingerprint(_resolve(row[column], data_root), media_fingerprint)
    transcript = _text(row.get("transcript")).strip()
    return {
        "mode": media_fingerprint,
        "start": None if row.get("start") is None else float(row["start"]),
        "end": None if row.get("end") is None else float(row["end"]),
        "transcript_sha256": hashlib.sha256(transcript.encode("utf-8")).hexdigest() if transcript else None,
        "files": files,
    }


# ----------------------------------------------------------------------------- file format
def _checksum(tensors: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _read_header(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError(f"only {len(data)} bytes")
    size = int.from_bytes(data[:8], "little")
    if size <= 1 or 8 + size > len(data):
        raise ValueError(f"header length {size} does not fit a file of {len(data)} bytes")
    return json.loads(data[8 : 8 + size].decode("utf-8"))


def _read_verified(path: Path, utterance_id, fingerprint: str) -> tuple[dict, dict]:
    """(tensors, metadata) of a cache file that is whole, belongs to `utterance_id` and `fingerprint`
    and matches its checksum; CacheError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CacheError(path, f"no cached features for utterance {utterance_id!r} (run build_feature_cache)") from None
    except OSError as error:
        raise CacheError(path, f"cannot read the file ({error.strerror or error})") from None
    try:
        metadata = _read_header(data).get("__metadata__") or {}
        tensors = _st_load(data)
    except Exception as error:  # truncated, garbage, bad JSON, bad offsets
        raise CacheError(path, f"not a valid safetensors file (truncated or corrupt: {type(error).__name__}: {error})") from None
    if metadata.get("format") != FORMAT:
        raise CacheError(path, "not an ECMC feature-cache file (no format tag)")
    if metadata.get("version") != str(FORMAT_VERSION):
        raise CacheError(path, f"cache format version {metadata.get('version')!r}, this code reads {FORMAT_VERSION}")
    if metadata.get("utterance_id") != str(utterance_id):
        raise CacheError(path, f"holds utterance {metadata.get('utterance_id')!r}, expected {str(utterance_id)!r}")
    if metadata.get("fingerprint") != fingerprint:
        raise CacheError(
            path,
            f"built for fingerprint {str(metadata.get('fingerprint'))[:16]}..., expected {fingerprint[:16]}... "
            "(other encoders or processor settings)",
        )
    if metadata.get("checksum") != _checksum(tensors):
        raise CacheError(path, "checksum mismatch: the file is corrupt")
    mask = tensors.get("modality_mask")
    if mask is None or mask.dtype != torch.bool or tuple(mask.shape) != (len(MODALITIES),):
        raise CacheError(path, "no valid modality_mask tensor")
    for k, m in enumerate(MODALITIES):
        feats = tensors.get(f"{m}_features")
        if bool(mask[k]) != (feats is not None) or (feats is not None and feats.dim() != 2):
            raise CacheError(path, f"{m} features do not match modality_mask")
        if feats is not None and not torch.isfinite(feats).all():  # the writer never stores these
            raise CacheError(path, f"{m} features contain NaN or Inf")
    return tensors, metadata


def _cache_folder(cache_dir_or_file, fingerprint: str) -> Path:
    folder = Path(cache_dir_or_file)
    return folder if folder.name == fingerprint[:16] else folder / fingerprint[:16]


def load_cached_features(cache_dir_or_file, utterance_id, fingerprint: str) -> dict:
    """{"{m}_features": (T_m, d_m) float16 for each modality the utterance has, "modality_mask": (3,)
    bool} from the cache. `cache_dir_or_file` is the cache root given to `build_feature_cache`, the
    folder it returned, or the file itself. Verifies the file; raises CacheError naming it if it is
    missing, corrupt, or for another utterance or fingerprint."""
    path = Path(cache_dir_or_file)
    if not path.is_file():
        path = _cache_folder(path, fingerprint) / cache_file_name(utterance_id)
    tensors, _ = _read_verified(path, utterance_id, fingerprint)
    return tensors


# ----------------------------------------------------------------------------- building
def _row_get(row, name, default=None):
    value = row.get(name, default) if hasattr(row, "get") else default
    return default if value is None else value


def _load_row(processor, row, data_root, use_video: bool, use_audio: bool, config):
    """(frames or None, waveform or None, transcript or None, {modality: npy features}) of one row."""
    video = _text(row.get("video_path"))
    audio = _text(row.get("audio_path"))
    start, end = row.get("start"), row.get("end")
    start = None if start is None else float(start)
    end = None if end is None else float(end)  # -1: the end of the media
    npy = {}
    for m in ("video", "audio"):
        feature_path = _text(row.get(f"{m}_features_path"))
        if feature_path and m in config.modalities:
            path = _resolve(feature_path, data_root)
            try:
                array = np.load(path, allow_pickle=False)  # never unpickle (SECURITY.md)
            except (OSError, ValueError) as error:
                raise ValueError(f"{path}: pre-extracted {m} features cannot be read as a .npy array without "
                                 f"pickle ({error})") from None
            if array.ndim != 2 or array.shape[1] != config.feature_size(m) or array.shape[0] == 0:
                raise ValueError(
                    f"{path}: pre-extracted {m} features have shape {tuple(array.shape)}, expected "
                    f"(frames > 0, {config.feature_size(m)})"
                )
            if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
                raise ValueError(f"{path}: pre-extracted {m} features are not finite numbers (NaN, Inf or {array.dtype})")
            npy[m] = torch.from_numpy(np.asarray(array, dtype=np.float32))
    want_video = use_video and bool(video) and "video" not in npy
    want_audio = use_audio and bool(audio or video) and "audio" not in npy
    video_path = str(_resolve(video, data_root)) if video else None
    audio_path = str(_resolve(audio, data_root)) if audio else None
    frames = waveform = None
    if want_video and want_audio:  # the processor's own path (a video without audio track: no waveform)
        frames, waveform = processor.load_media(video_path, audio_path, start, end)
    elif want_video:  # the audio is not used or comes from features: do not decode it
        from modeling_ecmc.media_ecmc import load_video_frames

        frames = load_video_frames(video_path, start, end, processor.num_frames)
    elif want_audio:
        waveform = _load_audio_only(processor, audio_path, video_path, start, end)
    transcript = _text(row.get("transcript")).strip() or None
    return frames, waveform, transcript, npy


def _load_audio_only(processor, audio_path, video_path, start, end):
    """The waveform of a separate audio file, else of a video's audio track (None if it has none)."""
    from modeling_ecmc.media_ecmc import NoAudioTrackError

    if audio_path:
        return processor.load_media(None, audio_path, start, end)[1]
    try:
        return processor.load_media(None, video_path, start, end)[1]
    except NoAudioTrackError:
        return None


def _audio_batches_safe(encoder) -> bool:
    """Whether padding leaves an audio encoder's valid frames unchanged (the log-mel front end;
    wav2vec2-family with layer-norm feature extractor); otherwise it is run on equal-length groups."""
    return getattr(encoder, "padding_invariant", False) or getattr(encoder.config, "feat_extract_norm", None) == "layer"


def _encode_batch(owner, inputs) -> dict:
    """{modality: [features (T, d) or None per row]} from the processor's batch, running each encoder
    only on the rows that have its modality and trimming every row to its valid frames."""
    present = inputs["modality_mask"].bool()
    batch = present.shape[0]
    result = {}
    for m in owner.config.modalities:
        k = MODALITIES.index(m)
        rows = present[:, k].nonzero().flatten().tolist()
        per_row = [None] * batch
        result[m] = per_row
        if not rows:
            continue
        encoder = owner.encoders[m]
        # a parameter-free front end (frontends_ecmc.py) runs where the rest of the model is
        parameter = next(encoder.parameters(), None)
        if parameter is None:
            parameter = next(owner.parameters())
        device, dtype = parameter.device, parameter.dtype
        if m == "video":
            pixels = inputs["pixel_values_videos"][rows].to(device=device, dtype=dtype)
            states, _ = owner.encode_modalities(pixel_values_videos=pixels)["video"]
            for j, i in enumerate(rows):
                per_row[i] = states[j]
        elif m == "text":
            mask = inputs["text_attention_mask"][rows]
            keep = mask.bool().any(dim=0)
            ids, mask = inputs["text_input_ids"][rows][:, keep], mask[:, keep]
            states, out_mask = owner.encode_modalities(text_input_ids=ids.to(device), text_attention_mask=mask.to(device))["text"]
            for j, i in enumerate(rows):
                per_row[i] = states[j][out_mask[j].bool()]
        else:
            mask = inputs["audio_attention_mask"]
            lengths = mask.sum(dim=1)
            if _audio_batches_safe(encoder):
                groups = [rows]
            else:
                by_length = {}
                for i in rows:
                    by_length.setdefault(int(lengths[i]), []).append(i)
                groups = list(by_length.values())
            for group in groups:
                width = int(lengths[group].max())
                values = inputs["input_values"][group, :width].to(device=device, dtype=dtype)
                group_mask = mask[group, :width].to(device)
                states, out_mask = owner.encode_modalities(input_values=values, audio_attention_mask=group_mask)["audio"]
                for j, i in enumerate(group):
                    per_row[i] = states[j] if out_mask is None else states[j][out_mask[j].bool()]
    return result


def _to_store(features: torch.Tensor, utterance_id, modality: str) -> torch.Tensor:
    stored = features.detach().to(device="cpu", dtype=STORE_DTYPE).contiguous()
    if not torch.isfinite(stored).all():
        raise ValueError(
            f"utterance {utterance_id!r}: {modality} features are not finite in {STORE_DTYPE} "
            f"(NaN, or |x| > 65504 overflowed); the cache cannot store them"
        )
    return stored


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
            _, metadata = _read_verified(path, utterance_id, self.fingerprint)
        except CacheError as error:
            logger.warning("feature cache: %s; rebuilding it", error)
            return "corrupt"
        if metadata.get("inputs") != _canonical(inputs):
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
            encoded = _encode_batch(self.owner, inputs)
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
                    tensors[f"{m}_features"] = _to_store(features, utterance_id, m)
            if not any(flags):
                raise ValueError(f"utterance {utterance_id!r} has no modality the model uses (no media, no transcript)")
            tensors["modality_mask"] = torch.tensor(flags, dtype=torch.bool)
            metadata = {
                "format": FORMAT,
                "version": str(FORMAT_VERSION),
                "utterance_id": str(utterance_id),
                "fingerprint": self.fingerprint,
                "inputs": _canonical(inputs_fp),
                "checksum": _checksum(tensors),
            }
            _write_atomic(path, _st_save(tensors, metadata=metadata))
            self.done(utterance_id, "computed" if status == "missing" else "rebuilt")


def _write_info(folder: Path, fingerprint: str, description: dict) -> None:
    info = {"fingerprint": fingerprint, **description}
    path = folder / INFO_FILE
    text = json.dumps(info, indent=2, sort_keys=True, default=str) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    _write_atomic(path, text.encode("utf-8"))


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
    if media_fingerprint not in MEDIA_FINGERPRINTS:
        raise ValueError(f"media_fingerprint must be one of {MEDIA_FINGERPRINTS}, got {media_fingerprint!r}")
    from tqdm.auto import tqdm

    owner = _encoder_owner(model)
    description = fingerprint_description(model, processor)
    fingerprint = hashlib.sha256(_canonical(description).encode()).hexdigest()
    folder = Path(cache_dir) / fingerprint[:16]
    folder.mkdir(parents=True, exist_ok=True)
    _write_info(folder, fingerprint, description)
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
                utterance_id = _row_get(row, "utterance_id")
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


# ----------------------------------------------------------------------------- reading
def collate_cached(items: list, dtype=torch.float32) -> dict:
    """Batch cached items for `ECMCModel.forward` / `ECMCForConditionalGeneration.forward`:
    ``{m}_features`` (B, T_max, d_m) in `dtype`, zero-padded, ``{m}_feature_mask`` (B, T_max) long
    and ``modality_mask`` (B, 3) bool. A modality no item has is left out; a sample without it gets a
    zero row, a zero mask and a False flag. Items from `CachedFeatureDataset` also give
    ``emotion_labels`` (B,), ``cognition_labels`` (B, 4) and ``index`` (B,) (pop ``index``, and the
    labels for the stage-2 model, before calling forward)."""
    if not items:
        raise ValueError("collate_cached needs at least one item")
    batch = len(items)
    modality_mask = torch.stack([torch.as_tensor(item["modality_mask"]).bool() for item in items])
    if modality_mask.shape != (batch, len(MODALITIES)):
        raise ValueError(f"modality_mask must be ({len(MODALITIES)},) per item, got {tuple(modality_mask.shape[1:])}")
    out = {}
    for k, m in enumerate(MODALITIES):
        features = [item.get(f"{m}_features") if modality_mask[i, k] else None for i, item in enumerate(items)]
        given = [f for f in features if f is not None]
        modality_mask[:, k] = torch.tensor([f is not None for f in features])
        if not given:
            continue
        widths = {f.shape[-1] for f in given}
        if len(widths) > 1 or any(f.dim() != 2 for f in given):
            raise ValueError(f"{m} features must all be (frames, d) with one d; got shapes {[tuple(f.shape) for f in given]}")
        length = max(f.shape[0] for f in given)
        values = torch.zeros(batch, length, widths.pop(), dtype=dtype)
        mask = torch.zeros(batch, length, dtype=torch.long)
        for i, f in enumerate(features):
            if f is not None:
                values[i, : f.shape[0]] = f.to(dtype)
                mask[i, : f.shape[0]] = 1
        out[f"{m}_features"] = values
        out[f"{m}_feature_mask"] = mask
    out["modality_mask"] = modality_mask
    for key, name in (("emotion_label", "emotion_labels"), ("cognition_labels", "cognition_labels"), ("index", "index")):
        if all(key in item for item in items):
            out[name] = torch.stack([torch.as_tensor(item[key]).long() for item in items])
    return out


def _column(rows, name: str):
    try:
        names = rows.column_names  # datasets.Dataset: read a column without decoding rows
    except AttributeError:
        return [_row_get(row, name) for row in rows]
    return list(rows[name]) if name in names else [None] * len(rows)


def cached_dataset(model, processor, rows, cache_dir, batch_size: int = 8, **build_kwargs) -> "CachedFeatureDataset":
    """Build (or reuse, resumably) the cache for `rows`, then read them from it: what training and
    evaluation both need."""
    build_feature_cache(model, processor, rows, cache_dir, batch_size=batch_size, **build_kwargs)
    return CachedFeatureDataset(rows, cache_dir, cache_fingerprint(model, processor),
                                data_root=build_kwargs.get("data_root"))


class CachedFeatureDataset(torch.utils.data.Dataset):
    """Items of `rows` read from the feature cache built for `fingerprint`: the cached features,
    ``modality_mask``, ``emotion_label`` (long scalar) and ``cognition_labels`` (4,) long when the
    rows have them, and ``index`` (the row index). Use with ``collate_fn=collate_cached``.

    Every utterance must be cached (CacheError naming the first missing file otherwise). With
    `check_inputs` (default) each item's media / segment / transcript are compared with those the
    cache was built from, so a stale entry raises CacheError instead of being used."""

    def __init__(self, rows, cache_dir, fingerprint: str, *, data_root=None, check_inputs: bool = True):
        self.rows = rows
        self.fingerprint = fingerprint
        self.folder = _cache_folder(cache_dir, fingerprint)
        self.data_root = data_root
        self.check_inputs = check_inputs
        self.utterance_ids = [str(u) for u in _column(rows, "utterance_id")]
        self.emotion_labels = _column(rows, "emotion_label")
        self.cognition_labels = _column(rows, "cognition_labels")
        missing = [u for u in self.utterance_ids if not (self.folder / cache_file_name(u)).is_file()]
        if missing:
            raise CacheError(
                self.folder / cache_file_name(missing[0]),
                f"{len(missing)} of {len(self.utterance_ids)} utterances are not cached (first: {missing[0]!r}); "
                "run build_feature_cache with the same model and processor",
            )

    def __len__(self) -> int:
        return len(self.utterance_ids)

    def __getitem__(self, index: int) -> dict:
        utterance_id = self.utterance_ids[index]
        path = self.folder / cache_file_name(utterance_id)
        tensors, metadata = _read_verified(path, utterance_id, self.fingerprint)
        if self.check_inputs:
            row = self.rows[index]
            try:
                mode = json.loads(metadata.get("inputs", "{}")).get("mode", "stat")
                current = inputs_fingerprint(row, self.data_root, mode)
            except (FileNotFoundError, ValueError) as error:
                raise CacheError(path, f"cannot check the inputs of utterance {utterance_id!r}: {error}") from None
            if metadata.get("inputs") != _canonical(current):
                raise CacheError(path, f"stale: the media, segment or transcript of utterance {utterance_id!r} changed "
                                       "since the cache was built; rerun build_feature_cache")
        item = dict(tensors)
        if self.emotion_labels[index] is not None:
            item["emotion_label"] = torch.tensor(int(self.emotion_labels[index]), dtype=torch.long)
        if self.cognition_labels[index] is not None:
            item["cognition_labels"] = torch.tensor([int(c) for c in self.cognition_labels[index]], dtype=torch.long)
        item["index"] = torch.tensor(index, dtype=torch.long)
        return item


__all__ = [
    "cached_dataset",
    "CacheError",
    "CachedFeatureDataset",
    "build_feature_cache",
    "cache_file_name",
    "cache_fingerprint",
    "collate_cached",
    "fingerprint_description",
    "inputs_fingerprint",
    "load_cached_features",
]
