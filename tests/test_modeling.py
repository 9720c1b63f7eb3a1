"""ECMCModel / ECMCForConditionalGeneration on a tiny random config: shapes, masking, freezing,
save/load, batched generation and clear errors. The real offline weights are in test_checkpoint.py."""

import pytest
import torch
from conftest import TINY, tiny_config, tiny_prompt, tiny_raw_inputs

from modeling_ecmc import ECMCConfig, ECMCForConditionalGeneration, ECMCModel
from training_ecmc.freezing import freeze_for_stage

TINY_AUDIO = TINY["audio_config"]
LABELS = dict(emotion_labels=torch.tensor([1, -1]), cognition_labels=torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0]]))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ECMCForConditionalGeneration(tiny_config()).eval()


def test_stage1_outputs(model):
    out = model.model(**tiny_raw_inputs(), **LABELS)
    assert out.h_e.shape == out.h_c.shape == (2, 30)
    assert torch.allclose(out.h_e.norm(dim=-1), torch.ones(2))  # Eq. 9 L2-normalised
    assert out.emotion_query_output.shape == (2, 4, 30)
    assert out.modality_mask.all()
    assert torch.isfinite(out.loss) and out.loss == out.emotion_loss + out.cognition_loss


def test_precomputed_features_equal_raw_inputs(model):
    raw = tiny_raw_inputs()
    encoded = model.model.encode_modalities(**raw)
    features = {}
    for m, (values, mask) in encoded.items():
        features[f"{m}_features"] = values
        if mask is not None:
            features[f"{m}_feature_mask"] = mask
    a, b = model.model(**raw), model.model(**features)
    assert torch.allclose(a.h_e, b.h_e, atol=1e-6) and torch.allclose(a.h_c, b.h_c, atol=1e-6)


def test_missing_modality_is_masked_not_faked(model):
    raw = tiny_raw_inputs()
    full = model.model(**raw)
    no_video = {k: v for k, v in raw.items() if k != "pixel_values_videos"}
    out = model.model(**no_video)
    assert out.modality_mask[:, 0].tolist() == [False, False] and out.modality_mask[:, 1:].all()
    assert not torch.allclose(out.h_e, full.h_e)
    # A per-sample missing modality (mask row of zeros) equals dropping it for that sample only.
    masked = dict(raw, modality_mask=torch.tensor([[False, True, True], [True, True, True]]))
    out_masked = model.model(**masked)
    assert torch.allclose(out_masked.h_e[0], out.h_e[0], atol=1e-5)
    assert torch.allclose(out_masked.h_e[1], full.h_e[1], atol=1e-5)
    # Padded audio samples do not change the result.
    padded = dict(raw, input_values=torch.cat([raw["input_values"], torch.randn(2, 800)], 1),
                  audio_attention_mask=torch.cat([raw["audio_attention_mask"], torch.zeros(2, 800, dtype=torch.long)], 1))
    text_padded = dict(raw, text_input_ids=torch.cat([raw["text_input_ids"], torch.zeros(2, 3, dtype=torch.long)], 1),
                       text_attention_mask=torch.cat([raw["text_attention_mask"], torch.zeros(2, 3, dtype=torch.long)], 1))
    assert torch.allclose(model.model(**text_padded).h_c, full.h_c, atol=1e-5)
    assert torch.isfinite(model.model(**padded).h_e).all()


def test_modality_subset_config_builds_only_those_qformers():
    model = ECMCModel(tiny_config(modalities=["text", "audio"]))
    assert list(model.encoders) == ["audio", "text"]
    assert list(model.bridge["emotion"].qformers) == ["audio", "text"]
    out = model(**tiny_raw_inputs())  # video inputs are ignored by an audio+text model
    assert out.modality_mask.shape == (2, 2)


@pytest.mark.parametrize("stage", [1, 2])
def test_gradients_reach_exactly_the_trainable_parameters(model, stage):
    freeze_for_stage(model.train(), stage)
    raw = tiny_raw_inputs()
    if stage == 1:
        loss = model.model(**raw, **LABELS).loss
    else:
        ids = tiny_prompt()
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                     labels=ids.masked_fill(ids >= 120, -100), **raw).loss
    loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    expected_prefixes = ("model.bridge.",) + (("language_projections.",) if stage == 2 else ())
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(expected_prefixes)}
    assert with_grad <= trainable
    # Every Q-Former, head and projection of every stream and modality learns.
    assert {".".join(n.split(".")[:5]) for n in with_grad if ".qformers." in n} == {
        f"model.bridge.{s}.qformers.{m}" for s in ("emotion", "cognition") for m in ("video", "audio", "text")
    }
    if stage == 2:
        assert any(n.startswith("language_projections.") for n in with_grad)


def test_caption_loss_only_on_caption_tokens(model):
    raw = tiny_raw_inputs()
    ids = tiny_prompt(extra=(5, 6, 7, 8, 9))
    labels = torch.full_like(ids, -100)
    labels[:, -2:] = ids[:, -2:]
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, **raw)
    logits = out.logits[:, :-1].float()
    manual = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_save_load_round_trip_gives_identical_outputs(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = ECMCForConditionalGeneration.from_pretrained(tmp_path).eval()
    raw, ids = tiny_raw_inputs(), tiny_prompt()
    a = model(input_ids=ids, **raw)
    b = loaded(input_ids=ids, **raw)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.h_e, b.h_e)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "modeling_ecmc.py").is_file()


