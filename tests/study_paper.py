"""A tiny paper declared for the study runner's tests (tests/test_study.py).

It is a module of its own, not part of the test file, because a run may train in another process
(a spawn process pool, a submitit job): that process unpickles the variant's model factory and loss
by module and name, so both must be importable there. test_study.py puts this folder on PYTHONPATH
before any such process starts.

Variants (parameter ``variants``, comma-separated):

* ``plain``: the baseline (backbone, GAP, linear) with the recipe's learning rate;
* ``slow``: the same network at a tenth of that learning rate (another recipe, another run key);
* ``broken``: a model factory that raises, to check how a failing run is reported;
* ``cropped``: the baseline trained on random crops (``resize_mode="resize_crop"``), also scored on
  the uncropped test images (``test_views``);
* ``tuned``: the baseline whose learning rate the runner chooses on a validation split between a
  hundredth of the recipe's and the recipe's own (``lr_trials``);
* ``shared``: the baseline at the rate chosen for ``tuned`` (``lr_from``).
"""
from __future__ import annotations

import dataclasses

from fgvc_lib.engine import TrainConfig
from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss
from fgvc_lib.study import Accuracy, Cell, Paper, Parameter, Variant
from fgvc_lib.study.parameters import comma_list, non_negative_number

VARIANT_NAMES = ("plain", "slow", "broken", "cropped", "tuned", "shared")

# In-process hook of counted_loss: how many times it ran, and after how many calls it should raise
# (None: never). Only runs in this process (inline executor, execute_run called directly) see it.
LOSS_CALLS = {"calls": 0, "fail_after": None}


def counted_loss(output, targets):
    """Cross-entropy that counts its calls (one per training batch) and can simulate a crash."""
    LOSS_CALLS["calls"] += 1
    if LOSS_CALLS["fail_after"] is not None and LOSS_CALLS["calls"] > LOSS_CALLS["fail_after"]:
        raise RuntimeError("simulated crash in the middle of training")
    return cross_entropy_loss(output, targets)


def broken_model(backbone, num_classes):
    raise RuntimeError("this model factory refuses to build, on purpose")


def _variants(value):
    names = comma_list(value)
    unknown = [n for n in names if n not in VARIANT_NAMES]
    if not names or unknown:
        raise ValueError(f"name variants among {', '.join(VARIANT_NAMES)}; got {value!r}")
    return names


def plan(settings):
    recipe = TrainConfig(epochs=settings.epochs, lr=settings.lr, scheduler="none", progress=False)
    seeds = tuple(settings.seeds)
    variants = {
        "plain": Variant("plain", BaselineNet, counted_loss, recipe, seeds, (("lr", recipe.lr),)),
        "slow": Variant("slow", BaselineNet, counted_loss, dataclasses.replace(recipe, lr=recipe.lr / 10), seeds,
                        (("lr", recipe.lr / 10),)),
        "broken": Variant("broken", broken_model, counted_loss, recipe, seeds),
        "cropped": Variant("cropped", BaselineNet, counted_loss, recipe, seeds, data=(("resize_mode", "resize_crop"),),
                           test_views=("uncropped",)),
        "tuned": Variant("tuned", BaselineNet, counted_loss, recipe, seeds, lr_trials=(recipe.lr / 100, recipe.lr)),
        "shared": Variant("shared", BaselineNet, counted_loss, dataclasses.replace(recipe, lr=recipe.lr / 10), seeds,
                          lr_from="tuned"),
    }
    return [variants[name] for name in settings.variants]


def cells(settings):
    printed = {"plain": 80.0, "slow": 70.0}
    return [Cell("accuracy", name, Accuracy(name), printed[name]) for name in settings.variants if name in printed]


PAPER = Paper(
    key="tiny", notebook="99_tiny", title="A tiny paper for the runner's tests", backbones=("vgg16", "resnet34"),
    plan=plan, cells=cells,
    parameters=(Parameter("variants", "plain,slow", "which variants to train", _variants),
                Parameter("lr", 0.05, "learning rate of the plain variant", non_negative_number)),
    recipe_epochs=3, recipe_batch_size=8)
