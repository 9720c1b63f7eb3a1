"""ECMC assembled from named pretrained components: the training config's `model.components`.

    model, processor = assemble_from_components({"video": "MCG-NJU/videomae-base", ...})

Each part is a hub id or a local folder: `video` (a VideoMAE-style video encoder with its image
processor), `audio` (HuBERT / wav2vec 2.0 with its feature extractor), `text` (a BERT-style text
encoder with its tokenizer), `qformer_init` (the BERT whose layers initialise every Q-Former's
self-attention and feed-forward, as the paper does) and `llm` (a causal LM with its tokenizer;
`llm_gguf_file` names a GGUF file inside it). `PAPER_COMPONENTS` are the paper's (§Experiment Setup).
The shapes of the ECMC config come from the components' own configs, so they cannot disagree;
`overrides` set ECMC's own fields (e.g. `num_query_tokens`). Every source is checked, and its
config read, before any weights are loaded. Not part of the code that travels with checkpoints.
"""

import logging
from pathlib import Path

from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoTokenizer

from .configuration_ecmc import ECMCConfig
from .presets import init_qformers_from_bert, load_language_model, load_llm_tokenizer, match_embedding_scale, \
    qformer_config_like

logger = logging.getLogger(__name__)

PAPER_COMPONENTS = {
    "video": "MCG-NJU/videomae-base",  # a video encoder with its image processor
    "audio": "facebook/hubert-base-ls960",  # an audio encoder with its feature extractor
    "text": "google-bert/bert-base-uncased",  # a text encoder with its tokenizer
    "qformer_init": "google-bert/bert-base-uncased",  # the BERT whose layers initialise the Q-Formers
    "llm": "meta-llama/Llama-2-7b-hf",  # the frozen causal-LM decoder with its tokenizer
    "llm_gguf_file": None,  # a GGUF file inside `llm` (dequantised on load)
}
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")


class ComponentError(ValueError):
    """A component that cannot be used, named with its source."""


def check_source(name: str, source, gguf_file=None):
    """An existing local folder must hold weights (or the GGUF file named); any other source is taken
    as a hub id, which `component_config` then has to resolve (offline: from the local cache)."""
    if not isinstance(source, (str, Path)) or not str(source):
        raise ComponentError(f"model.components.{name}: expected a hub id or a local folder, got {source!r}")
    path = Path(source).expanduser()
    if not path.exists():
        return
    if not path.is_dir():
        raise ComponentError(f"model.components.{name}: {source} is not a folder")
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise ComponentError(f"model.components.llm_gguf_file: {path / gguf_file} does not exist")
    elif not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ComponentError(f"model.components.{name}: {source} holds no weights "
                             f"({', '.join(WEIGHT_PATTERNS)}); save the model there with save_pretrained")


def component_config(name: str, source, gguf_file=None):
    check_source(name, source, gguf_file)
    try:
        return AutoConfig.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))
    except (OSError, ValueError) as error:
        where = "" if Path(source).expanduser().exists() else " (no such local folder, so it was taken as a hub id)"
        raise ComponentError(f"model.components.{name}: cannot read the config of {source!r}{where}: {error}") from None


def resolve_components(components: dict | None) -> dict:
    """The paper's components with the given ones in their place; unknown names are an error."""
    components = dict(components or {})
    unknown = sorted(set(components) - set(PAPER_COMPONENTS))
    if unknown:
        raise ComponentError(f"model.components: unknown part(s) {unknown}; the parts are {list(PAPER_COMPONENTS)}")
    return {**PAPER_COMPONENTS, **components}


def components_config(components: dict, **overrides) -> ECMCConfig:
    """The ECMC config whose sub-configs are the components' own (read, not loaded)."""
    parts = resolve_components(components)
    configs = {name: component_config(name, parts[name], parts["llm_gguf_file"] if name == "llm" else None)
               for name in ("video", "audio", "text", "qformer_init", "llm")}
    if getattr(configs["llm"], "quantization_config", None) is not None and parts["llm_gguf_file"]:
        del configs["llm"].quantization_config  # GGUF weights are dequantised on load (DESIGN §3)
    qformer = configs["qformer_init"]
    fields = dict(
        video_config=configs["video"], audio_config=configs["audio"], text_encoder_config=configs["text"],
        text_config=configs["llm"], num_query_tokens=32,
        qformer_config=qformer_config_like(qformer, encoder_hidden_size=qformer.hidden_size),
    )
    fields.update(overrides)
    return ECMCConfig(**fields)


def _replace_encoder(model, modality: str, source):
    expected = model.config.encoder_config(modality)
    encoder = AutoModel.from_pretrained(source)
    if encoder.config.hidden_size != expected.hidden_size or encoder.config.model_type != expected.model_type:
        raise ComponentError(
            f"model.components.{modality}: {source} is a {encoder.config.model_type} of hidden size "
            f"{encoder.config.hidden_size}, but the config expects a {expected.model_type} of {expected.hidden_size}")
    model.model.encoders[modality] = encoder.eval()


def assemble_from_components(components: dict | None = None, face_crop: bool = True, **overrides):
    """(model, processor): the config from the components' configs, their weights, the Q-Formers
    initialised from `qformer_init`, the LLM's tokenizer with the placeholder tokens, the video
    encoder's image processor, the audio encoder's feature extractor, the text encoder's tokenizer.
    `face_crop`: the processor cuts frames to the patient's face (on: the paper's real recordings)."""
    from .modeling_ecmc import ECMCForConditionalGeneration
    from .processing_ecmc import ECMCProcessor, add_placeholder_tokens

    parts = resolve_components(components)
    gguf = parts["llm_gguf_file"]
    config = components_config(parts, **overrides)  # every source checked and its config read first
    try:
        llm_tokenizer = load_llm_tokenizer(parts["llm"], gguf)
    except (OSError, ValueError) as error:
        raise ComponentError(f"model.components.llm: {parts['llm']} has no tokenizer ({error})") from None
    ids = add_placeholder_tokens(llm_tokenizer)
    config.emotion_token_id, config.cognition_token_id = ids["emotion"], ids["cognition"]
    processors = {}
    for name, auto in (("video", AutoImageProcessor), ("audio", AutoFeatureExtractor), ("text", AutoTokenizer)):
        try:
            processors[name] = auto.from_pretrained(parts[name])
        except (OSError, ValueError) as error:
            raise ComponentError(f"model.components.{name}: {parts[name]} has no {auto.__name__[4:]} "
                                 f"({error}); save one beside the weights") from None
    model = ECMCForConditionalGeneration(config)
    for modality in config.modalities:  # the encoder parts are named by their modality
        _replace_encoder(model, modality, parts[modality])
        logger.info("loaded the %s encoder from %s", modality, parts[modality])
    init_qformers_from_bert(model, parts["qformer_init"])
    llm = load_language_model(parts["llm"], gguf)
    missing, unexpected = model.language_model.load_state_dict(llm.state_dict(), strict=False)
    missing = [key for key in missing if key != "lm_head.weight" or not config.text_config.tie_word_embeddings]
    if missing or unexpected:
        raise ComponentError(f"model.components.llm: {parts['llm']} does not fit its own config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.language_model.tie_weights()
    match_embedding_scale(model)
    processor = ECMCProcessor(processors["video"], processors["audio"], llm_tokenizer, processors["text"],
                              num_frames=config.video_config.num_frames, num_query_tokens=config.soft_tokens_per_stream,
                              face_crop=face_crop)
    return model, processor
