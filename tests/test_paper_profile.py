"""The paper profile end to end (docs/DESIGN.md, Tests): every notebook, run headlessly by papermill with
``profile="paper"``, on a tiny CUB-200-2011 fixture in the official layout, at full width, with
ImageNet-format weight files (random values) in a temporary TORCH_HOME. The runs train where the
project puts them: on CUDA when a GPU is present, on the CPU otherwise (the device follows
``torch.cuda.is_available()``, nothing forces either); each notebook's test prints the device its runs
trained on, read from their checkpoints, and asserts it is that one. Nothing may be downloaded: the
test points every proxy at a closed local port (a download attempt fails at once instead of fetching
500 MB), and checks afterwards that the hub cache holds exactly the files placed in it.

The fixtures are built once per session (tests/fixtures_datasets.py ``make_cub_photos``, and
tests/paper_fixtures.py for the weight files); each notebook is its own test.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixtures_datasets import make_cub_photos  # noqa: E402
from paper_fixtures import (  # noqa: E402
    files_under,
    imagenet_file_name,
    imagenet_format_state,
    profiles_in,
    result_csvs,
    result_folders,
    write_imagenet_file,
)

from fgvc_lib import reproduce  # noqa: E402

PROFILE = "paper"
NOTEBOOKS = reproduce.available_notebooks()
# The smallest run each notebook can make: one epoch, one seed, two images a batch (the least batch
# norm accepts), 64 px (full-width VGG-16 needs 32; 64 leaves conv4/conv5 maps of 8x8 and 4x4 for
# the attention modules and Grad-CAM). Only the parameters a notebook declares are passed.
PARAMETERS = {
    "profile": PROFILE,
    "dataset": "cub",
    "epochs": 1,
    "batch_size": 2,
    "image_size": 64,
    "seeds": "0",
    "ablation_seeds": 1,    # 03_clan: the Tables 1-3 ablation models on one seed
    "ablation_epochs": 1,   # 03_clan: and for one epoch
    "patch_size": 32,       # 04_recurrent_attention: half the image, as the CPU profiles (paper: 224 of 448)
}
# Any HTTP(S) request from the kernel goes to this closed port and fails at once.
NO_NETWORK_PROXY = "http://127.0.0.1:9"


def declared_default(notebook: str, parameter: str):
    """The default value of ``parameter`` in ``notebook``'s parameters cell (None if not declared)."""
    return reproduce.declared_defaults(reproduce.NOTEBOOK_DIR / f"{notebook}.ipynb").get(parameter)


def paper_backbones() -> list:
    """The backbones the notebooks train at full width in the paper profile: their ``backbone``
    defaults, since this test passes no ``backbone``, and VGG-16, the papers' backbone, which a
    notebook whose default is "" (the paper's backbone) resolves to. A backbone missed here makes
    the run stop at once on the missing file (downloads fail), naming it."""
    names = {declared_default(nb, "backbone") for nb in NOTEBOOKS} | {"vgg16"}
    if "01_cra_cnn" in NOTEBOOKS:
        names.add("resnet50")   # 01's default "" is the paper's ResNet-50 in the paper profile
    if "04_recurrent_attention" in NOTEBOOKS:
        names.add("vgg19")      # 04's default "": the paper's VGG-19, for both streams
    return sorted(n for n in names if n)


# --------------------------------------------------------------------------- session fixtures


@pytest.fixture(scope="session")
def paper_cub(tmp_path_factory):
    """3 classes x (4 train + 2 test) JPEGs of 64-96 px in the official CUB-200-2011 layout."""
    return make_cub_photos(tmp_path_factory.mktemp("paper-data"), num_classes=3, train_per_class=4,
                           test_per_class=2)


@pytest.fixture(scope="session")
def paper_torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds an ImageNet-format file for every paper backbone.

    Returns ``(torch_home, {relative path: size})`` of the files placed there."""
    from fgvc_lib.profiles import get_profile

    home = tmp_path_factory.mktemp("torch-home")
    batch_norm = get_profile(PROFILE).batch_norm
    for name in paper_backbones():
        write_imagenet_file(home, name, batch_norm=batch_norm and name.startswith("vgg"))
    return home, files_under(home)


def isolate(monkeypatch, tmp_path: Path, torch_home: Path) -> dict:
    """The environment of one notebook run (inherited by the papermill kernel): every output and
    cache in ``tmp_path``, weights from ``torch_home``, no network. The GPUs stay as they are: the
    runs train on CUDA where there is one (:func:`expected_device`)."""
    env = {
        "TORCH_HOME": str(torch_home),
        "FGVC_RESULTS_DIR": str(tmp_path / "results"),
        "FGVC_RUNS_DIR": str(tmp_path / "runs"),
        "FGVC_CACHE_DIR": str(tmp_path / "cache"),
        "FGVC_PROFILE": PROFILE,
        "MPLBACKEND": "Agg",
    }
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[var] = NO_NETWORK_PROXY
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    for var in ("NO_PROXY", "no_proxy"):  # a proxy exemption would let a download through
        monkeypatch.delenv(var, raising=False)
    return env


def expected_device() -> str:
    """Where the project trains a run here: ``fgvc_lib.engine.resolve_device("auto")``, i.e. CUDA when
    ``torch.cuda.is_available()``, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def checkpoint_devices(runs_dir: Path) -> dict:
    """``{run folder: device types}`` of every run checkpoint (``last.pt``) under ``runs_dir``: where the
    tensors it holds were when the engine saved them (the model's and optimizer's, so the device the run
    trained on). Read from the storage locations in the file, so a CUDA checkpoint reads on a CPU too."""
    found = {}
    for path in sorted(Path(runs_dir).rglob("last.pt")):
        locations = set()

        def record(storage, location):
            locations.add(location.split(":")[0])
            return storage

        torch.load(path, map_location=record, weights_only=False)
        found[str(path.parent.relative_to(runs_dir))] = locations
    return found


