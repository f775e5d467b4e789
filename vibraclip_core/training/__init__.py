"""Training: the Lightning data module and module, run folders, `train`, step timing."""
