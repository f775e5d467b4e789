"""The model: DimeNet++ graph encoder, spectra encoders and heads (VibraCLIP), the contrastive
losses, reading checkpoints."""