# --------------------------------------------------------------------------- the fixtures themselves


def test_fixtures_are_what_the_paper_profile_reads(paper_cub, paper_torch_home, monkeypatch, tmp_path):
    """Cheap check first: a notebook failure below is then not the fixtures' fault."""
    from fgvc_lib.backbones import IMAGENET_WEIGHTS, build_backbone
    from fgvc_lib.data import CUB200

    train, test = CUB200(paper_cub["root"].parent, "train"), CUB200(paper_cub["root"].parent, "test")
    assert (len(train.classes), len(train), len(test)) == (3, 12, 6)
    assert sorted(set(train.targets)) == sorted(set(test.targets)) == [0, 1, 2]
    assert train.has_boxes and train.has_parts and not train.has_part_boxes
    assert all(64 <= side <= 96 for i in range(len(train)) for side in train.annotation(i)["image_size"])

    home, placed = paper_torch_home
    assert "vgg16" in paper_backbones()
    for name in paper_backbones():
        assert f"hub/checkpoints/{imagenet_file_name(name)}" in placed
        assert Path(IMAGENET_WEIGHTS[name].url).name == imagenet_file_name(name)
    isolate(monkeypatch, tmp_path, home)
    backbone = build_backbone("vgg16", pretrained="imagenet")
    expected = imagenet_format_state("vgg16")
    assert all(torch.equal(v, expected[k]) for k, v in backbone.net.state_dict().items())
    assert files_under(home) == placed


@pytest.mark.parametrize("name", [
    "vgg16", "vgg19", "resnet34", "resnet50", "resnet101",
    "densenet161",
])
def test_every_backbone_loads_its_imagenet_format_file(name, tmp_path, monkeypatch):
    """The backbones a notebook may be given (03: vgg16/resnet50/resnet101; 05: all six) read a file in
    torchvision's format from the hub cache, without a download."""
    from fgvc_lib.backbones import BACKBONE_NAMES, build_backbone

    assert name in BACKBONE_NAMES
    home = tmp_path / "torch-home"
    write_imagenet_file(home, name)
    placed = files_under(home)
    isolate(monkeypatch, tmp_path, home)
    backbone = build_backbone(name, pretrained="imagenet")
    expected = imagenet_format_state(name, legacy=False)   # DenseNet: the file's old names, renamed
    loaded = backbone.net.state_dict()
    assert loaded and set(loaded) <= set(expected)
    assert all(torch.equal(loaded[k], v) for k, v in expected.items() if k in loaded)
    assert files_under(home) == placed


# --------------------------------------------------------------------------- every notebook


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_paper_profile(name, paper_cub, paper_torch_home, tmp_path, monkeypatch):
    import papermill

    home, placed = paper_torch_home
    env = isolate(monkeypatch, tmp_path, home)
    source = reproduce.NOTEBOOK_DIR / f"{name}.ipynb"
    wanted = {**PARAMETERS, "data_root": str(paper_cub["root"].parent)}
    params = reproduce.notebook_parameters(source, wanted)
    executed = tmp_path / f"{name}.ipynb"
    failure = None
    try:
        papermill.execute_notebook(str(source), str(executed), parameters=params, kernel_name="python3",
                                   cwd=str(reproduce.NOTEBOOK_DIR), progress_bar=False)
    except papermill.PapermillExecutionError as err:  # its message holds the failing cell's traceback
        failure = f"{name} failed in the paper profile with {params}; executed copy: {executed}\n{err}"
    if failure:
        pytest.fail(failure, pytrace=False)

    devices = checkpoint_devices(Path(env["FGVC_RUNS_DIR"]))
    used = set().union(*devices.values()) if devices else set()
    print(f"{name}: {len(devices)} run(s) trained on {', '.join(sorted(used)) or 'nothing'} "
          f"(expected {expected_device()})")
    assert devices, f"{name} left no run checkpoint (last.pt) under {env['FGVC_RUNS_DIR']}"
    wrong = {run: found for run, found in devices.items() if found != {expected_device()}}
    assert not wrong, f"{name}: runs not trained on {expected_device()} alone: {wrong}"

    results = Path(env["FGVC_RESULTS_DIR"])
    folders = result_folders(results, name, PROFILE)
    assert folders, f"{name} wrote no results folder under {results}"
    csvs = result_csvs(results, name, PROFILE)
    profiles = {csv.name: profiles_in(csv) for csv in csvs}
    tagged = {n: p for n, p in profiles.items() if p is not None}
    assert any(p == {PROFILE} for p in tagged.values()), f"no results CSV of {name} says profile={PROFILE}: {profiles}"
    wrong = {n: p for n, p in tagged.items() if p != {PROFILE}}
    assert not wrong, f"{name} wrote tables of another profile: {wrong}"
    assert "claims.csv" in {csv.name for csv in csvs}, f"{name} wrote no claims.csv in {folders}"
    assert files_under(home) == placed, "something was downloaded into (or removed from) TORCH_HOME"
    # Full-width checkpoints take 0.5-1.6 GB a notebook and pytest keeps the last three sessions'
    # temporary folders: drop them once the run passed (results and the executed copy stay).
    for folder in (env["FGVC_RUNS_DIR"], env["FGVC_CACHE_DIR"]):
        shutil.rmtree(folder, ignore_errors=True)
