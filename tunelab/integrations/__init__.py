"""Tunelab inside the tools training code already uses. Each submodule imports its
framework only when it is used, so `import tunelab` never needs one:

- `tunelab.integrations.lightning.TunelabCallback`: PyTorch Lightning
- `tunelab.integrations.transformers.TunelabCallback`: Hugging Face `Trainer`
- `tunelab.integrations.keras.TunelabCallback`: Keras 3, any backend
- `tunelab.integrations.optuna`: an Optuna study as a document Tunelab imports

See docs/integrations.md.
"""
