"""ECMC model package: everything a saved checkpoint carries (the one vocabulary, configuration,
dual-stream BridgeNet model, front ends, contrastive losses, the processor with its prompts and media
decoding, the pipeline), plus presets that assemble a model from pretrained parts.

The files that travel import each other only as flat siblings (`from .x import y`), because
transformers copies them flat into a checkpoint folder (README, "Layout").
"""

from .configuration_ecmc import ECMCConfig, ECMCLogMelConfig, ECMCPixelConfig
from .frontends_ecmc import ECMCLogMelFrontEnd, ECMCPixelFrontEnd
from .losses_ecmc import cognition_contrastive_loss, emotion_contrastive_loss, jaccard_weights
from .modeling_ecmc import ECMCCausalLMOutput, ECMCForConditionalGeneration, ECMCModel, ECMCModelOutput
from .vocabulary_ecmc import COGNITION_LABELS, EMOTION_LABELS, MODALITIES, STREAMS

__all__ = [
    "MODALITIES", "STREAMS", "EMOTION_LABELS", "COGNITION_LABELS", "ECMCConfig", "ECMCModel",
    "ECMCForConditionalGeneration", "ECMCModelOutput", "ECMCCausalLMOutput", "ECMCLogMelConfig", "ECMCPixelConfig",
    "ECMCLogMelFrontEnd", "ECMCPixelFrontEnd", "ECMCProcessor",
    "emotion_contrastive_loss", "cognition_contrastive_loss", "jaccard_weights",
]


def __getattr__(name):  # the processor pulls in decord/torchaudio: import it on first use
    if name == "ECMCProcessor":
        from .processing_ecmc import ECMCProcessor

        return ECMCProcessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
