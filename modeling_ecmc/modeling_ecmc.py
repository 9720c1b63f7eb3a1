"""ECMC: frozen modality encoders -> dual-stream BridgeNet of Q-Formers -> frozen LLM decoder.

`ECMCModel` is stage 1 (encoders + BridgeNet, returns h_e, h_c and L_emo + L_cog).
`ECMCForConditionalGeneration` adds the LLM (stage 2 caption loss and `generate`). Following
LLaVA, the processor writes placeholder tokens into the prompt (Eq. 3: [BOS] + emotion tokens +
cognition tokens + prompt) and the model scatters the projected query outputs into their
embeddings, so `generate`, the KV cache and left-padded batches work unchanged.

This file travels inside saved checkpoints: it imports only torch, transformers and its siblings.
"""

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, Blip2QFormerModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_ecmc import ECMCConfig
from .vocabulary_ecmc import (
    COGNITION_LABELS,
    EMOTION_LABELS,
    MODALITIES,
    MODALITY_INPUT_NAMES,
    RAW_INPUTS,
    STREAMS,
    feature_input_names,
)
from .frontends_ecmc import build_encoder
from .losses_ecmc import cognition_contrastive_loss, emotion_contrastive_loss
from .encoding_ecmc import encode_per_row, run_encoder
from .generation_ecmc import caption_generation_config

@dataclass
class ECMCModelOutput(ModelOutput):
    """
    loss: L_emo + L_cog (Eq. 13, weighted by the config), when labels are given; plus
        `modality_loss_weight` x `modality_loss` where that weight is set.
    modality_loss: the mean of L_emo / L_cog on each modality's own pooled head output (not in the
        paper; only when `config.modality_loss_weight` > 0).
    h_e / h_c: (batch, d_e) pooled, L2-normalised emotion / cognition embeddings (Eq. 9).
    emotion_query_output / cognition_query_output: (batch, l_q, d_e) un-pooled fused query
        outputs, the tokens the LLM receives after projection; with `soft_tokens: per_modality`,
        (batch, n_modalities x l_q, d_e), each modality's part of them.
    modality_mask: (batch, n_modalities) bool, which modalities each sample had.
    """

    loss: torch.FloatTensor | None = None
    emotion_loss: torch.FloatTensor | None = None
    cognition_loss: torch.FloatTensor | None = None
    modality_loss: torch.FloatTensor | None = None
    h_e: torch.FloatTensor | None = None
    h_c: torch.FloatTensor | None = None
    emotion_query_output: torch.FloatTensor | None = None
    cognition_query_output: torch.FloatTensor | None = None
    modality_mask: torch.BoolTensor | None = None


@dataclass
class ECMCCausalLMOutput(ModelOutput):
    """Decoder output plus the BridgeNet embeddings of the prefill step (None on cached steps)."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: object | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    h_e: torch.FloatTensor | None = None
    h_c: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None  # L_emo + L_cog of the prefill, when labels are given


class ECMCFeedForward(nn.Module):
    """Eq. 8: Z'_m = ReLU(Z_m W_1 + b_1) W_2 + b_2."""

    def __init__(self, in_size: int, hidden_size: int, out_size: int):
        super().__init__()
        self.fc1 = nn.Linear(in_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, out_size)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class ECMCLanguageProjection(nn.Module):
    """One stream's query outputs -> LLM input embeddings. The LayerNorm gain sets the soft tokens'
    scale: `presets.match_embedding_scale` puts it at the LLM's own embedding RMS, without which a
    frozen LLM barely reads the soft prompt (DESIGN §3)."""

    def __init__(self, in_size: int, out_size: int):
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.norm = nn.LayerNorm(out_size)

    def forward(self, x):
        return self.norm(self.linear(x))


class ECMCQueryTokens(nn.ParameterDict):
    """The learnable queries of one stream, one (1, l_q, d) tensor per modality. Its own class so that
    `_init_weights` finds it: transformers initialises a custom-code module only if it has parameters
    of its own, and the stream holding this dict has none, so queries initialised there stayed at
    zero. Identical queries get identical gradients through the Q-Former (it has no query positions):
    all l_q of them would stay one query repeated."""


