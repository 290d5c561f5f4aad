"""Run keys hash what a run reads (docs/DESIGN.md, Run keys): a config field marked outside the key
(``metadata=UNKEYED``) can be edited without moving any stored run; everything a run reads
(the model's and loss's keyed fields, the variant name, the recipe, the data, the backbone) moves it.

The variants, data and backbone specs are built directly: nothing here trains or touches a folder.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import pytest

from fgvc_lib.engine import TrainConfig
from fgvc_lib.models.baseline import cross_entropy_loss
from fgvc_lib.study import Variant
from fgvc_lib.run_keys import UNKEYED
from fgvc_lib.study.jobs import BackboneSpec, DataSpec, describe, keyed_fields, run_key

DATA = DataSpec("synthetic", None, 64, 8, (("num_classes", 6),), max_batches=3)
BACKBONE = BackboneSpec("vgg16", 0.125, True, None)
TRAIN = TrainConfig(epochs=2, lr=0.05, scheduler="cosine")


@dataclass(frozen=True)
class ToyConfig:
    """A model config as the papers write them: most fields read by the model, one recorded only."""

    width: int = 8                                                     # read by toy_model
    dropout: float = 0.0                                               # read by toy_model
    paper_epochs: int = field(default=100, metadata=UNKEYED)  # the paper's recipe, read by no run


def toy_model(backbone, num_classes, config: ToyConfig):
    """A model factory (never called: only its description is keyed)."""
    raise AssertionError("run keys never build the model")


def _variant(config=ToyConfig(), name="toy", train=TRAIN, loss=cross_entropy_loss) -> Variant:
    return Variant(name, functools.partial(toy_model, config=config), loss, train, (0, 1))


def _key(variant: Variant, data: DataSpec = DATA, backbone: BackboneSpec = BACKBONE) -> str:
    return run_key(variant, data, backbone)


def test_describe_leaves_out_the_fields_marked_outside_the_key():
    config = ToyConfig()
    assert [f.name for f in keyed_fields(config)] == ["width", "dropout"]
    assert describe(config) == {"type": f"{__name__}.ToyConfig", "width": 8, "dropout": 0.0}
    assert describe(functools.partial(toy_model, config=config))["keywords"]["config"] == describe(config)


def test_an_unread_field_keeps_the_key_and_a_read_one_changes_it():
    key = _key(_variant())
    assert key.startswith("toy-") and key == _key(_variant())
    assert _key(_variant(ToyConfig(paper_epochs=7))) == key
    changed = {"width": _key(_variant(ToyConfig(width=16))), "dropout": _key(_variant(ToyConfig(dropout=0.5)))}
    assert key not in changed.values() and len(set(changed.values())) == len(changed), changed


@pytest.mark.parametrize("what", ["variant name", "recipe lr", "recipe epochs", "loss", "image size", "batch size",
                                  "data option", "synthetic settings", "backbone width", "backbone weights"])
def test_everything_else_a_run_reads_changes_the_key(what):
    variant, data, backbone = _variant(), DATA, BACKBONE
    if what == "variant name":
        variant = _variant(name="toy2")
    elif what == "recipe lr":
        variant = _variant(train=dataclasses.replace(TRAIN, lr=0.01))
    elif what == "recipe epochs":
        variant = _variant(train=dataclasses.replace(TRAIN, epochs=3))
    elif what == "loss":
        variant = _variant(loss=toy_model)
    elif what == "image size":
        data = dataclasses.replace(DATA, image_size=96)
    elif what == "batch size":
        data = dataclasses.replace(DATA, batch_size=16)
    elif what == "data option":
        data = dataclasses.replace(DATA, options=(("crop", "object"),))
    elif what == "synthetic settings":
        data = dataclasses.replace(DATA, synthetic=(("num_classes", 12),))
    elif what == "backbone width":
        backbone = dataclasses.replace(BACKBONE, width=0.25)
    else:
        backbone = dataclasses.replace(BACKBONE, pretrained="imagenet")
    assert _key(variant, data, backbone) != _key(_variant())


def _cra_smra_variant(**changes) -> Variant:
    from fgvc_lib.models.cra_smra import CRASMRAConfig, build_cra_smra, cra_smra_loss

    config = CRASMRAConfig(**changes)   # the loss is built from the same config, as the paper's plan does
    return Variant("cram_smram", functools.partial(build_cra_smra, config=config), cra_smra_loss(config), TRAIN,
                   (0,))


def _ssanet_variant(**changes) -> Variant:
    from fgvc_lib.models.ssanet import SSANetConfig, build_ssanet, ssanet_loss

    config = SSANetConfig(**changes)
    return Variant("plus-ad", functools.partial(build_ssanet, config=config), ssanet_loss(config), TRAIN, (0,))


def _clan_variant(**changes) -> Variant:
    from fgvc_lib.models.baseline import cross_entropy_loss
    from fgvc_lib.models.clan import CLANConfig, build_clan

    return Variant("clan", functools.partial(build_clan, config=CLANConfig(**changes)), cross_entropy_loss, TRAIN,
                   (0,))


@pytest.mark.parametrize("build,unread,read", [
    (_cra_smra_variant, {"momentum": 0.5, "weight_decay": 0.0, "scheduler": "step", "optimizer": "adam"},
     {"omega": 0.7, "gamma": 2.0, "lr": 1e-3, "head_lr": "backbone", "div_form": "mcloss"}),
    (_ssanet_variant, {"backbone": "resnet50", "image_size": 224, "hflip": False, "lr": 0.1, "epochs": 5,
                       "batch_size": 4, "scheduler": "cosine", "plateau_factor": 0.5, "plateau_patience": 1,
                       "momentum": 0.5},
     {"gamma": 1.0, "head_hidden": 512, "freeze_backbone": False, "kl_temperature": 2.0, "variant": "alpha"}),
    (_clan_variant, {"image_size": 224, "batch_size": 8, "epochs": 3, "lr": 0.1, "momentum": 0.5, "weight_decay": 0.0,
                     "lr_step_vgg": 5, "lr_gamma_vgg": 0.5, "lr_step_resnet": 3, "lr_gamma_resnet": 0.5},
     {"use_clsa": False, "clsa_pooling": "avg", "relation": "gaussian", "combine": "logits"}),
], ids=["CRASMRAConfig", "SSANetConfig", "CLANConfig"])
def test_real_configs_key_only_what_their_model_and_loss_read(build, unread, read):
    key = _key(build())
    for name, value in unread.items():
        assert _key(build(**{name: value})) == key, f"{name} is read by no run: it must keep the key"
    for name, value in read.items():
        assert _key(build(**{name: value})) != key, f"{name} is read by the model or loss: it must change the key"
