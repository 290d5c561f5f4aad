"""Run profiles: smoke / cpu / paper (docs/DESIGN.md, Profiles).

A profile sets the data size, image size, epochs, backbone width and number of seeds. It never
changes the method: each paper's config keeps its own hyper-parameters, and the notebook rescales
only the schedule length to the profile's epochs (:func:`scale_epochs`).

* ``smoke``: a tiny synthetic set and a few batches, so every notebook cell runs in about a minute
  (nbval, CI).
* ``cpu`` (default): the embedded synthetic set, slim backbones with the embedded synthetic
  pretraining, several seeds (the README's profile table gives each notebook's measured time on 2 CPU
  cores). VGG gets batch norm after every convolution (torchvision's VGG-BN layout): a slim plain VGG-16 did not learn from
  scratch in our runs (stuck at chance on the synthetic task) and fine-tuned unstably at the papers'
  learning rates, so the CPU profiles trade this architectural detail for a backbone that trains.
* ``paper``: a real dataset under ``data_root``, full-width backbones with ImageNet weights, the
  paper's own recipe (GPU, hours).

The environment variable ``FGVC_PROFILE`` picks the profile when a notebook's ``profile`` parameter
is left at ``None`` (nbval runs the notebooks this way in the smoke profile).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

PROFILE_ENV = "FGVC_PROFILE"
DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str                      # default dataset name for build_dataset
    image_size: int                   # training and test resolution (square)
    width: float                      # backbone channel multiplier (1.0 = the paper's network)
    pretrained: Optional[str]         # "imagenet" | "synthetic" | None
    batch_norm: bool                  # VGG with batch norm (VGG-BN); ResNet/DenseNet have it anyway
    epochs: int
    batch_size: int
    seeds: Tuple[int, ...]
    max_batches: Optional[int] = None  # cap on batches per epoch and per evaluation
    synthetic: Dict[str, object] = field(default_factory=dict)  # SyntheticConfig overrides
    pretraining: Dict[str, object] = field(default_factory=dict)  # synthetic pretraining overrides
    cam_images: int = 6               # images per CAM grid
    threads: Optional[int] = None     # torch intra-op threads of one training run (None: torch's default).
    # The slim networks of the smoke and cpu profiles train on one thread: their convolutions are too
    # small to gain from a second one, and on a shared machine two threads wait on each other
    # (measured: a CLAN training batch took 0.3 s with one thread and 1.1-1.6 s with two under load).
    # Several runs then train side by side, one per core (fgvc_lib.study.executors).
    description: str = ""

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)

    def uses_batch_norm(self, backbone: str) -> bool:
        """Whether ``backbone`` is built with this profile's added batch norm (VGG-BN; the other
        backbones have batch norm anyway)."""
        from .backbones import is_vgg   # lazily: profiles is read where torch is not needed

        return self.batch_norm and is_vgg(backbone)


# Difficulty of the synthetic birds in the CPU profiles, calibrated so that a slim VGG-16 lands
# between chance and saturation (notebook 00 measures it); see fgvc_lib.data.synthetic for each knob.
# The classes differ in the head's attributes alone (beak shape and colour, eye ring, crest; since 2026-12-05):
# with all six, a third of the classes told apart by the wing or the tail, the nearly label-free zoom oracle (a
# crop of the head) lost about 10 points to the whole image; with the head's alone it gained 18.9 [6.8, 31.0]
# points on the validation split (5 seeds; 19.5 on the test split, which the first screen read:
# fgvc_lib.calibration, results/calibration). The embedded pretraining still draws its classes from every
# attribute (fgvc_lib.study.runner.TASK_KEYS).
CPU_RENDERING = dict(part_scale=1.5, scale_range=(0.7, 0.95), rotation=20.0, clutter=8, distractor_parts=0.2,
                     class_attributes=("beak_shape", "beak_colour", "eye_ring", "crest"))

PROFILES: Dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", dataset="synthetic", image_size=64, width=0.125, pretrained="synthetic", batch_norm=True,
        epochs=1, batch_size=16, seeds=(0,), max_batches=3,
        synthetic=dict(num_classes=6, train_per_class=8, test_per_class=4, image_size=64, seed=0, **CPU_RENDERING),
        pretraining=dict(epochs=1, num_classes=8, train_per_class=12, max_batches=4),
        cam_images=3, threads=1,
        description="every cell runs; numbers mean nothing"),
    "cpu": Profile(
        name="cpu", dataset="synthetic", image_size=96, width=0.125, pretrained="synthetic", batch_norm=True,
        epochs=8, batch_size=32, seeds=(0, 1, 2, 3, 4),
        # 100 test images per class (1,200): test images are free, and a paired difference's
        # test-set noise shrinks with their number (fgvc_lib.statistics). The birds are drawn at
        # 192 px and the networks see them at the profile's 96 px (or at a paper's own input size):
        # a crop of the bird then carries detail the whole image does not, as a zoom of a real
        # photograph does (the oracle crops of notebook 00 measured no gain when drawn at 96 px).
        # Generator seed 1 (its classes and images): the rendering was chosen on screens of seed 0's task, some of
        # which read its test split (fgvc_lib.calibration), so the notebooks measure on a draw nobody looked at.
        synthetic=dict(num_classes=12, train_per_class=60, test_per_class=100, image_size=192, seed=1,
                       **CPU_RENDERING),
        pretraining=dict(), threads=1,
        description="real training on the embedded synthetic set, slim backbones, 5 paired seeds"),
    "paper": Profile(
        name="paper", dataset="cub", image_size=448, width=1.0, pretrained="imagenet", batch_norm=False,
        epochs=0, batch_size=0, seeds=(0,),
        description="the paper's recipe on a real dataset (epochs/batch 0 = the paper's values)"),
}
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: Union[str, Profile, None] = None) -> Profile:
    """The named profile; ``None`` means ``$FGVC_PROFILE`` or ``cpu``; a :class:`Profile` is returned as it is (a
    named one changed, e.g. :func:`with_pretraining_seed`)."""
    if isinstance(name, Profile):
        return name
    if name is None or name == "":
        name = os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]


def with_pretraining_seed(profile: Profile, seed: int) -> Profile:
    """``profile`` with another draw of its embedded pretraining (:class:`fgvc_lib.pretraining.PretrainingConfig`'s
    ``seed``: its initialisation and data order). Every run of a notebook starts from the one pretraining, so
    a claim that holds under one draw and not another rests on that draw (issue 19; see
    :func:`fgvc_lib.replication.replicate`)."""
    if profile.pretrained != "synthetic":
        raise ValueError(f"profile {profile.name!r} has no embedded pretraining (pretrained={profile.pretrained!r}): "
                         f"there is no pretraining draw to change")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a pretraining seed is a whole number; got {seed!r}")
    from .pretraining import PretrainingConfig

    if seed == profile.pretraining.get("seed", PretrainingConfig().seed):
        return profile   # the profile's own draw: the same key, so its cached pretraining and runs are reused
    return profile.replace(pretraining={**profile.pretraining, "seed": seed})


def is_registered(profile: Profile) -> bool:
    """Whether ``profile`` is one of :data:`PROFILES` as declared (not a changed copy, e.g. another pretraining
    draw), i.e. whether its results may go to the profile's results folder."""
    return PROFILES.get(profile.name) == profile


def scale_epochs(paper_epochs: int, paper_value: int, epochs: int) -> int:
    """Rescale an epoch count of the paper's schedule (e.g. a step size) to a shorter run."""
    if paper_epochs <= 0:
        raise ValueError(f"paper_epochs must be positive; got {paper_epochs}")
    return max(1, round(paper_value * epochs / paper_epochs))