class ECMCBridgeStream(nn.Module):
    """One stream (emotion or cognition) of the BridgeNet: a Q-Former per modality (Eq. 6-8), fused (Eq. 9)."""

    def __init__(self, config: ECMCConfig):
        super().__init__()
        qformer_config = config.qformer_config
        self.modalities = list(config.modalities)
        self.query_tokens = ECMCQueryTokens(
            {m: nn.Parameter(torch.empty(1, config.num_query_tokens, qformer_config.hidden_size)) for m in self.modalities}
        )
        # W_m of Eq. 7: H'_m = H_m W_m, into the width the Q-Former's cross-attention reads.
        self.feature_projections = nn.ModuleDict(
            {m: nn.Linear(config.feature_size(m), qformer_config.encoder_hidden_size) for m in self.modalities}
        )
        self.qformers = nn.ModuleDict({m: Blip2QFormerModel(qformer_config) for m in self.modalities})
        self.heads = nn.ModuleDict(
            {
                m: ECMCFeedForward(qformer_config.hidden_size, config.bridge_hidden_size, config.modality_output_size)
                for m in self.modalities
            }
        )
        self.fusion = nn.Linear(config.modality_output_size * len(self.modalities), config.bridge_hidden_size)  # W_3
        self.soft_tokens = config.checked_soft_tokens

    def _per_modality_tokens(self, outputs: list) -> torch.Tensor:
        """W_3 applied to each modality's head output alone (its block of columns, a share of the
        bias): (batch, n_modalities x l_q, d_e), whose per-modality parts sum to the fused tokens."""
        blocks = self.fusion.weight.split(outputs[0].shape[-1], dim=1)
        bias = self.fusion.bias / len(outputs)
        return torch.cat([F.linear(z, w, bias) for z, w in zip(outputs, blocks)], dim=1)

    def forward(self, features: dict, masks: dict, present: dict):
        outputs = []
        for m in self.modalities:
            queries = self.query_tokens[m].expand(features[m].shape[0], -1, -1)
            z = self.qformers[m](
                query_embeds=queries,
                encoder_hidden_states=self.feature_projections[m](features[m]),
                encoder_attention_mask=masks[m],
            ).last_hidden_state
            # A sample without this modality contributes zeros, not the output of attending to padding.
            outputs.append(self.heads[m](z) * present[m][:, None, None].to(z.dtype))
        fused = self.fusion(torch.cat(outputs, dim=-1))  # (batch, l_q, d_e)
        pooled = F.normalize(fused.mean(dim=1), p=2, dim=-1)  # Eq. 9
        # each modality's own pooled head output, for `modality_loss_weight` (not in the paper)
        per_modality = {m: F.normalize(z.mean(dim=1), p=2, dim=-1) for m, z in zip(self.modalities, outputs)}
        tokens = self._per_modality_tokens(outputs) if self.soft_tokens == "per_modality" else fused
        return tokens, pooled, per_modality


