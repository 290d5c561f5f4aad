"""Notebook 00's study: the fine-tuned baseline CNN on the embedded synthetic dataset.

Not a paper: the notebook calibrates the testbed every paper notebook runs on (chance, a colour
baseline, the baseline CNN, its confusions and Grad-CAM against the ground-truth parts). Declared
for the study runner like a paper, with one variant, so it trains through the same runner.
"""
from __future__ import annotations

from ..engine import TrainConfig
from ..models.baseline import BaselineNet, cross_entropy_loss
from ..study import Accuracy, Cell, Paper, Variant

# The baseline's recipe in every profile: SGD with momentum, cosine decay (not a paper's recipe).
LR = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def plan(settings):
    recipe = TrainConfig(epochs=settings.epochs, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                         scheduler="cosine")
    return [Variant("baseline", BaselineNet, cross_entropy_loss, recipe, tuple(settings.seeds),
                    details=(("model", "backbone + GAP + linear"),))]


def cells(settings):
    return [Cell("accuracy", "baseline CNN", Accuracy("baseline"))]


BACKBONES = ("vgg16", "vgg19", "resnet34", "resnet50", "resnet101", "densenet161")

STUDY = Paper(key="synthetic_dataset", notebook="00_synthetic_dataset",
              title="The embedded synthetic fine-grained dataset", backbones=BACKBONES, plan=plan, cells=cells,
              recipe_epochs=30, recipe_batch_size=32, datasets=("synthetic",))
