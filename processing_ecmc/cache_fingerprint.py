"""What a feature-cache entry was computed from: the cache fingerprint (encoders and processor) and
each utterance's input fingerprint (its media, segment and transcript).

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
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import torch

from modeling_ecmc.vocabulary_ecmc import FEATURE_COLUMNS, MEDIA_COLUMNS
from processing_ecmc.cache_store import FORMAT, FORMAT_VERSION, STORE_DTYPE, tensor_bytes

MEDIA_FINGERPRINTS = ("stat", "sha256")
FILE_COLUMNS = (*MEDIA_COLUMNS.values(), *FEATURE_COLUMNS.values())
# Config keys that describe how a model is run or saved, not what it computes.
_VOLATILE_CONFIG_KEYS = {
    "transformers_version", "architectures", "output_hidden_states", "output_attentions", "return_dict",
    "dtype", "torch_dtype", "id2label", "label2id", "problem_type", "use_cache", "tokenizer_class",
}


def encoder_owner(model):
    """The module that has `encode_per_row` and `encoders` (an ECMCModel), given it or its wrapper."""
    if hasattr(model, "encode_per_row"):
        return model
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "encode_per_row"):
        return inner
    raise TypeError(f"expected an ECMCModel or ECMCForConditionalGeneration, got {type(model).__name__}")


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
        digest.update(tensor_bytes(tensor))
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
    owner = encoder_owner(model)
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
        # only when on, so that caches built before the option existed keep their fingerprint
        **({"face_crop": {"margin": processor.face_margin}} if getattr(processor, "face_crop", False) else {}),
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


def canonical(value) -> str:
    """The canonical JSON text of a fingerprint (what is hashed, and stored in a file's metadata)."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def fingerprint_of(description: dict) -> str:
    return hashlib.sha256(canonical(description).encode()).hexdigest()


def cache_fingerprint(model, processor) -> str:
    """sha256 (hex) of the encoders (configs, dtypes, weights), the processor settings that shape the
    features and `text_feature_mode` (see the module docstring). Same inputs, same fingerprint."""
    return fingerprint_of(fingerprint_description(model, processor))


def resolve_path(path_text, data_root) -> Path:
    """A row's file path, relative ones under `data_root` (when given)."""
    path = Path(path_text)
    if not path.is_absolute() and data_root is not None:
        path = Path(data_root) / path
    return path


def row_text(value) -> str:
    return "" if value is None else str(value)


def row_get(row, name, default=None):
    value = row.get(name, default) if hasattr(row, "get") else default
    return default if value is None else value


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


def check_media_fingerprint(media_fingerprint: str) -> None:
    if media_fingerprint not in MEDIA_FINGERPRINTS:
        raise ValueError(f"media_fingerprint must be one of {MEDIA_FINGERPRINTS}, got {media_fingerprint!r}")


def inputs_fingerprint(row: dict, data_root=None, media_fingerprint: str = "stat") -> dict:
    """Per-utterance input fingerprint: segment, transcript sha256, and each used file's name with
    size + mtime_ns ("stat") or content sha256 ("sha256"). Raises FileNotFoundError for a missing file."""
    check_media_fingerprint(media_fingerprint)
    files = {}
    for column in FILE_COLUMNS:
        if row_text(row.get(column)):
            files[column] = _file_fingerprint(resolve_path(row[column], data_root), media_fingerprint)
    transcript = row_text(row.get("transcript")).strip()
    return {
        "mode": media_fingerprint,
        "start": None if row.get("start") is None else float(row["start"]),
        "end": None if row.get("end") is None else float(row["end"]),
        "transcript_sha256": hashlib.sha256(transcript.encode("utf-8")).hexdigest() if transcript else None,
        "files": files,
    }


__all__ = ["cache_fingerprint", "fingerprint_description", "inputs_fingerprint"]
