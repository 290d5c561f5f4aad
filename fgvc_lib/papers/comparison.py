"""A row of another method in a paper's comparison table: printed beside our rows, paper only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class ComparisonRow:
    """Another method of a paper's comparison table: its name (with the paper's detail, e.g. its
    scales) and reference number in the paper, whether it trains with boxes or part annotations
    (SSANet's "Aux" column; False where a paper has no such column), and its top-1 % per dataset
    column (a dataset the paper prints as "-" is absent)."""

    method: str
    reference: int
    aux: bool
    top1: Dict[str, float]

    @property
    def label(self) -> str:
        """Row label: ``"RA-CNN [11]"``; ``" (Aux)"`` is added for annotation-trained methods, which also
        tells apart SSANet's two FCAN rows."""
        return f"{self.method} [{self.reference}]" + (" (Aux)" if self.aux else "")
