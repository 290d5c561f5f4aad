"""Multinomial logistic regression on fixed features: the classifier of the study's near-chance controls.

Not from a paper. Used by the colour-histogram control (:mod:`fgvc_lib.colour_baseline`: is the task solvable
from overall colours?) and by the region probe (:mod:`fgvc_lib.region_probe`: how much does an oracle's
region alone say about the class?). Features are standardised on the training split; the weights are
fitted full-batch with L-BFGS and an L2 penalty, from a fixed seed, so the result is deterministic.
"""
from __future__ import annotations

from typing import Dict

import torch


def linear_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                 num_classes: int, steps: int = 300, weight_decay: float = 1e-3, seed: int = 0) -> Dict[str, object]:
    """Train and test accuracy (fractions) of logistic regression on ``x_train``, ``test_correct`` (per test
    image, 100 if it is classified right, else 0) and ``chance`` (1 / ``num_classes``)."""
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError("the probe needs training and test features")
    x_train, x_test = x_train.float(), x_test.float()
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    torch.manual_seed(seed)
    linear = torch.nn.Linear(x_train.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train)
        loss = loss + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        test_hits = (linear(x_test).argmax(1) == y_test).float()
        return {"train_acc": (linear(x_train).argmax(1) == y_train).float().mean().item(),
                "test_acc": test_hits.mean().item(), "test_correct": (100.0 * test_hits).numpy(),
                "chance": 1.0 / num_classes}
