"""ECMC model package: configuration, dual-stream BridgeNet model, front ends, contrastive losses, presets."""

from .configuration_ecmc import MODALITIES, STREAMS, ECMCConfig, ECMCLogMelConfig, ECMCPixelConfig
from .frontends_ecmc import ECMCLogMelFrontEnd, ECMCPixelFrontEnd
from .losses_ecmc import cognition_contrastive_loss, emotion_contrastive_loss, jaccard_weights
from .modeling_ecmc import ECMCCausalLMOutput, ECMCForConditionalGeneration, ECMCModel, ECMCModelOutput

__all__ = [
    "MODALITIES", "STREAMS", "ECMCConfig", "ECMCModel", "ECMCForConditionalGeneration", "ECMCModelOutput",
    "ECMCCausalLMOutput", "ECMCLogMelConfig", "ECMCPixelConfig", "ECMCLogMelFrontEnd", "ECMCPixelFrontEnd",
    "emotion_contrastive_loss", "cognition_contrastive_loss", "jaccard_weights",
]
