"""Running ECMC's frozen modality encoders (Eq. 1): the batching behind `ECMCModel.encode_modalities`
(padded batches, for the forward pass) and `ECMCModel.encode_per_row` (one row at a time, trimmed
to its valid frames: what the feature cache stores).

Audio: wav2vec2/HuBERT encoders with ``feat_extract_norm="group"`` (HuBERT-base) normalise over the
whole padded waveform, so padding would change every frame of a padded sample. They never see
padding: `encode_audio_rows` (the one place that handles them) runs them on each waveform alone
(padded batches) or on groups of equal-length waveforms (`encode_per_row`, so that a row's features
do not depend on its batch size or order), each cut to its length. Padding-invariant encoders (the
log-mel front end, ``feat_extract_norm="layer"``) get the whole batch with an attention mask.

This file travels inside saved checkpoints: it imports only torch and its siblings.
"""

import torch

from .padding_ecmc import pad_stack
from .vocabulary_ecmc import MODALITIES


def audio_padding_invariant(encoder) -> bool:
    """Whether padding leaves an audio encoder's valid frames unchanged."""
    return getattr(encoder, "padding_invariant", False) or getattr(encoder.config, "feat_extract_norm", None) == "layer"


def run_encoder(encoder, modality: str, values, mask):
    """(states, mask) of one encoder on a padded batch; mask None for video (every frame is valid)."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and any(p.requires_grad for p in encoder.parameters())):
        if modality == "video":
            return encoder(pixel_values=values).last_hidden_state, None
        if modality == "audio":
            if mask is not None and not mask.all() and not audio_padding_invariant(encoder):
                rows = mask.sum(dim=1).nonzero().flatten().tolist()  # each sample alone, at its true length
                encoded = dict(zip(rows, encode_audio_rows(encoder, values, mask, rows, group_equal_lengths=False)))
                # a sample without audio (length 0) is not encoded: its row stays masked zeros (>= 1 frame)
                blank = values.new_zeros(1, encoder.config.hidden_size)
                states, mask = pad_stack([encoded.get(i) for i in range(len(mask))] + [blank], dtype=values.dtype)
                return states[:-1].to(values.device), mask[:-1].to(values.device)
            output = encoder(values, attention_mask=mask)
            states = output.last_hidden_state
            if output.get("attention_mask") is not None:  # a front end that says which frames are valid
                mask = output.attention_mask
            elif mask is not None:  # waveform samples -> encoder frames
                mask = encoder._get_feature_vector_attention_mask(states.shape[1], mask)
            return states, mask
        return encoder(input_ids=values, attention_mask=mask).last_hidden_state, mask


def encode_audio_rows(encoder, values, mask, rows: list, group_equal_lengths: bool = True) -> list:
    """Audio features (frames, d) of each of `rows` of a padded batch, trimmed to its valid frames. An
    encoder that is not padding-invariant runs on groups of equal-length waveforms
    (`group_equal_lengths`) or on each waveform alone, each cut to its length; any other runs on all
    `rows` at once."""
    lengths = mask.sum(dim=1)
    if audio_padding_invariant(encoder):
        groups = [rows]
    elif group_equal_lengths:
        by_length = {}
        for i in rows:
            by_length.setdefault(int(lengths[i]), []).append(i)
        groups = list(by_length.values())
    else:
        groups = [[i] for i in rows]
    features = {}
    for group in groups:
        width = int(lengths[group].max())
        states, out_mask = run_encoder(encoder, "audio", values[group, :width], mask[group, :width])
        for j, i in enumerate(group):
            features[i] = states[j] if out_mask is None else states[j][out_mask[j].bool()]
    return [features[i] for i in rows]


def encode_per_row(model, inputs: dict) -> dict:
    """{modality: [features (frames, d) or None per row]} of `model` (an ECMCModel) on a processor
    batch: each configured encoder runs only on the rows `modality_mask` gives its modality, on the
    device and in the dtype of its weights (a weightless front end: the model's), and every row is
    trimmed to its valid frames / tokens."""
    present = inputs["modality_mask"].bool()
    result = {}
    for m in model.config.modalities:
        rows = present[:, MODALITIES.index(m)].nonzero().flatten().tolist()
        per_row = result[m] = [None] * present.shape[0]
        if not rows:
            continue
        encoder = model.encoders[m]
        parameter = next(encoder.parameters(), None)
        if parameter is None:
            parameter = next(model.parameters())
        device, dtype = parameter.device, parameter.dtype
        if m == "video":
            states, _ = run_encoder(encoder, m, inputs["pixel_values_videos"][rows].to(device=device, dtype=dtype), None)
            features = [states[j] for j in range(len(rows))]
        elif m == "text":
            mask = inputs["text_attention_mask"][rows]
            keep = mask.bool().any(dim=0)  # drop the columns that are padding in every selected row
            ids, mask = inputs["text_input_ids"][rows][:, keep], mask[:, keep]
            states, out_mask = run_encoder(encoder, m, ids.to(device), mask.to(device))
            features = [states[j][out_mask[j].bool()] for j in range(len(rows))]
        else:
            values = inputs["input_values"].to(device=device, dtype=dtype)
            features = encode_audio_rows(encoder, values, inputs["audio_attention_mask"].to(device), rows)
        for i, row_features in zip(rows, features):
            per_row[i] = row_features
    return result


__all__ = ["audio_padding_invariant", "encode_audio_rows", "encode_per_row", "run_encoder"]
