"""Stage probes: every stage of a checkpoint is collected once per item (and the hooks removed), a
probe finds the label in the stage that carries it and not in the one that does not, and each stream
is probed for its own labels only."""

import numpy as np
import torch

from evaluation_ecmc.stage_probes import (collect_stages, majority_scores, probe_stages, probe_table_markdown,
                                          probe_targets)
from modeling_ecmc import ECMCForConditionalGeneration


def test_collect_stages_of_a_checkpoint(tiny_checkpoint):
    model = ECMCForConditionalGeneration.from_pretrained(tiny_checkpoint)
    c = model.config
    widths = {"video": c.video_config.hidden_size, "audio": c.audio_config.hidden_size,
              "text": c.text_encoder_config.hidden_size}
    g = torch.Generator().manual_seed(0)
    items = [{**{f"{m}_features": torch.randn(3 + i % 2, d, generator=g) for m, d in widths.items()},
              "modality_mask": torch.ones(3, dtype=torch.bool), "index": torch.tensor(i)} for i in range(5)]
    stages = collect_stages(model, items, batch_size=2)
    assert list(stages)[:4] == ["features: video", "features: audio", "features: text", "features: all"]
    assert list(stages)[-2:] == ["soft tokens: emotion", "soft tokens: cognition"]
    assert {f"Q-Former {s}: {m}" for s in ("emotion", "cognition") for m in widths} < set(stages)
    assert all(len(x) == 5 for x in stages.values())
    assert stages["features: text"].shape[1] == 2 * widths["text"]  # mean and spread over time
    assert stages["soft tokens: emotion"].shape[1] == c.num_query_tokens * c.text_config.hidden_size
    with torch.no_grad():  # the same BridgeNet output as running the model on the first item alone
        first = model.model(**{k: v[None] for k, v in items[0].items() if k != "index"})
    torch.testing.assert_close(torch.from_numpy(stages["h_e"][:1]), first.h_e.float(), rtol=1e-4, atol=1e-5)
    assert all(not head._forward_hooks for stream in model.model.bridge.values() for head in stream.heads.values())


def test_probes_find_the_label_where_it_is():
    rng = np.random.default_rng(0)
    n_train, n = 200, 80
    emotion = rng.integers(-1, 2, n_train + n)
    cognition = (rng.random((n_train + n, 4)) < 0.4).astype(int)
    onehot = np.eye(3)[emotion + 1]
    stages = {"features: all": np.hstack([onehot, cognition]) + 0.2 * rng.normal(size=(n_train + n, 7)),
              "h_e": rng.normal(size=(n_train + n, 7)),  # noise
              "h_c": cognition + 0.2 * rng.normal(size=(n_train + n, 4))}
    rows = {"emotion_label": emotion.tolist(), "cognition_labels": cognition.tolist(),
            "utterance_id": [f"u{i}" for i in range(n_train + n)], "emotion_caption": [""] * (n_train + n)}
    cues = {u: {"face": e, "voice": e, "text": -e} for u, e in zip(rows["utterance_id"], emotion.tolist())}
    targets = probe_targets(rows, cues)
    split = lambda d, sl: {k: v[sl] for k, v in d.items()}  # noqa: E731
    results = probe_stages(split(stages, slice(0, n_train)), split(stages, slice(n_train, None)),
                           split(targets, slice(0, n_train)), split(targets, slice(n_train, None)))
    assert results["features: all"]["emotion"] > 0.9 and results["features: all"]["words"] > 0.9
    assert results["features: all"]["cognition exact"] > 0.8
    assert results["h_e"]["emotion"] < 0.55 and "cognition exact" not in results["h_e"]  # the emotion stream
    assert results["h_c"]["cognition exact"] > 0.8 and "emotion" not in results["h_c"]
    chance = majority_scores(split(targets, slice(0, n_train)), split(targets, slice(n_train, None)))
    assert 0.2 < chance["emotion"] < 0.5 and chance["F1 orientation"] == 0.0
    table = probe_table_markdown({**results, "majority class of training": chance})
    assert table.splitlines()[0].startswith("| Stage | emotion | face | voice | words | topic | cognition exact | F1 orientation")
    assert "| h_c |  |  |  |  |  |" in table  # no emotion scores for the cognition stream