def test_batched_greedy_generation_equals_one_at_a_time(model):
    raw = tiny_raw_inputs(batch=3, seed=1)
    ids = tiny_prompt(batch=3)
    batched = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, **raw)
    for i in range(3):
        single = {k: v[i : i + 1] for k, v in raw.items()}
        one = model.generate(input_ids=ids[i : i + 1], attention_mask=torch.ones_like(ids[i : i + 1]),
                             max_new_tokens=8, do_sample=False, **single)
        assert torch.equal(one[0], batched[i])


def test_paper_preset_parameter_counts_on_meta_device():
    from modeling_ecmc.presets import paper_config

    with torch.device("meta"):
        model = ECMCForConditionalGeneration(paper_config())
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    freeze_for_stage(model, 1)
    stage1_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    freeze_for_stage(model, 2)
    stage2_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Paper: stage 1 ~598M trainable, stage 2 ~7.6B total with ~605M trainable.
    assert 590e6 < stage1_trainable < 615e6
    assert 7.5e9 < count(model) < 7.7e9
    assert 600e6 < stage2_trainable < 620e6


BAD_INPUTS = {
    "wrong feature dimensions": (dict(text_features=torch.randn(2, 5, 7)), "text features must have shape"),
    "mismatched batch sizes": (dict(text_features=torch.randn(2, 5, 24), audio_features=torch.randn(3, 5, 32)),
                               "different batch sizes"),
    "no modality at all": ({}, "no modality given"),
    "NaN features": (dict(text_features=torch.full((2, 5, 24), float("nan"))), "NaN"),
    "emotion label out of range": (dict(text_features=torch.randn(2, 5, 24), emotion_labels=torch.tensor([2, 0])),
                                   "emotion_labels must be"),
    "cognition labels out of range": (dict(text_features=torch.randn(2, 5, 24), cognition_labels=torch.tensor([[0, 2, 0, 0]] * 2)),
                                      "cognition_labels must be"),
    "cognition labels wrong width": (dict(text_features=torch.randn(2, 5, 24), cognition_labels=torch.zeros(2, 3)),
                                     "cognition_labels must be"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(model, case):
    inputs, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        model.model(**inputs)


def test_wrong_placeholder_count_is_an_error(model):
    ids = torch.tensor([[1, 120, 120, 121, 121, 121, 121, 5]])
    with pytest.raises(ValueError, match="exactly 4 emotion placeholder tokens"):
        model(input_ids=ids, **tiny_raw_inputs(batch=1))


@pytest.mark.parametrize("bad", [dict(modalities=[]), dict(modalities=["smell"]), dict(loss_variant="x"),
                                 dict(contrastive_temperature=0), dict(text_feature_mode="max"),
                                 dict(modality_loss_weight=-1.0), dict(soft_tokens="pooled")])
def test_bad_config_values(bad):
    with pytest.raises(ValueError):
        tiny_config(**bad)


def test_config_round_trip(tmp_path):
    config = tiny_config(modalities=["audio", "text"], loss_variant="reference")
    config.save_pretrained(tmp_path)
    loaded = ECMCConfig.from_pretrained(tmp_path)
    assert loaded.modalities == ["audio", "text"] and loaded.loss_variant == "reference"
    assert loaded.qformer_config.encoder_hidden_size == 32 and loaded.text_config.hidden_size == 32


def test_group_norm_audio_encoder_ignores_padding():
    # HuBERT-base normalises over the whole waveform: padding must not change a sample's features.
    model = ECMCModel(tiny_config(audio_config=dict(TINY_AUDIO, feat_extract_norm="group"))).eval()
    wave = torch.randn(1, 1600)
    alone = model(input_values=wave, audio_attention_mask=torch.ones(1, 1600, dtype=torch.long))
    padded = model(input_values=torch.cat([torch.cat([wave, torch.zeros(1, 800)], 1), torch.randn(1, 2400)]),
                   audio_attention_mask=torch.cat([torch.cat([torch.ones(1, 1600), torch.zeros(1, 800)], 1),
                                                   torch.ones(1, 2400)]).long())
    assert torch.allclose(alone.h_e[0], padded.h_e[0], atol=1e-5)


def test_stage2_forward_can_also_report_the_contrastive_loss(model):
    raw, ids = tiny_raw_inputs(), tiny_prompt()
    plain = model(input_ids=ids, labels=ids.masked_fill(ids >= 120, -100), **raw)
    both = model(input_ids=ids, labels=ids.masked_fill(ids >= 120, -100), **raw, **LABELS)
    assert plain.contrastive_loss is None
    assert torch.equal(plain.loss, both.loss)
    assert torch.allclose(both.contrastive_loss, model.model(**raw, **LABELS).loss)


def test_query_tokens_start_random_and_distinct(tmp_path):
    """Every stream's learnable queries start N(0, initializer_range), each query its own vector (they
    were all zero: transformers' custom-code init skipped them, and identical queries stay identical
    through training); a saved model reloads its trained queries, not fresh ones."""
    torch.manual_seed(0)
    fresh = ECMCForConditionalGeneration(tiny_config())
    for stream in fresh.model.bridge.values():
        for m, tokens in stream.query_tokens.items():
            queries = tokens[0].detach()
            assert queries.std().item() == pytest.approx(fresh.config.initializer_range, rel=0.3), m
            assert torch.cdist(queries, queries).fill_diagonal_(1.0).min() > 0, m
    fresh.save_pretrained(tmp_path)
    reloaded = ECMCForConditionalGeneration.from_pretrained(tmp_path)
    for name, p in fresh.named_parameters():
        if "query_tokens" in name:
            assert torch.equal(p, dict(reloaded.named_parameters())[name]), name



def test_modality_loss_trains_a_modality_the_fused_embedding_ignores():
    """`modality_loss_weight`: L_emo / L_cog also on each modality's own pooled head output. With the
    fusion blind to audio (its W_3 columns zero), Eq. 13 gives audio's Q-Former no gradient; the
    modality loss does, and the total is Eq. 13 + w x the mean of the six per-modality losses."""
    from modeling_ecmc.losses_ecmc import cognition_contrastive_loss, emotion_contrastive_loss

    labels = dict(emotion_labels=torch.tensor([0, 1, 0, -1]),
                  cognition_labels=torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1]]))
    loss_fns = {"emotion": (emotion_contrastive_loss, "emotion_labels"),
                "cognition": (cognition_contrastive_loss, "cognition_labels")}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        model = ECMCModel(tiny_config(modality_loss_weight=weight)).eval()
        width = model.config.modality_output_size
        heads = {}
        for stream_name, stream in model.bridge.items():
            with torch.no_grad():  # modalities video, audio, text: audio is the middle block of W_3's input
                stream.fusion.weight[:, width:2 * width] = 0
            for m, head in stream.heads.items():
                head.register_forward_hook(lambda mod, args, output, key=(stream_name, m): heads.__setitem__(key, output))
        out = model(**tiny_raw_inputs(batch=4), **labels)
        out.loss.backward()
        grad = model.bridge["emotion"].qformers["audio"].encoder.layer[0].crossattention.attention.query.weight.grad
        if weight == 0:
            assert out.modality_loss is None and (grad is None or grad.abs().max() == 0)
            continue
        assert grad.abs().max() > 0
        expected = torch.stack([fn(torch.nn.functional.normalize(heads[s, m].mean(dim=1), dim=-1), labels[key], 0.1)
                                for s, (fn, key) in loss_fns.items() for m in ("video", "audio", "text")]).mean()
        torch.testing.assert_close(out.modality_loss, expected)
        torch.testing.assert_close(out.loss, out.emotion_loss + out.cognition_loss + weight * expected)


