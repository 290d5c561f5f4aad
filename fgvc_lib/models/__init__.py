"""Models of the study: one file per paper plus the shared baseline (docs/DESIGN.md, Layout)."""
from .output import ModelOutput

__all__ = ["ModelOutput"]
