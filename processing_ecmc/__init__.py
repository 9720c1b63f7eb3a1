"""ECMC data processing: the data set schema, manifests and the MMDA import, ECMC-Synth, the feature
cache and atomic writes. Nothing here travels with a checkpoint: the processor that turns media into
model inputs does, so it lives beside the model (`modeling_ecmc.processing_ecmc`)."""
