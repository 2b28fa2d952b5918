"""Everything that runs the model: prompts, datasets, phantoms (and later losses, metrics, engines, inference)."""