def test_per_modality_soft_tokens_split_the_fused_tokens(model, tmp_path):
    """`soft_tokens: per_modality`: l_q tokens per modality, side by side, whose parts sum to the
    paper's fused tokens (W_3 applied blockwise), with h_e / h_c and the losses unchanged; the
    decoder prompt needs 3 x l_q placeholders per stream, and generation works with them."""
    raw = tiny_raw_inputs()
    model.save_pretrained(tmp_path)
    split = ECMCForConditionalGeneration.from_pretrained(tmp_path, soft_tokens="per_modality").eval()
    assert split.config.soft_tokens_per_stream == 3 * 4 and model.config.soft_tokens_per_stream == 4
    fused, parts = model.model(**raw, **LABELS), split.model(**raw, **LABELS)
    assert parts.emotion_query_output.shape == (2, 12, 30)
    for stream in ("emotion", "cognition"):
        summed = getattr(parts, f"{stream}_query_output").unflatten(1, (3, 4)).sum(dim=1)
        assert torch.allclose(summed, getattr(fused, f"{stream}_query_output"), atol=1e-5)
    assert torch.equal(parts.h_e, fused.h_e) and torch.equal(parts.loss, fused.loss)
    # a missing modality contributes only its share of the bias
    no_video = split.model(**dict(raw, modality_mask=torch.tensor([[False, True, True]] * 2)))
    bias = split.model.bridge["emotion"].fusion.bias / 3
    assert torch.allclose(no_video.emotion_query_output[:, :4], bias.expand(2, 4, -1), atol=1e-6)
    ids = torch.tensor([[1] + [120] * 12 + [121] * 12 + [5, 6, 7]] * 2)
    out = split.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, **raw)
    assert out.shape == (2, ids.shape[1] + 4)
    with pytest.raises(ValueError, match="exactly 12 emotion placeholder tokens"):
        split(input_ids=tiny_prompt(), **raw)
    with pytest.raises(ValueError, match="soft_tokens must be one of"):
        ECMCForConditionalGeneration.from_pretrained(tmp_path, soft_tokens="pooled")
