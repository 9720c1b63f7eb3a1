"""Running the frozen encoders (modeling_ecmc/encoding_ecmc.py): `ECMCModel.encode_per_row` gives
each row exactly (bit for bit) what its encoder gives it alone or in its equal-length group, and
padded batches keep padding away from group-norm audio encoders."""

import torch

from cache_fixtures import make_model_and_processor

from modeling_ecmc import ECMCModel
from modeling_ecmc.configuration_ecmc import ECMCLogMelConfig, ECMCPixelConfig
from modeling_ecmc.encoding_ecmc import audio_padding_invariant
from modeling_ecmc.presets import tiny_config


def batch_inputs(lengths, modality_mask, frames=(4, 3, 32, 32), text_lengths=(5, 3, 1, 4)):
    g = torch.Generator().manual_seed(0)
    n = len(lengths)
    mask = torch.zeros(n, max(lengths), dtype=torch.long)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    text_mask = torch.zeros(n, 7, dtype=torch.long)
    for i, length in enumerate(text_lengths[:n]):
        text_mask[i, :length] = 1
    return dict(pixel_values_videos=torch.randn(n, *frames, generator=g),
                input_values=torch.randn(n, max(lengths), generator=g) * mask, audio_attention_mask=mask,
                text_input_ids=torch.randint(3, 100, (n, 7), generator=g) * text_mask, text_attention_mask=text_mask,
                modality_mask=torch.tensor(modality_mask))


def test_group_norm_audio_runs_on_equal_length_groups():
    model = make_model_and_processor()[0].model
    encoder = model.encoders["audio"]
    assert not audio_padding_invariant(encoder)  # the tiny HuBERT: feat_extract_norm="group"
    lengths = [8000, 5000, 5000, 3000]
    inputs = batch_inputs(lengths, [[True, True, True], [True, True, True], [False, True, False], [True, False, True]])
    values, mask = inputs["input_values"], inputs["audio_attention_mask"]
    with torch.no_grad():
        rows = model.encode_per_row(**inputs)
        alone = encoder(values[:1, :8000], attention_mask=mask[:1, :8000]).last_hidden_state[0]
        pair = encoder(values[1:3, :5000], attention_mask=mask[1:3, :5000]).last_hidden_state
        video = model.encoders["video"](pixel_values=inputs["pixel_values_videos"][[0, 1, 3]]).last_hidden_state
        ids, text_mask = inputs["text_input_ids"][[0, 1, 3], :5], inputs["text_attention_mask"][[0, 1, 3], :5]
        text = model.encoders["text"](input_ids=ids, attention_mask=text_mask).last_hidden_state
        # the same rows in other batches give the same bits
        single = model.encode_per_row(**{k: v[:1] for k, v in inputs.items()})
    assert torch.equal(rows["audio"][0], alone) and torch.equal(single["audio"][0], alone)
    assert torch.equal(rows["audio"][1], pair[0]) and torch.equal(rows["audio"][2], pair[1])
    assert rows["audio"][3] is None and rows["video"][2] is None and rows["text"][2] is None
    assert [torch.equal(rows["video"][i], video[j]) for j, i in enumerate([0, 1, 3])] == [True] * 3
    for j, (i, n) in enumerate(zip([0, 1, 3], [5, 3, 4])):
        assert torch.equal(rows["text"][i], text[j, :n])
    # a batch of one vs a batch of four: equal up to the matmul blocking of the thread count
    assert torch.allclose(single["video"][0], video[0], atol=1e-6) and torch.allclose(single["text"][0], text[0, :5], atol=1e-6)


def test_padded_batch_encodes_group_norm_audio_sample_by_sample():
    model = make_model_and_processor()[0].model
    encoder = model.encoders["audio"]
    inputs = batch_inputs([8000, 5000, 0], [[True] * 3] * 3)
    values, mask = inputs["input_values"], inputs["audio_attention_mask"]
    with torch.no_grad():
        states, frame_mask = model.encode_modalities(input_values=values, audio_attention_mask=mask)["audio"]
        alone = [encoder(values[i : i + 1, :n]).last_hidden_state[0] for i, n in ((0, 8000), (1, 5000))]
    frames = [a.shape[0] for a in alone]
    assert frame_mask.tolist() == [[1] * frames[0], [1] * frames[1] + [0] * (frames[0] - frames[1]), [0] * frames[0]]
    assert torch.equal(states[0], alone[0]) and torch.equal(states[1, : frames[1]], alone[1])
    assert not states[1, frames[1] :].any() and not states[2].any()
    with torch.no_grad():  # no audio at all: one masked zero frame per sample
        states, frame_mask = model.encode_modalities(input_values=values, audio_attention_mask=mask * 0)["audio"]
    assert states.shape == (3, 1, encoder.config.hidden_size) and not states.any() and not frame_mask.any()


def test_padding_invariant_audio_is_batched():
    config = tiny_config(video_config=ECMCPixelConfig(image_size=32, num_frames=4, pool=4),
                         audio_config=ECMCLogMelConfig(n_mels=16))
    model = ECMCModel(config).eval()
    encoder = model.encoders["audio"]
    assert audio_padding_invariant(encoder)
    inputs = batch_inputs([8000, 5000, 5000], [[True] * 3] * 3)
    calls = []
    handle = encoder.register_forward_hook(lambda module, args, output: calls.append(args[0].shape))
    try:
        with torch.no_grad():
            rows = model.encode_per_row(**inputs)
            out = encoder(inputs["input_values"], attention_mask=inputs["audio_attention_mask"])
    finally:
        handle.remove()
    assert calls[0] == (3, 8000)  # one call for the whole batch
    for i in range(3):
        assert torch.equal(rows["audio"][i], out.last_hidden_state[i][out.attention_mask[i].bool()])
