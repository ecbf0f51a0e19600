"""Tunelab for training scripts: `from tunelab import report`.

Names load on first use, so `import tunelab` costs nothing and pulls in no dependency
a training environment may lack."""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it
_EXPORTS = {
    "report": "tunelab.sdk",
    "Report": "tunelab.sdk",
    "params": "tunelab.sdk",
    "checkpoint_dir": "tunelab.sdk",
    "checkpoint_path": "tunelab.sdk",
    "save_checkpoint": "tunelab.sdk",
    "Client": "tunelab.client",
    "TunelabError": "tunelab.transport",
    "Unreachable": "tunelab.transport",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
