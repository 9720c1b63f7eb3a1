"""Who speaks when: a pretrained voice embedding per speech region, clustered into the session's speakers.

    encoder = VoiceEncoder()                        # Resemblyzer's GE2E speaker encoder, weights from its wheel
    vectors = [encoder.embed(region_samples) ...]   # one L2-normed 256-d vector per speech region (16 kHz)
    labels, separation = cluster_speakers(np.stack(vectors), num_speakers=2)

The encoder is Resemblyzer's (a 3-layer LSTM over 40 mel bands, trained with the GE2E loss on
LibriSpeech, VoxCeleb 1 and 2): its `pretrained.pt` ships inside the `resemblyzer` wheel, which is
installed with `--no-deps` (its own dependencies, webrtcvad and librosa, are not needed: the mel
front end below is librosa's, rebuilt on torchaudio, and the partial-utterance averaging is
Resemblyzer's `embed_utterance`). Nothing is downloaded.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch

SAMPLE_RATE = 16000
_HOP, _FFT, _MELS, _PARTIAL = 160, 400, 40, 160  # 10 ms hop, 25 ms window, 1.6 s partials (Resemblyzer's hparams)
_PARTIALS_PER_SECOND, _MIN_COVERAGE, _TARGET_DBFS = 1.3, 0.75, -30.0
# cosine of the two closest voice centres above which they are one voice. Measured on ECMC-Synth's 13
# test sessions: two voices 0.60-0.79; one voice alone (a session's patient, or its interviewer, cut
# out) 0.82-0.94, all 26 caught. The margin is small: real voices may need another value.
ONE_VOICE_SIMILARITY = 0.81
MIN_SEED_S, SEED_TRIES = 1.0, 8  # clustering starts: regions this long, this many of the longest


def resemblyzer_weights() -> Path:
    """The pretrained.pt inside the installed resemblyzer wheel (found without importing the package)."""
    spec = importlib.util.find_spec("resemblyzer")
    path = Path(next(iter(spec.submodule_search_locations)), "pretrained.pt") if spec else None
    if path is None or not path.exists():
        raise ImportError("finding speakers automatically needs the speaker-encoder weights of the PyPI package "
                          "'resemblyzer': pip install --no-deps resemblyzer==0.1.4 (or pass a transcript with "
                          "speakers)")
    return path


class VoiceEncoder(torch.nn.Module):
    """Resemblyzer's speaker encoder: mel power spectrogram -> LSTM -> ReLU(linear) -> unit vector."""

    def __init__(self, weights=None):
        super().__init__()
        import torchaudio

        self.lstm = torch.nn.LSTM(_MELS, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        state = torch.load(weights or resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
        self.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
        self.mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=_FFT, hop_length=_HOP, n_mels=_MELS,
                                                        norm="slaney", mel_scale="slaney", pad_mode="constant")
        self.eval()

    @torch.no_grad()
    def embed(self, samples: np.ndarray) -> np.ndarray:
        """One region's voice vector: 1.6 s partials 1.3 per second, averaged (Resemblyzer's embed_utterance)."""
        wav = np.asarray(samples, dtype=np.float32)
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if wav.size else 0.0
        if rms > 0:  # Resemblyzer's volume normalisation: raise quiet speech to -30 dBFS, never lower it
            wav = wav * max(1.0, 10 ** ((_TARGET_DBFS - 20 * math.log10(rms)) / 20))
        n_frames = int(math.ceil((len(wav) + 1) / _HOP))
        step = int(round(SAMPLE_RATE / _PARTIALS_PER_SECOND / _HOP))
        starts = list(range(0, max(1, n_frames - _PARTIAL + step + 1), step))
        coverage = (len(wav) - starts[-1] * _HOP) / (_PARTIAL * _HOP)
        if coverage < _MIN_COVERAGE and len(starts) > 1:
            starts = starts[:-1]
        wav = np.pad(wav, (0, max(0, (starts[-1] + _PARTIAL) * _HOP - len(wav))))
        mel = self.mel(torch.from_numpy(wav)).T  # (frames, 40)
        partials = torch.stack([mel[s:s + _PARTIAL] for s in starts])
        _, (hidden, _) = self.lstm(partials)
        raw = torch.relu(self.linear(hidden[-1]))
        mean = (raw / raw.norm(dim=1, keepdim=True)).mean(0)
        return (mean / mean.norm()).numpy()


def cluster_speakers(vectors: np.ndarray, num_speakers: int = 2, weights=None) -> tuple[np.ndarray, float]:
    """(a speaker index per region, the highest cosine between two speakers' centres).

    Spherical k-means weighted by `weights` (e.g. the regions' durations, so a cough does not pull a
    centre), started farthest-first from each of the SEED_TRIES longest regions of at least
    MIN_SEED_S (a short region's vector is noisy: seeded from one, a cluster can end up holding it
    alone); the start whose clusters fit best (the largest weighted similarity of each region to its
    centre) wins. Deterministic. Speakers are numbered by their first region. A highest cosine above
    ONE_VOICE_SIMILARITY means the regions are one voice.
    """
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(x) < num_speakers:
        return np.zeros(len(x), dtype=int), 1.0
    long_enough = np.flatnonzero(w >= MIN_SEED_S) if weights is not None else np.arange(len(x))
    pool = long_enough if len(long_enough) >= num_speakers else np.arange(len(x))
    best = None
    for first in pool[np.argsort(-w[pool], kind="stable")][:SEED_TRIES]:
        seeds = [int(first)]
        while len(seeds) < num_speakers:  # farthest-first among the long regions
            seeds.append(int(pool[np.argmin(np.max(x[pool] @ x[seeds].T, axis=1))]))
        labels, centres = _kmeans(x, w, x[seeds])
        fit = float(np.sum(w * np.sum(x * centres[labels], axis=1)))
        if best is None or fit > best[0] + 1e-9:
            best = (fit, labels, centres)
    _, labels, centres = best
    order = {k: i for i, k in enumerate(dict.fromkeys(labels.tolist()))}
    labels = np.array([order[k] for k in labels])
    sims = centres @ centres.T
    separation = float(np.max(sims[~np.eye(num_speakers, dtype=bool)]))
    return labels, separation


def _kmeans(x: np.ndarray, w: np.ndarray, centres: np.ndarray, steps: int = 50):
    for _ in range(steps):
        labels = np.argmax(x @ centres.T, axis=1)
        new = np.stack([(w[labels == k, None] * x[labels == k]).sum(0) if np.any(labels == k) else centres[k]
                        for k in range(len(centres))])
        new /= np.linalg.norm(new, axis=1, keepdims=True)
        if np.allclose(new, centres):
            break
        centres = new
    return np.argmax(x @ centres.T, axis=1), centres