class ECMCPreTrainedModel(PreTrainedModel):
    config: ECMCConfig
    config_class = ECMCConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["Blip2QFormerLayer"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, but safetensors only unless `use_safetensors=False` is
        passed: pickled weights (`pytorch_model.bin`) can run code when unpickled, so an ECMC
        checkpoint never loads them by default (SECURITY.md). A missing local folder or a corrupt
        weights file is an error naming the path."""
        kwargs.setdefault("use_safetensors", True)
        if isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            path = os.fspath(pretrained_model_name_or_path)
            local = isinstance(pretrained_model_name_or_path, os.PathLike) or path.startswith(("/", ".", "~"))
            if local and not os.path.isdir(os.path.expanduser(path)):
                raise FileNotFoundError(f"{path}: no such checkpoint folder")
        try:
            model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except Exception as error:
            if type(error).__name__ == "SafetensorError":  # safetensors' own error names no file
                raise OSError(f"{pretrained_model_name_or_path}: a weights file is corrupt or truncated ({error})") from None
            raise
        if getattr(model, "generation_config", None) is not None and model.generation_config.max_new_tokens is None:
            # saved before checkpoints carried their generation defaults: transformers' 20 tokens cut captions
            defaults = caption_generation_config(model.config.text_config)
            model.generation_config.update(**{k: v for k, v in defaults.to_diff_dict().items()
                                              if getattr(model.generation_config, k, None) is None})
        return model

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, ECMCQueryTokens):
            for tokens in module.values():
                init.normal_(tokens, mean=0.0, std=self.config.initializer_range)


class ECMCModel(ECMCPreTrainedModel):
    """Frozen encoders F_v, F_a, F_t (Eq. 1) and the dual-stream BridgeNet (Eq. 2, 6-9)."""

    def __init__(self, config: ECMCConfig):
        super().__init__(config)
        self.encoders = nn.ModuleDict({m: build_encoder(config.encoder_config(m)) for m in config.modalities})
        self.bridge = nn.ModuleDict({s: ECMCBridgeStream(config) for s in STREAMS})
        self.post_init()

    # ----- encoders (encoding_ecmc.py) ------------------------------------------------------
    def _run_encoder(self, modality: str, values, mask):
        return run_encoder(self.encoders[modality], modality, values, mask)

    def encode_modalities(self, **inputs) -> dict:
        """Run the frozen encoders on raw inputs: {modality: (features, mask)} for the modalities given."""
        encoded = {}
        for m in self.config.modalities:
            values_name, mask_name = RAW_INPUTS[m]
            if inputs.get(values_name) is not None:
                encoded[m] = self._run_encoder(m, inputs[values_name], inputs.get(mask_name) if mask_name else None)
        return encoded

    def encode_per_row(self, **inputs) -> dict:
        """{modality: [features (frames, d) or None per row]} of a processor batch (raw inputs and
        `modality_mask`), each row trimmed to its valid frames and independent of its batch: what the
        feature cache stores (`encoding_ecmc.encode_per_row`)."""
        return encode_per_row(self, inputs)

    def _gather_features(self, inputs: dict):
        """Features, masks and per-sample presence for every configured modality, validated."""
        encoded = self.encode_modalities(**inputs)
        for m in self.config.modalities:
            features_name, mask_name = feature_input_names(m)
            if inputs.get(features_name) is not None:
                if m in encoded:
                    raise ValueError(f"give either raw {m} inputs or {features_name}, not both")
                encoded[m] = (inputs[features_name], inputs.get(mask_name))
        if not encoded:
            raise ValueError(
                f"no modality given: pass raw inputs or precomputed features for at least one of {self.config.modalities}"
            )
        batch_sizes = {m: f.shape[0] for m, (f, _) in encoded.items()}
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"modalities have different batch sizes: {batch_sizes}")
        batch = next(iter(batch_sizes.values()))
        reference = next(iter(encoded.values()))[0]
        features, masks, present = {}, {}, {}
        for m in self.config.modalities:
            if m not in encoded:  # absent for the whole batch: one masked zero frame
                values = reference.new_zeros(batch, 1, self.config.feature_size(m))
                mask = torch.zeros(batch, 1, dtype=torch.long, device=reference.device)
            else:
                values, mask = encoded[m]
                if values.dim() != 3 or values.shape[-1] != self.config.feature_size(m):
                    raise ValueError(
                        f"{m} features must have shape (batch, frames, {self.config.feature_size(m)}), "
                        f"got {tuple(values.shape)}"
                    )
                if mask is None:
                    mask = torch.ones(values.shape[:2], dtype=torch.long, device=values.device)
                elif mask.shape != values.shape[:2]:
                    raise ValueError(f"{m} mask shape {tuple(mask.shape)} does not match features {tuple(values.shape[:2])}")
                if not torch.isfinite(values).all():
                    raise ValueError(f"{m} features contain NaN or Inf")
            if m == "text" and self.config.text_feature_mode == "mean":
                weights = mask.to(values.dtype)[..., None]
                values = (values * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1)
                mask = mask.amax(dim=1, keepdim=True)
            present[m] = mask.bool().any(dim=1)
            if inputs.get("modality_mask") is not None:
                present[m] = present[m] & inputs["modality_mask"][:, MODALITIES.index(m)].bool().to(present[m].device)
            # A row with nothing to attend to attends to its first (zero or padded) frame instead of
            # producing NaN; its output is zeroed through `present`.
            mask = mask.clone()
            mask[~present[m], 0] = 1
            features[m], masks[m] = values, mask
        return features, masks, present

    @staticmethod
    def _check_labels(emotion_labels, cognition_labels, batch: int):
        if emotion_labels is not None:
            valid = emotion_labels.new_tensor(sorted(EMOTION_LABELS))
            if emotion_labels.shape != (batch,) or not torch.isin(emotion_labels, valid).all():
                raise ValueError(
                    f"emotion_labels must be a ({batch},) tensor of {valid.tolist()}, got shape {tuple(emotion_labels.shape)} "
                    f"with values {sorted(set(emotion_labels.flatten().tolist()))}"
                )
        if cognition_labels is not None:
            shape = (batch, len(COGNITION_LABELS))
            if cognition_labels.shape != shape or not ((cognition_labels == 0) | (cognition_labels == 1)).all():
                raise ValueError(
                    f"cognition_labels must be a {shape} tensor of 0/1, got shape {tuple(cognition_labels.shape)}"
                )

    def forward(self, emotion_labels=None, cognition_labels=None, **inputs) -> ECMCModelOutput:
        """Inputs per modality, raw or precomputed (a modality may be missing for the batch; a sample
        whose mask is all zeros lacks that modality):
        video: `pixel_values_videos` (batch, frames, 3, H, W) or `video_features` (+ `video_feature_mask`);
        audio: `input_values` (+ `audio_attention_mask`) or `audio_features` (+ `audio_feature_mask`);
        text: `text_input_ids` (+ `text_attention_mask`) or `text_features` (+ `text_feature_mask`).
        Inputs for modalities not in `config.modalities` are ignored (one processor serves every ablation)."""
        unknown = set(inputs) - set(MODALITY_INPUT_NAMES) - {"return_dict", "output_attentions", "output_hidden_states"}
        if unknown:
            raise TypeError(f"unexpected inputs {sorted(unknown)}; expected some of {MODALITY_INPUT_NAMES}")
        features, masks, present = self._gather_features(inputs)
        batch = next(iter(features.values())).shape[0]
        self._check_labels(emotion_labels, cognition_labels, batch)

        tokens, pooled, per_modality = {}, {}, {}
        for stream in STREAMS:
            tokens[stream], pooled[stream], per_modality[stream] = self.bridge[stream](features, masks, present)

        c = self.config
        losses, modality_losses = {}, []
        for stream, loss_fn, labels, weight in (
            ("emotion", emotion_contrastive_loss, emotion_labels, c.emotion_loss_weight),
            ("cognition", cognition_contrastive_loss, cognition_labels, c.cognition_loss_weight),
        ):
            if labels is None:
                continue
            losses[stream] = loss_fn(pooled[stream], labels, c.contrastive_temperature, c.loss_variant)
            if c.modality_loss_weight and weight:
                # the same loss on each modality alone, over the samples that have it
                modality_losses += [weight * loss_fn(h[present[m]], labels[present[m]], c.contrastive_temperature,
                                                     c.loss_variant)
                                    for m, h in per_modality[stream].items() if present[m].sum() > 1]
        loss = modality_loss = None
        if losses:  # Eq. 13
            loss = c.emotion_loss_weight * losses.get("emotion", 0.0) + c.cognition_loss_weight * losses.get("cognition", 0.0)
        if modality_losses:
            modality_loss = torch.stack(modality_losses).mean()
            loss = loss + c.modality_loss_weight * modality_loss
        return ECMCModelOutput(
            loss=loss,
            emotion_loss=losses.get("emotion"),
            cognition_loss=losses.get("cognition"),
            modality_loss=modality_loss,
            h_e=pooled["emotion"],
            h_c=pooled["cognition"],
            emotion_query_output=tokens["emotion"],
            cognition_query_output=tokens["cognition"],
            modality_mask=torch.stack([present[m] for m in self.config.modalities], dim=1),
        )


class ECMCForConditionalGeneration(ECMCPreTrainedModel, GenerationMixin):
    """ECMCModel + a frozen causal LM that the BridgeNet learns to prompt (Eq. 3, 14)."""

    def __init__(self, config: ECMCConfig):
        super().__init__(config)
        self.model = ECMCModel(config)
        llm_hidden = config.text_config.hidden_size
        self.language_projections = nn.ModuleDict(
            {s: ECMCLanguageProjection(config.bridge_hidden_size, llm_hidden) for s in STREAMS}
        )
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()
        self.generation_config = caption_generation_config(config.text_config)  # saved with the checkpoint

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def _placeholder_ids(self):
        return {"emotion": self.config.emotion_token_id, "cognition": self.config.cognition_token_id}

    def embed_prompt(self, input_ids, bridge: ECMCModelOutput | None):
        """Token embeddings with each stream's placeholders replaced by its projected query outputs."""
        ids = self._placeholder_ids()
        placeholders = {s: input_ids == token_id for s, token_id in ids.items()}
        any_placeholder = placeholders["emotion"] | placeholders["cognition"]
        # Placeholder ids may lie beyond the LLM vocabulary: embed a harmless id, then overwrite.
        embeds = self.get_input_embeddings()(input_ids.masked_fill(any_placeholder, 0))
        if bridge is None:
            return embeds
        for stream, mask in placeholders.items():
            tokens = self.language_projections[stream](getattr(bridge, f"{stream}_query_output"))
            counts = mask.sum(dim=1)
            if (counts != tokens.shape[1]).any():
                raise ValueError(
                    f"each prompt needs exactly {tokens.shape[1]} {stream} placeholder tokens "
                    f"(id {ids[stream]}), found {counts.tolist()}"
                )
            embeds = embeds.masked_scatter(mask[..., None].expand_as(embeds), tokens.to(embeds.dtype))
        return embeds

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        cache=None,
        inputs_embeds=None,
        labels=None,
        logits_to_keep=0,
        pixel_values_videos=None,
        input_values=None,
        audio_attention_mask=None,
        text_input_ids=None,
        text_attention_mask=None,
        video_features=None,
        video_feature_mask=None,
        audio_features=None,
        audio_feature_mask=None,
        text_features=None,
        text_feature_mask=None,
        modality_mask=None,
        emotion_labels=None,
        cognition_labels=None,
        **kwargs,
    ) -> ECMCCausalLMOutput | ECMCModelOutput:
        """`labels` mark the caption tokens (others -100): the stage-2 loss of Eq. 14. With
        `emotion_labels` / `cognition_labels` as well, `contrastive_loss` holds L_emo + L_cog.
        Without `input_ids`/`inputs_embeds` this is the stage-1 model (`ECMCModelOutput` with
        L_emo + L_cog for the given labels), so a wrapped model (DDP, DeepSpeed) trains both stages
        through one forward."""
        modality_inputs = {
            name: value for name, value in locals().items() if name in MODALITY_INPUT_NAMES and value is not None
        }
        if input_ids is None and inputs_embeds is None:
            return self.model(emotion_labels=emotion_labels, cognition_labels=cognition_labels, **modality_inputs)
        bridge = None
        if inputs_embeds is None:
            has_placeholders = (input_ids == self.config.emotion_token_id).any() or (
                input_ids == self.config.cognition_token_id
            ).any()
            if has_placeholders:  # prefill; cached decoding steps carry no placeholders
                bridge = self.model(emotion_labels=emotion_labels, cognition_labels=cognition_labels, **modality_inputs)
            inputs_embeds = self.embed_prompt(input_ids, bridge)
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            labels=labels,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        return ECMCCausalLMOutput(
            loss=outputs.loss,
            logits=outputs.logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            h_e=bridge.h_e if bridge is not None else None,
            h_c=bridge.h_c if bridge is not None else None,
            contrastive_loss=bridge.loss if bridge is not None else None,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers writes only the saved class into `auto_map`; point every Auto class users
        # reach for at this one, so `AutoModel.from_pretrained(..., trust_remote_code=True)` can generate.
        module = type(self).__module__.rsplit(".", 1)[-1]
        target = f"{module}.{type(self).__name__}"
        config_module = type(self.config).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {"AutoConfig": f"{config_module}.{type(self.config).__name__}",
                                **{auto: target for auto in GENERATION_AUTO_CLASSES}}
        # `model.save_pretrained` never registers a pipeline: do it here, so every checkpoint works with
        # `pipeline(model=folder, trust_remote_code=True)`. This relative import also makes transformers
        # copy pipeline_ecmc.py (and what it imports) into the folder beside this file.
        from .pipeline_ecmc import custom_pipelines_config

        self.config.custom_pipelines = custom_pipelines_config()
        return super().save_pretrained(save_directory, *args, **kwargs)

    def prepare_inputs_for_generation(self, *args, is_first_iteration=False, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration and kwargs.get("use_cache", True):
            for name in MODALITY_INPUT_NAMES:  # the bridge runs once, at prefill
                model_inputs.pop(name, None)
        return model_inputs


GENERATION_AUTO_CLASSES = ("AutoModel", "AutoModelForCausalLM", "AutoModelForImageTextToText", "AutoModelForMultimodalLM")
ECMCModel.register_for_auto_class("AutoModel")
ECMCForConditionalGeneration.register_for_auto_class("AutoModelForCausalLM")

__all__ = ["ECMCModel", "ECMCForConditionalGeneration", "ECMCPreTrainedModel", "ECMCModelOutput", "ECMCCausalLMOutput"]
