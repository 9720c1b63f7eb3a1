"""Parameter-free front ends that stand in for VideoMAE and HuBERT when their weights are absent.

`ECMCLogMelFrontEnd` turns waveforms into pooled log-mel frames; `ECMCPixelFrontEnd` turns video
frames into one grayscale face-crop token each. Neither has weights: the BridgeNet's per-modality
projection W_m (Eq. 7) learns what to read from them. Both take the inputs and return the
`last_hidden_state` of the encoders they replace, so the feature cache and `ECMCModel` treat them
alike. Their configs are in `configuration_ecmc.py`.

This file travels inside saved checkpoints: it imports only torch, transformers and its siblings.
"""

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_ecmc import ECMCLogMelConfig, ECMCPixelConfig


@dataclass
class ECMCFrontEndOutput(ModelOutput):
    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None  # (batch, frames): which output frames hold signal


@functools.lru_cache(maxsize=8)  # the same few settings every call: built once, never modified
def mel_filterbank(n_freqs: int, n_mels: int, sampling_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """(n_freqs, n_mels) triangular filters on the HTK mel scale, as `torchaudio.functional.melscale_fbanks`."""
    def hz_to_mel(hz):
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    freqs = torch.linspace(0, sampling_rate // 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    widths = edges[1:] - edges[:-1]
    slopes = edges[None, :] - freqs[:, None]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0).float()


class ECMCFrontEndPreTrainedModel(PreTrainedModel):
    """Shared plumbing: nothing to initialise, nothing to train."""

    base_model_prefix = "front_end"

    def _init_weights(self, module):
        pass


class ECMCLogMelFrontEnd(ECMCFrontEndPreTrainedModel):
    """Waveforms (batch, samples) -> (batch, tokens, 2 x n_mels): the mean and standard deviation of
    each mel band's log level over `frames_per_token` frames (80 ms by default), so that the
    Q-Former, which averages what it attends to, still sees how much each band moves (pitch
    contours, pauses, speaking rate). Levels are relative to the utterance's loudest band-frame and
    scaled to [-1, 1]. A padded sample gives exactly the frames it gives alone."""

    config: ECMCLogMelConfig
    config_class = ECMCLogMelConfig
    main_input_name = "input_values"
    padding_invariant = True  # the feature cache may batch clips of different lengths

    def __init__(self, config: ECMCLogMelConfig):
        super().__init__(config)
        self.post_init()

    def _frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """Spectrogram frames per sample: every whole window, and one zero-padded frame for a clip
        shorter than a window; none for an empty sample."""
        c = self.config
        whole = torch.div(lengths - c.n_fft, c.hop_length, rounding_mode="floor") + 1
        return torch.where(lengths > 0, whole.clamp(min=1), torch.zeros_like(lengths))

    def forward(self, input_values, attention_mask=None, **kwargs) -> ECMCFrontEndOutput:
        c = self.config
        waveform = input_values.float()
        batch, samples = waveform.shape
        lengths = attention_mask.sum(dim=1) if attention_mask is not None else waveform.new_full((batch,), samples).long()
        waveform = waveform * (torch.arange(samples, device=waveform.device) < lengths[:, None])  # padding is silence
        if samples < c.n_fft:
            waveform = F.pad(waveform, (0, c.n_fft - samples))
        frames = waveform.unfold(1, c.n_fft, c.hop_length)  # (batch, frames, n_fft)
        window = torch.hann_window(c.n_fft, periodic=True, device=waveform.device)
        power = torch.fft.rfft(frames * window, dim=-1).abs().pow(2)
        fbank = mel_filterbank(power.shape[-1], c.n_mels, c.sampling_rate, c.f_min, c.f_max).to(power.device)
        log_mel = torch.log10((power @ fbank).clamp(min=1e-10))  # (batch, frames, n_mels)

        valid = torch.arange(log_mel.shape[1], device=log_mel.device)[None, :] < self._frame_counts(lengths)[:, None]
        peak = log_mel.masked_fill(~valid[..., None], -torch.inf).amax(dim=(1, 2), keepdim=True).clamp(min=-10)
        floor = c.dynamic_range_db / 10.0  # in log10 units
        log_mel = (torch.maximum(log_mel, peak - floor) - peak) / (floor / 2) + 1.0

        # pool `frames_per_token` frames: per-band mean and standard deviation over the valid ones
        tokens = math.ceil(log_mel.shape[1] / c.frames_per_token)
        pad = tokens * c.frames_per_token - log_mel.shape[1]
        log_mel = F.pad(log_mel, (0, 0, 0, pad)).view(batch, tokens, c.frames_per_token, c.n_mels)
        weights = F.pad(valid, (0, pad)).view(batch, tokens, c.frames_per_token, 1).float()
        count = weights.sum(dim=2)
        mean = (log_mel * weights).sum(dim=2) / count.clamp(min=1)
        var = ((log_mel - mean[:, :, None]).pow(2) * weights).sum(dim=2) / count.clamp(min=1)
        mask = (count[..., 0] > 0).long()
        states = torch.cat([mean, var.sqrt()], dim=-1) * mask[..., None]
        return ECMCFrontEndOutput(last_hidden_state=states.to(input_values.dtype), attention_mask=mask)


class ECMCPixelFrontEnd(ECMCFrontEndPreTrainedModel):
    """Video frames (batch, frames, channels, height, width) -> (batch, frames, crop pixels): the
    grayscale crop of each frame, average-pooled and standardised (zero mean, unit variance per
    frame, so lighting and skin tone matter less than the face's shape)."""

    config: ECMCPixelConfig
    config_class = ECMCPixelConfig
    main_input_name = "pixel_values"

    def __init__(self, config: ECMCPixelConfig):
        super().__init__(config)
        self.post_init()

    def forward(self, pixel_values, **kwargs) -> ECMCFrontEndOutput:
        c = self.config
        batch, frames, _, height, width = pixel_values.shape
        if (height, width) != (c.image_size, c.image_size):
            raise ValueError(f"expected {c.image_size}x{c.image_size} frames, got {height}x{width}")
        top, bottom, left, right = c.crop_box()
        gray = pixel_values.float().mean(dim=2)[:, :, top:bottom, left:right]
        pooled = F.avg_pool2d(gray.reshape(batch * frames, 1, *gray.shape[-2:]), c.pool).reshape(batch, frames, -1)
        pooled = pooled - pooled.mean(dim=-1, keepdim=True)
        states = pooled / pooled.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp(min=1e-5)
        return ECMCFrontEndOutput(last_hidden_state=states.to(pixel_values.dtype))


FRONT_ENDS = {front_end.config_class.model_type: front_end for front_end in (ECMCLogMelFrontEnd, ECMCPixelFrontEnd)}


def build_encoder(config):
    """The frozen encoder a sub-config describes: one of our front ends, or any `AutoModel`.

    Chosen by `model_type`, not through the AutoModel registry: with trust_remote_code the config
    classes and this module come from separately loaded copies of the code, whose classes differ."""
    front_end = FRONT_ENDS.get(config.model_type)
    return front_end(config) if front_end is not None else AutoModel.from_config(config)


# For users' `AutoModel.from_config(ECMCLogMelConfig())`; `exist_ok`: a checkpoint's own copy of
# this file (trust_remote_code) registers them again.
for _front_end in FRONT_ENDS.values():
    AutoModel.register(_front_end.config_class, _front_end, exist_ok=True)

__all__ = ["ECMCFrontEndOutput", "ECMCLogMelFrontEnd", "ECMCPixelFrontEnd", "FRONT_ENDS", "build_encoder", "mel_filterbank"]
