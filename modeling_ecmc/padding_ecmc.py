"""Padding a list of variable-length tensors into one batch: the one implementation behind the
processor's decoder inputs, the feature-cache collation and the benchmarks.

This file travels inside saved checkpoints (the processor imports it): it imports only torch.
"""

import torch


def pad_stack(tensors: list, value=0, side: str = "right", dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(padded, mask): `tensors` (each (length, ...) with the same trailing shape; None for a row
    with nothing, which stays all padding) stacked along a new batch dimension and padded to the
    longest length with `value`, on the `side` given ("left" for generation prompts, so that every
    row ends at the last position). `mask` (batch, length) long is 1 where a row has data."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    rows = [None if t is None else torch.as_tensor(t) for t in tensors]
    given = [t for t in rows if t is not None]
    if not given:
        raise ValueError("pad_stack needs at least one tensor")
    length = max(t.shape[0] for t in given)
    dtype = dtype or given[0].dtype
    padded = torch.full((len(rows), length, *given[0].shape[1:]), value, dtype=dtype)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, t in enumerate(rows):
        if t is None:
            continue
        span = slice(length - t.shape[0], length) if side == "left" else slice(0, t.shape[0])
        padded[i, span] = t.to(dtype)
        mask[i, span] = 1
    return padded, mask
