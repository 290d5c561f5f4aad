"""Oracle crops (fgvc_lib.data.crops, the positive control's input) and the room table (fgvc_lib.room)."""
import numpy as np
import pytest

from fgvc_lib.data import build_dataset
from fgvc_lib.data.crops import square_crop, union_box, zoom_factors
from fgvc_lib.data.synthetic import SyntheticConfig, generate_synthetic
from fgvc_lib.room import room_table

TINY = SyntheticConfig(num_classes=4, train_per_class=2, test_per_class=3, image_size=64, seed=5)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate_synthetic(tmp_path_factory.mktemp("crops") / "tiny", TINY)


def test_union_box_and_square_crop_by_hand():
    assert union_box([(10, 20, 5, 5), (12, 18, 10, 3)]) == (10, 18, 12, 7)
    # a 20 x 10 box at (40, 50): square side 20 * 1.2 = 24 around the centre (50, 55)
    assert square_crop((40, 50, 20, 10), (200, 200)) == (38, 43, 62, 67)
    assert square_crop((0, 0, 20, 10), (200, 200)) == (0, 0, 22, 17)          # clipped at the border
    with pytest.raises(ValueError, match="outside the image"):
        square_crop((300, 300, 5, 5), (100, 100))
    with pytest.raises(ValueError, match="no box"):
        union_box([])


def test_dataset_crops_to_the_annotated_region(tiny_root):
    whole = build_dataset("synthetic", tiny_root, "test")
    bird = build_dataset("synthetic", tiny_root, "test", crop="object")
    parts = build_dataset("synthetic", tiny_root, "test", crop="parts")
    for index in range(len(whole)):
        note = whole.annotation(index)
        x, y, w, h = note["box"]
        left, top, right, bottom = square_crop(note["box"], note["image_size"])
        image = bird.load_image(index)
        assert image.size == (right - left, bottom - top)
        assert np.array_equal(np.asarray(image), np.asarray(whole.load_image(index))[top:bottom, left:right])
        boxes = [note["part_boxes"][p] for p in whole.discriminative_parts(whole.targets[index])]
        assert parts.load_image(index).size == tuple(np.subtract(square_crop(union_box(boxes), note["image_size"])[2:],
                                                                  square_crop(union_box(boxes), note["image_size"])[:2]))
        assert parts.load_image(index).size[0] < image.size[0]                 # parts are smaller than the bird
        assert bird.annotation(index) == note                                 # annotations: the whole image
    with pytest.raises(ValueError, match="unknown crop region 'head'"):
        build_dataset("synthetic", tiny_root, "test", crop="head")


def test_zoom_factors_are_the_image_side_over_the_crop_side(tiny_root):
    whole = build_dataset("synthetic", tiny_root, "test")
    for region, reader in (("object", build_dataset("synthetic", tiny_root, "test", crop="object")),
                           ("parts", build_dataset("synthetic", tiny_root, "test", crop="parts"))):
        expected = [max(whole.load_image(i).size) / max(reader.load_image(i).size) for i in range(len(whole))]
        assert zoom_factors(whole, region) == pytest.approx(expected)
        assert min(expected) >= 1.0
    with pytest.raises(ValueError, match="crop_bounds needs a region"):
        whole.crop_bounds(0)


def test_room_table_counts_cells_by_hand(tiny_root):
    test_set = build_dataset("synthetic", tiny_root, "test")
    table = room_table({"mid": 8, "top": 32}, test_set, 128).set_index("site")
    areas = []
    for index, label in enumerate(test_set.targets):
        note = test_set.annotation(index)
        scale = 128 / note["image_size"][0]
        areas += [note["part_boxes"][p][2] * note["part_boxes"][p][3] * scale * scale
                  for p in test_set.discriminative_parts(label)]
    assert table.loc["mid", "map"] == "16 x 16" and table.loc["top", "map"] == "4 x 4"
    assert table.loc["mid", "part_cells_median"] == pytest.approx(np.median(areas) / 64)
    assert table.loc["top", "part_cells_median"] == pytest.approx(np.median(areas) / 1024)
    assert table.loc["top", "parts_scored"] == len(areas)
    assert table.loc["mid", "room"] == ("yes" if np.median(areas) >= 64 else "no")
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        room_table({"bad": 0}, test_set, 128)
    patch = room_table({"patch": (8, 6)}, test_set, 128).set_index("site")   # a 6 x 6 map of part of the image
    assert patch.loc["patch", "map"] == "6 x 6"
    assert patch.loc["patch", "part_cells_median"] == pytest.approx(np.median(areas) / 64)


def test_notebook_00_declares_the_positive_control(monkeypatch, tmp_path):
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Accuracy, Study

    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = Study(synthetic_dataset.STUDY, profile="cpu")
    assert {name: dict(v.data).get("crop") for name, v in study.variants.items()} == {
        "baseline": None, "oracle-object": "object", "oracle-parts": "parts"}
    assert {v.seeds for v in study.variants.values()} == {tuple(study.settings.seeds)}   # paired seeds
    assert len(study.settings.seeds) >= 5
    claims, _ = synthetic_dataset.claims(study.settings)
    main = {c.text: c.pairs for c in claims if c.main}
    secondary = {c.text: c.pairs for c in claims if not c.main}
    assert main["positive control: oracle attention (discriminative-part crop) beats the whole image"] == (
        (Accuracy("baseline"), Accuracy("oracle-parts")),)
    assert secondary["positive control: oracle attention (bird crop) beats the whole image"] == (
        (Accuracy("baseline"), Accuracy("oracle-object")),)
    chance = [c for c in claims if c.text == "baseline CNN beats chance"][0].pairs[0][0]
    assert chance.value == pytest.approx(100 / 12)                       # the cpu profile's 12 classes
    # the oracle variants train under their own run keys (their data differs), the baseline's is unchanged
    keys = {dataset_job[1].run_dir.split("/")[-2] for dataset_job in study.jobs()}
    assert len(keys) == 3
