"""The model output contract shared by every paper's model (docs/DESIGN.md, Contracts).

Every model's ``forward(images)`` returns a :class:`ModelOutput` in train and in eval mode:
``logits`` is the final prediction the paper reports, ``extras`` holds named by-products.
By convention ``extras["branch_logits"]`` maps a branch name to that branch's logits (CLAN's
G/P/A/CLSA branches, SSANet's FE/SSA heads, ...), so the engine can score every branch and
the CAM wrapper can pick one. Other keys (attention maps, feature maps) are free-form.
"""
from __future__ import annotations

from typing import Dict, NamedTuple

import torch


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    extras: Dict[str, object]

    def branch(self, name: str | None) -> torch.Tensor:
        """Logits of one branch; ``None`` or ``"final"`` means the final prediction."""
        if name is None or name == "final":
            return self.logits
        branches = self.extras.get("branch_logits", {})
        if name not in branches:
            raise KeyError(f"unknown branch {name!r}; this model has: final, {', '.join(branches) or '(no other branch)'}")
        return branches[name]
