"""The parameter-free front ends of the offline default (modeling_ecmc/frontends_ecmc.py)."""

import math

import pytest
import torch
import torchaudio
from transformers import AutoConfig, AutoModel

from modeling_ecmc import ECMCModel
from modeling_ecmc.configuration_ecmc import ECMCLogMelConfig, ECMCPixelConfig
from modeling_ecmc.frontends_ecmc import ECMCLogMelFrontEnd, ECMCPixelFrontEnd, mel_filterbank
from modeling_ecmc.presets import tiny_config

SR = 16000


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return amplitude * torch.sin(2 * math.pi * hz * t)


def test_mel_filterbank_matches_torchaudio():
    ours = mel_filterbank(201, 40, SR, 0.0, 8000.0)
    reference = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 40, SR)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_log_mel_padding_and_empty_samples():
    front_end = ECMCLogMelFrontEnd(ECMCLogMelConfig())
    waves = torch.randn(3, 32000)
    mask = torch.ones(3, 32000, dtype=torch.long)
    mask[1, 20000:] = 0  # padded
    mask[2] = 0  # no audio at all
    batched = front_end(waves, attention_mask=mask)
    alone = front_end(waves[1:2, :20000])
    # (20000 - 400) // 160 + 1 = 123 spectrogram frames -> ceil(123 / 8) = 16 tokens
    assert batched.attention_mask.sum(dim=1).tolist() == [25, 16, 0]
    assert alone.last_hidden_state.shape == (1, 16, 80)
    assert torch.equal(batched.last_hidden_state[1, :16], alone.last_hidden_state[0])
    assert batched.last_hidden_state[1, 16:].abs().sum() == 0 and batched.last_hidden_state[2].abs().sum() == 0
    short = front_end(torch.randn(1, 100))  # shorter than one window: one zero-padded frame
    assert short.attention_mask.tolist() == [[1]]


def test_log_mel_sees_pitch_and_not_loudness():
    front_end = ECMCLogMelFrontEnd(ECMCLogMelConfig())
    low, high = tone(200, 1.0), tone(800, 1.0)
    band = {}
    for name, wave in (("low", low), ("high", high)):
        means = front_end(wave[None]).last_hidden_state[0, :, :40].mean(dim=0)
        band[name] = int(means.argmax())
    assert band["low"] < band["high"]
    quiet = front_end((0.01 * low)[None]).last_hidden_state
    assert torch.allclose(quiet, front_end(low[None]).last_hidden_state, atol=1e-4)  # levels are relative


def test_pixel_front_end_crop_and_standardisation():
    config = ECMCPixelConfig(image_size=64, num_frames=4, crop=[0.125, 0.875, 0.25, 0.75], pool=2)
    assert config.crop_box() == (8, 56, 16, 48) and config.hidden_size == 24 * 16
    front_end = ECMCPixelFrontEnd(config)
    frames = torch.randn(2, 4, 3, 64, 64)
    states = front_end(pixel_values=frames).last_hidden_state
    assert states.shape == (2, 4, 384)
    assert torch.allclose(states.mean(dim=-1), torch.zeros(2, 4), atol=1e-5)
    # brighter or higher-contrast lighting gives the same tokens; pixels outside the crop are ignored
    assert torch.allclose(front_end(pixel_values=2 * frames + 1).last_hidden_state, states, atol=1e-4)
    outside = frames.clone()
    outside[..., :8, :] = 5.0
    assert torch.equal(front_end(pixel_values=outside).last_hidden_state, states)
    with pytest.raises(ValueError, match="64x64"):
        front_end(pixel_values=torch.randn(1, 4, 3, 32, 32))


@pytest.mark.parametrize("bad", [dict(crop=[0.5, 0.4, 0, 1]), dict(crop=[0, 1]), dict(pool=0)])
def test_pixel_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError, match="pixel front end"):
        ECMCPixelConfig(**bad)


def test_front_ends_in_ecmc_save_and_reload(tmp_path):
    config = tiny_config(video_config=ECMCPixelConfig(image_size=32, num_frames=4, pool=4),
                         audio_config=ECMCLogMelConfig(n_mels=16))
    model = ECMCModel(config).eval()
    assert not [*model.encoders["video"].parameters(), *model.encoders["audio"].parameters()]  # no weights
    model.save_pretrained(tmp_path)
    assert (tmp_path / "frontends_ecmc.py").exists()  # travels with the checkpoint
    reloaded = ECMCModel.from_pretrained(tmp_path).eval()
    # by name: a checkpoint loaded with trust_remote_code earlier in the session registers its own copy
    assert type(AutoModel.from_config(AutoConfig.for_model("ecmc_logmel"))).__name__ == "ECMCLogMelFrontEnd"
    wave = torch.randn(2, 8000)
    mask = torch.ones(2, 8000, dtype=torch.long)
    mask[1, 5000:] = 0
    inputs = dict(pixel_values_videos=torch.randn(2, 4, 3, 32, 32), input_values=wave, audio_attention_mask=mask,
                  text_input_ids=torch.randint(3, 100, (2, 5)), text_attention_mask=torch.ones(2, 5, dtype=torch.long))
    with torch.no_grad():
        audio, audio_mask = model.encode_modalities(**inputs)["audio"]
        assert audio_mask.sum(dim=1).tolist() == [6, 4]  # 48 and 29 spectrogram frames
        assert torch.allclose(model(**inputs).h_e, reloaded(**inputs).h_e)
