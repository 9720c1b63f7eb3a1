"""The feature cache stores and verifies: its file format, writing an entry, reading one back verified.

Layout
------
``cache_dir/<fingerprint[:16]>/<sha1(utterance_id)>.safetensors``, one file per utterance, plus
``cache_info.json`` (what the fingerprint covers, for humans; cache_fingerprint.py). Each file
holds, for every modality the utterance has, ``{m}_features`` (frames, d_m) float16 -- exactly what
``ECMCModel.encode_per_row`` returns for it (its valid frames/tokens) -- and ``modality_mask`` (3,)
bool in the order video, audio, text. A modality the utterance lacks (the processor's
``modality_mask``), or that the model does not use, has no tensor and a False flag: it is never
stored as zeros. The safetensors metadata holds the format version, the utterance id, the cache
fingerprint, the utterance's input fingerprint and a sha256 checksum of the tensors.

Writes and verification
-----------------------
Every file is written to a temporary file in the same folder, flushed, fsync'ed and renamed over
its final name (``atomic_io.write_bytes``), so a killed run leaves whole files or none (and
temporaries of dead processes, removed on the next build). Readers verify the header, format,
utterance id, fingerprint, checksum and that every feature is finite on every load and raise
``CacheError`` naming the file; a bad file is never used.

Privacy: the cache holds features derived from interviews (text features can reveal the
transcript); keep it where the data lives. Nothing here logs transcripts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from modeling_ecmc.atomic_io import write_bytes as _write_atomic
from modeling_ecmc.vocabulary_ecmc import MODALITIES

FORMAT = "ecmc-feature-cache"
FORMAT_VERSION = 1
STORE_DTYPE = torch.float16
INFO_FILE = "cache_info.json"


class CacheError(ValueError):
    """A cache file is missing, unreadable, corrupt or was built for other encoders / inputs.
    ``path`` names the file, ``problem`` says what is wrong."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    """The raw bytes of a tensor (on the CPU), for hashing."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()


def tensors_checksum(tensors: dict) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (sorted by name): the file's checksum."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def cache_file_name(utterance_id) -> str:
    return hashlib.sha1(str(utterance_id).encode("utf-8")).hexdigest() + ".safetensors"


def cache_folder(cache_dir_or_file, fingerprint: str) -> Path:
    """The folder of `fingerprint` under a cache root (or that folder itself, given it)."""
    folder = Path(cache_dir_or_file)
    return folder if folder.name == fingerprint[:16] else folder / fingerprint[:16]


def to_store(features: torch.Tensor, utterance_id, modality: str) -> torch.Tensor:
    """`features` as stored: contiguous CPU float16, refused if that is not finite."""
    stored = features.detach().to(device="cpu", dtype=STORE_DTYPE).contiguous()
    if not torch.isfinite(stored).all():
        raise ValueError(
            f"utterance {utterance_id!r}: {modality} features are not finite in {STORE_DTYPE} "
            f"(NaN, or |x| > 65504 overflowed); the cache cannot store them"
        )
    return stored


def write_entry(path: Path, tensors: dict, utterance_id, fingerprint: str, inputs: str) -> None:
    """Write one utterance's stored tensors (``{m}_features`` and ``modality_mask``) atomically, with
    `inputs` (its canonical input fingerprint) and the checksum in the metadata."""
    metadata = {
        "format": FORMAT,
        "version": str(FORMAT_VERSION),
        "utterance_id": str(utterance_id),
        "fingerprint": fingerprint,
        "inputs": inputs,
        "checksum": tensors_checksum(tensors),
    }
    _write_atomic(path, _st_save(tensors, metadata=metadata))


def write_info(folder: Path, fingerprint: str, description: dict) -> None:
    """``cache_info.json``: the fingerprint and what it covers (rewritten only when it changed)."""
    info = {"fingerprint": fingerprint, **description}
    path = folder / INFO_FILE
    text = json.dumps(info, indent=2, sort_keys=True, default=str) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    _write_atomic(path, text.encode("utf-8"))


def _read_header(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError(f"only {len(data)} bytes")
    size = int.from_bytes(data[:8], "little")
    if size <= 1 or 8 + size > len(data):
        raise ValueError(f"header length {size} does not fit a file of {len(data)} bytes")
    return json.loads(data[8 : 8 + size].decode("utf-8"))


def read_verified(path: Path, utterance_id, fingerprint: str) -> tuple[dict, dict]:
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
    if metadata.get("checksum") != tensors_checksum(tensors):
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


def load_cached_features(cache_dir_or_file, utterance_id, fingerprint: str) -> dict:
    """{"{m}_features": (T_m, d_m) float16 for each modality the utterance has, "modality_mask": (3,)
    bool} from the cache. `cache_dir_or_file` is the cache root given to `build_feature_cache`, the
    folder it returned, or the file itself. Verifies the file; raises CacheError naming it if it is
    missing, corrupt, or for another utterance or fingerprint."""
    path = Path(cache_dir_or_file)
    if not path.is_file():
        path = cache_folder(path, fingerprint) / cache_file_name(utterance_id)
    tensors, _ = read_verified(path, utterance_id, fingerprint)
    return tensors


__all__ = ["CacheError", "cache_file_name", "load_cached_features", "read_verified", "tensors_checksum"]
