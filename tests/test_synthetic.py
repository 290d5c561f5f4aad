"""Tests of the embedded synthetic fine-grained dataset generator (fgvc_lib.data.synthetic)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fgvc_lib.data import synthetic as syn
from fgvc_lib.data.synthetic import (ATTRIBUTES, PART_NAMES, SyntheticConfig, choose_classes,
                                     ensure_synthetic, generate_synthetic, is_complete, render_image)

REPO = Path(__file__).resolve().parents[1]
TINY = SyntheticConfig(num_classes=5, train_per_class=3, test_per_class=2, image_size=64, seed=3)


def _hash_tree(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("syn") / "tiny", TINY)


# -- determinism ---------------------------------------------------------------------------------

def test_same_config_gives_byte_identical_files(tmp_path, tiny_root):
    again = generate_synthetic(tmp_path / "again", TINY)
    first, second = _hash_tree(tiny_root), _hash_tree(again)
    assert len(first) == TINY.num_images + 9  # images + 8 text files + synthetic.json
    assert first == second
    other = generate_synthetic(tmp_path / "other_seed", TINY.replace(seed=4))
    differing = [k for k, v in _hash_tree(other).items() if first.get(k) != v]
    assert len(differing) > TINY.num_images // 2


def test_png_has_no_metadata_chunks(tiny_root):
    png = next((tiny_root / "images").rglob("*.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt"):
        assert chunk not in png


def test_classes_are_a_prefix_for_more_classes():
    few = choose_classes(SyntheticConfig(num_classes=6, seed=11))
    many = choose_classes(SyntheticConfig(num_classes=30, seed=11))
    assert many[:6] == few
    assert len({tuple(sorted(c.items())) for c in many}) == 30
    assert choose_classes(SyntheticConfig(num_classes=6, seed=12)) != few


# -- layout --------------------------------------------------------------------------------------

def test_layout_files_ids_and_counts(tiny_root):
    root = tiny_root
    for rel in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt",
                "bounding_boxes.txt", "parts/parts.txt", "parts/part_locs.txt",
                "parts/part_boxes.txt", "synthetic.json"):
        assert (root / rel).is_file(), rel
    n, size = TINY.num_images, TINY.image_size
    images = _rows(root / "images.txt")
    assert [int(r[0]) for r in images] == list(range(1, n + 1))
    labels = {int(r[0]): int(r[1]) for r in _rows(root / "image_class_labels.txt")}
    split = {int(r[0]): int(r[1]) for r in _rows(root / "train_test_split.txt")}
    classes = {int(r[0]): r[1] for r in _rows(root / "classes.txt")}
    assert sorted(labels) == sorted(split) == list(range(1, n + 1))
    assert sorted(classes) == list(range(1, TINY.num_classes + 1))
    for cid, name in classes.items():
        assert name.startswith(f"{cid:03d}.")
    counts = Counter((labels[i], split[i]) for i in labels)
    for cid in classes:
        assert counts[(cid, 1)] == TINY.train_per_class
        assert counts[(cid, 0)] == TINY.test_per_class
    for image_id, rel in images:
        assert rel.split("/")[0] == classes[labels[int(image_id)]]
        with Image.open(root / "images" / rel) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (size, size)
    assert [r[1] for r in _rows(root / "parts" / "parts.txt")] == list(PART_NAMES)
    assert len(list((root / "images").rglob("*.png"))) == n


def test_boxes_and_parts_are_inside_the_image_and_bird(tiny_root):
    root, size = tiny_root, TINY.image_size
    boxes = {int(r[0]): [float(v) for v in r[1:]] for r in _rows(root / "bounding_boxes.txt")}
    assert len(boxes) == TINY.num_images
    for x, y, w, h in boxes.values():
        assert 0 <= x and 0 <= y and w > 0.2 * size and h > 0.1 * size
        assert x + w <= size + 1e-6 and y + h <= size + 1e-6
    locs = _rows(root / "parts" / "part_locs.txt")
    pboxes = {(int(r[0]), int(r[1])): [float(v) for v in r[2:]]
              for r in _rows(root / "parts" / "part_boxes.txt")}
    assert len(locs) == len(pboxes) == TINY.num_images * len(PART_NAMES)
    inside = 0
    for image_id, part_id, x, y, visible in locs:
        key = (int(image_id), int(part_id))
        x, y = float(x), float(y)
        assert visible == "1"
        assert 0 <= x <= size and 0 <= y <= size
        bx, by, bw, bh = pboxes[key]
        assert bw >= 1.5 and bh >= 1.5, f"part box too small to see: {key} {pboxes[key]}"
        assert bx - 0.5 <= x <= bx + bw + 0.5 and by - 0.5 <= y <= by + bh + 0.5  # centre in its box
        X, Y, W, H = boxes[key[0]]
        inside += (bx >= X - 1 and by >= Y - 1 and bx + bw <= X + W + 1 and by + bh <= Y + H + 1)
    assert inside >= 0.95 * len(locs)


# -- discriminative parts ------------------------------------------------------------------------

def test_discriminative_parts_match_attributes(tiny_root):
    meta = json.loads((tiny_root / "synthetic.json").read_text())
    assert SyntheticConfig.from_dict(meta["config"]) == TINY
    classes = meta["classes"]
    assert [c["class_id"] for c in classes] == list(range(1, TINY.num_classes + 1))
    for c in classes:
        assert c["nearest_distance"] == 1  # every class has a neighbour differing in one attribute
        assert c["nearest_classes"] and c["discriminative_parts"]
        named = set()
        for near in c["nearest_classes"]:
            other = classes[near["class_id"] - 1]
            diff = [a for a in ATTRIBUTES if c["attributes"][a] != other["attributes"][a]]
            assert diff == near["differing_attributes"] and len(diff) == 1
            assert near["differing_parts"] == [ATTRIBUTES[diff[0]][0]]
            named.update(near["differing_parts"])
        assert set(c["discriminative_parts"]) == named
    # with enough classes, every part that carries an attribute tells some classes apart
    many = syn.class_relations(choose_classes(SyntheticConfig(num_classes=12)))
    used = {p for r in many for p in r["discriminative_parts"]}
    assert used == {p for p, _ in ATTRIBUTES.values()}


@pytest.mark.parametrize("image_size", [64, 128])
def test_neighbours_differ_only_inside_the_named_part(image_size):
    """Render one pose for two classes one attribute apart: every changed pixel lies in that part."""
    cfg = SyntheticConfig(image_size=image_size, seed=5)
    base = {a: vals[0] for a, (_, vals) in ATTRIBUTES.items()}
    base["eye_ring"] = "white"
    for attr, (part, values) in ATTRIBUTES.items():
        for value in values:
            if value == base[attr]:
                continue
            other = dict(base, **{attr: value})
            for image_seed in (1, 2, 3):
                img_a, _, _, boxes_a = render_image(cfg, base, image_seed)
                img_b, _, _, boxes_b = render_image(cfg, other, image_seed)
                a = np.asarray(img_a, dtype=np.int16)
                b = np.asarray(img_b, dtype=np.int16)
                changed = np.abs(a - b).max(axis=2) > 40
                ys, xs = np.nonzero(changed)
                # clearly visible: a real patch of strongly changed pixels, growing with image size
                assert len(xs) >= 6 * (image_size / 64) ** 2, (attr, value, len(xs))
                pad = 2
                x0 = min(boxes_a[part][0], boxes_b[part][0]) - pad
                y0 = min(boxes_a[part][1], boxes_b[part][1]) - pad
                x1 = max(boxes_a[part][0] + boxes_a[part][2], boxes_b[part][0] + boxes_b[part][2]) + pad
                y1 = max(boxes_a[part][1] + boxes_a[part][3], boxes_b[part][1] + boxes_b[part][3]) + pad
                outside = ~((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1))
                assert outside.sum() == 0, (attr, value, int(outside.sum()))


def test_global_colour_histogram_is_near_chance(tmp_path):
    """A nearest-class-mean classifier on RGB histograms must stay far from solving the task."""
    cfg = SyntheticConfig(num_classes=6, train_per_class=25, test_per_class=15, image_size=64, seed=2)
    root = generate_synthetic(tmp_path / "hist", cfg)
    rel = {r[0]: r[1] for r in _rows(root / "images.txt")}
    label = {r[0]: int(r[1]) - 1 for r in _rows(root / "image_class_labels.txt")}
    split = {r[0]: int(r[1]) for r in _rows(root / "train_test_split.txt")}

    def hist(i):
        q = np.asarray(Image.open(root / "images" / rel[i])) // 64
        h = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64)
        return h / h.sum()

    feats = {i: hist(i) for i in rel}
    means = np.stack([np.mean([feats[i] for i in rel if split[i] and label[i] == c], axis=0)
                      for c in range(cfg.num_classes)])
    test = [i for i in rel if not split[i]]
    pred = [int(np.argmin(((means - feats[i]) ** 2).sum(1))) for i in test]
    acc = np.mean([p == label[i] for p, i in zip(pred, test)])
    assert acc < 0.4, f"colour histogram accuracy {acc:.2f} (chance 0.17): classes leak global colour"


# -- API, CLI, errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(num_classes=1), "at least 2 classes"),
    (dict(image_size=16), "image_size"),
    (dict(train_per_class=-1), "must be >= 0"),
    (dict(test_per_class=-3), "must be >= 0"),
    (dict(train_per_class=0, test_per_class=0), "no images"),
    (dict(num_classes=4, class_attributes=("crest",)), "exceeds the 3 attribute combinations"),
    (dict(class_attributes=("beak_size",)), "subset of"),
    (dict(scale_range=(0.9, 0.5)), "scale_range"),
    (dict(rotation=-5), "rotation"),
    (dict(clutter=-1), "clutter"),
    (dict(part_scale=0), "part_scale"),
    (dict(flip_prob=1.5), "flip_prob"),
    (dict(num_classes=2.5), "integer"),
])
def test_bad_parameters_raise_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**changes)


def test_config_round_trips_through_json():
    cfg = SyntheticConfig(num_classes=7, scale_range=[0.5, 0.6], class_attributes=["crest", "eye_ring"])
    assert SyntheticConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.short_hash() == SyntheticConfig.from_dict(cfg.to_dict()).short_hash()
    assert cfg.short_hash() != cfg.replace(seed=1).short_hash()
    with pytest.raises(ValueError, match="unknown fields"):
        SyntheticConfig.from_dict({"num_classes": 3, "colour": 1})


def test_generate_refuses_to_clobber(tmp_path, tiny_root):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic(tmp_path / "mine", TINY)
    with pytest.raises(FileExistsError, match="does not look like a synthetic dataset"):
        generate_synthetic(tmp_path / "mine", TINY, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.slow  # starts a Python interpreter that imports torch (fgvc_lib.data imports it)
def test_cli_generates_and_reports_bad_parameters(tmp_path, capsys):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "fgvc_lib.data.synthetic", "--out", str(out), "--num-classes", "3",
           "--seed", "1", "--image-size", "48", "--train-per-class", "2", "--test-per-class", "1",
           "--clutter", "3", "--rotation", "10", "--part-scale", "1.2", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    cfg = SyntheticConfig(num_classes=3, seed=1, image_size=48, train_per_class=2, test_per_class=1,
                          clutter=3, rotation=10.0, part_scale=1.2)
    assert is_complete(out, cfg)
    assert done.stdout == ""  # --quiet
    # the same entry point in-process (a second interpreter start would cost seconds)
    assert syn.main(cmd[3:-1]) == 0
    assert "already holds this dataset" in capsys.readouterr().out
    assert syn.main(cmd[3:] + ["--num-classes", "1"]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    assert syn.main(cmd[3:] + ["--seed", "2"]) == 2  # another config at the same place
    assert "different config" in capsys.readouterr().err


def test_generation_speed_lower_bound(tmp_path):
    """The generator must stay fast (measured ~1000 images/s on one core; bound is generous)."""
    cfg = SyntheticConfig(num_classes=6, train_per_class=20, test_per_class=5, image_size=128)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    generate_synthetic(tmp_path / "speed", cfg)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    rate = cfg.num_images / min(cpu, wall)  # CPU time: robust to a loaded machine
    assert rate >= 100, f"only {rate:.0f} images/s (cpu {cpu:.2f}s, wall {wall:.2f}s)"


# -- atomicity and caching -----------------------------------------------------------------------

def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = syn.render_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("simulated kill")
        return original(*args, **kwargs)

    monkeypatch.setattr(syn, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(tmp_path / "ds", TINY)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temp_dir_is_not_a_dataset(tmp_path, tiny_root):
    target = tmp_path / "ds"
    leftover = tmp_path / ".ds.tmp-999-deadbeef"  # what a killed run leaves behind
    (leftover / "images").mkdir(parents=True)
    (leftover / "images.txt").write_text("1 a/b.png\n")
    assert not is_complete(target, TINY)
    assert ensure_synthetic(target, TINY) == target.absolute()
    assert is_complete(target, TINY)
    # a folder that lost its images is not complete either, and ensure refuses to clobber it
    broken = tmp_path / "broken"
    generate_synthetic(broken, TINY)
    next((broken / "images").rglob("*.png")).unlink()
    assert not is_complete(broken, TINY)
    with pytest.raises(FileExistsError, match="delete it"):
        ensure_synthetic(broken, TINY)
    # a complete dataset of another config is not reused for this one
    assert not is_complete(tiny_root, TINY.replace(seed=99))
    with pytest.raises(FileExistsError, match="different config"):
        ensure_synthetic(tiny_root, TINY.replace(seed=99))


def test_losing_a_rename_race_returns_the_winner(tmp_path, monkeypatch):
    target = tmp_path / "race"
    original = syn._write_dataset

    def write_then_lose(out, cfg):
        original(out, cfg)
        monkeypatch.setattr(syn, "_write_dataset", original)
        generate_synthetic(target, cfg)  # a concurrent generator finishes first

    monkeypatch.setattr(syn, "_write_dataset", write_then_lose)
    assert generate_synthetic(target, TINY) == target.absolute()
    assert is_complete(target, TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["race"]  # our temp dir was removed


def test_concurrent_ensure_calls_both_succeed(tmp_path):
    target, results, errors = tmp_path / "shared", [], []

    def run():
        try:
            results.append(ensure_synthetic(target, TINY))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [target.absolute()] * 2
    assert is_complete(target, TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]


def test_ensure_uses_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    path = ensure_synthetic(None, TINY)
    assert path == tmp_path / "cache" / "synthetic" / TINY.short_hash()
    assert is_complete(path, TINY)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a complete cached dataset was regenerated")

    monkeypatch.setattr(syn, "_write_dataset", must_not_run)
    assert ensure_synthetic(None, TINY) == path
    assert ensure_synthetic(path, TINY) == path


# -- reader --------------------------------------------------------------------------------------

def test_reader_exposes_cub_api_and_ground_truth(tiny_root):
    from fgvc_lib.data.cub import CUB200
    from fgvc_lib.data.synthetic import SyntheticFGVC

    train = SyntheticFGVC(tiny_root, "train")
    test = SyntheticFGVC(tiny_root, "test")
    assert isinstance(train, CUB200)
    assert len(train) == TINY.num_classes * TINY.train_per_class
    assert len(test) == TINY.num_classes * TINY.test_per_class
    assert Counter(train.targets) == {c: TINY.train_per_class for c in range(TINY.num_classes)}
    assert train.part_names == list(PART_NAMES)
    assert train.config == TINY and train.meta["config_hash"] == TINY.short_hash()
    image, label = train[0]
    assert image.size == (TINY.image_size, TINY.image_size) and label == 0
    ann = test.annotation(len(test) - 1)
    assert ann["image_size"] == (TINY.image_size, TINY.image_size)
    assert set(ann["parts"]) == set(PART_NAMES) == set(ann["part_boxes"])
    x, y, w, h = ann["box"]
    assert 0 <= x and x + w <= TINY.image_size + 1e-6
    for label in range(TINY.num_classes):
        assert train.discriminative_parts(label) == train.meta["classes"][label]["discriminative_parts"]
        for other in train.nearest_classes(label):
            diff = [a for a, v in train.class_attributes(label).items()
                    if train.class_attributes(other)[a] != v]
            assert ATTRIBUTES[diff[0]][0] in train.discriminative_parts(label)
    with pytest.raises(IndexError, match="out of range"):
        train.discriminative_parts(TINY.num_classes)


def test_reader_explains_a_missing_dataset(tmp_path):
    from fgvc_lib.data.synthetic import SyntheticFGVC

    with pytest.raises(FileNotFoundError, match="ensure_synthetic"):
        SyntheticFGVC(tmp_path, "train")


# -- build_dataset on a folder written elsewhere (settings read from synthetic.json) --------------

# The settings of the README's command line, shrunk so the test is fast; every size differs from
# SyntheticConfig()'s defaults, which build_dataset used to assume.
CLI_ARGS = ["--num-classes", "4", "--seed", "0", "--image-size", "64", "--train-per-class", "3",
            "--test-per-class", "2", "--quiet"]
CLI_CONFIG = SyntheticConfig(num_classes=4, seed=0, image_size=64, train_per_class=3, test_per_class=2)


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "synth"
    assert syn.main(["--out", str(out)] + CLI_ARGS) == 0  # the command-line entry point, in-process
    return out


def test_build_dataset_reads_a_cli_dataset_with_its_own_settings(cli_root):
    from fgvc_lib.data import build_dataset
    from fgvc_lib.data.cub import CUB200
    from fgvc_lib.data.synthetic import SyntheticFGVC

    assert CLI_CONFIG != SyntheticConfig()
    train = build_dataset("synthetic", cli_root, "train")
    test = build_dataset("synthetic", str(cli_root), "test")
    assert isinstance(train, SyntheticFGVC) and train.config == CLI_CONFIG
    assert len(train.classes) == 4 and len(train) == 4 * 3 and len(test) == 4 * 2
    assert Counter(train.targets) == {c: 3 for c in range(4)}
    assert train.load_image(0).size == (64, 64)
    assert len(CUB200(cli_root, "train")) == len(train)  # the CUB reader agrees
    assert syn.load_config(cli_root) == CLI_CONFIG
    # an explicit config keeps its meaning: the same one is accepted, another one is refused
    assert len(build_dataset("synthetic", cli_root, "train", config=CLI_CONFIG)) == 12
    with pytest.raises(FileExistsError, match="different config"):
        build_dataset("synthetic", cli_root, "train", config=CLI_CONFIG.replace(seed=1))


def _copy_dataset(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def _break_json(root: Path) -> str:
    (root / "synthetic.json").write_text("{not json", encoding="utf-8")
    return "synthetic.json cannot be read as JSON"


def _old_version(root: Path) -> str:
    meta = json.loads((root / "synthetic.json").read_text())
    meta["generator_version"] = syn.GENERATOR_VERSION - 1
    (root / "synthetic.json").write_text(json.dumps(meta))
    return f"generator version {syn.GENERATOR_VERSION - 1}"


def _drop_an_image(root: Path) -> str:
    next((root / "images").rglob("*.png")).unlink()
    return "incomplete: 1 of the 20 images it lists are missing"


def _drop_json(root: Path) -> str:
    (root / "synthetic.json").unlink()
    return "has no synthetic.json"


def _bad_config(root: Path) -> str:
    meta = json.loads((root / "synthetic.json").read_text())
    meta["config"]["num_classes"] = 1
    (root / "synthetic.json").write_text(json.dumps(meta))
    return "config in its synthetic.json is invalid"


@pytest.mark.parametrize("damage", [_break_json, _old_version, _drop_an_image, _drop_json, _bad_config])
def test_build_dataset_explains_a_folder_without_a_usable_dataset(tmp_path, cli_root, damage):
    from fgvc_lib.data import build_dataset

    root = _copy_dataset(cli_root, tmp_path / "synth")
    problem = damage(root)
    with pytest.raises(syn.SyntheticDatasetError) as info:
        build_dataset("synthetic", root, "train")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(root) in message and "does not hold a usable synthetic dataset" in message
    assert problem in message
    assert "python -m fgvc_lib.data.synthetic --out" in message


def test_suggested_command_repairs_an_incomplete_dataset(tmp_path, cli_root):
    import shlex

    from fgvc_lib.data import build_dataset

    root = _copy_dataset(cli_root, tmp_path / "synth")
    _drop_an_image(root)
    with pytest.raises(syn.SyntheticDatasetError) as info:
        build_dataset("synthetic", root, "train")
    command = str(info.value).split("`")[1]  # the command quoted in the message
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "fgvc_lib.data.synthetic"] and "--overwrite" in words
    assert syn.main(words[3:] + ["--quiet"]) == 0
    assert len(build_dataset("synthetic", root, "train")) == 12


def test_missing_or_foreign_folders_are_explained(tmp_path):
    from fgvc_lib.data import build_dataset

    with pytest.raises(syn.SyntheticDatasetError, match="the folder does not exist.*config=SyntheticConfig"):
        build_dataset("synthetic", tmp_path / "nowhere", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(syn.SyntheticDatasetError, match="has no synthetic.json"):
        build_dataset("synthetic", tmp_path / "empty", "train")
    assert list((tmp_path / "empty").iterdir()) == []  # nothing was generated behind the caller's back
    (tmp_path / "cub").mkdir()
    (tmp_path / "cub" / "images.txt").write_text("1 a/b.jpg\n")
    with pytest.raises(syn.SyntheticDatasetError, match="read it as dataset 'cub'"):
        build_dataset("synthetic", tmp_path / "cub", "train")


def test_cli_command_reproduces_every_setting(tmp_path):
    import shlex

    config = SyntheticConfig(num_classes=3, train_per_class=1, test_per_class=1, image_size=48, seed=5,
                             scale_range=(0.6, 0.9), rotation=5.5, clutter=2, supersample=1,
                             class_attributes=("beak_shape", "eye_ring"), part_colour_prob=0.25)
    command = syn.cli_command(tmp_path / "out dir", config)
    words = shlex.split(command)
    assert words[:5] == ["python", "-m", "fgvc_lib.data.synthetic", "--out", str(tmp_path / "out dir")]
    assert "--part-scale" not in words  # default settings are left out
    assert syn.main(words[3:] + ["--quiet"]) == 0
    assert syn.load_config(tmp_path / "out dir") == config


def test_build_dataset_without_root_still_uses_the_cache(tmp_path, monkeypatch):
    from fgvc_lib.data import build_dataset

    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    ds = build_dataset("synthetic", None, "test", config=TINY)
    assert len(ds) == TINY.num_classes * TINY.test_per_class
    assert is_complete(tmp_path / "cache" / "synthetic" / TINY.short_hash(), TINY)
