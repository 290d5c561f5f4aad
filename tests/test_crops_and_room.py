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
    with pytest.raises(ValueError, match="unknown crop region 'beak'"):
        build_dataset("synthetic", tiny_root, "test", crop="beak")


def test_zoom_factors_are_the_image_side_over_the_crop_side(tiny_root):
    whole = build_dataset("synthetic", tiny_root, "test")
    for region, reader in (("object", build_dataset("synthetic", tiny_root, "test", crop="object")),
                           ("parts", build_dataset("synthetic", tiny_root, "test", crop="parts"))):
        expected = [max(whole.load_image(i).size) / max(reader.load_image(i).size) for i in range(len(whole))]
        assert zoom_factors(whole, region) == pytest.approx(expected)
        assert min(expected) >= 1.0
    with pytest.raises(ValueError, match="crop_bounds needs a region"):
        whole.crop_bounds(0)


def test_zoom_crop_is_cut_from_the_image_at_the_networks_input_size(tiny_root):
    from PIL import Image

    whole = build_dataset("synthetic", tiny_root, "test")
    zoom = build_dataset("synthetic", tiny_root, "test", crop="parts", crop_input_size=32)
    for index in range(len(whole)):
        image = whole.load_image(index)                                     # 64 px
        left, top, right, bottom = whole.crop_bounds(index, "parts")
        # by hand: the bounds halved (64 -> 32 px), rounded outwards, on the image squashed to 32 px
        small = (left // 2, top // 2, -(-right // 2), -(-bottom // 2))
        expected = np.asarray(image.resize((32, 32), Image.Resampling.BILINEAR))[small[1]:small[3], small[0]:small[2]]
        assert np.array_equal(np.asarray(zoom.load_image(index)), expected)
    with pytest.raises(ValueError, match="crop_input_size needs a crop region"):
        build_dataset("synthetic", tiny_root, "test", crop_input_size=32)
    with pytest.raises(ValueError, match="positive number of pixels"):
        build_dataset("synthetic", tiny_root, "test", crop="parts", crop_input_size=0)


def test_mask_channel_marks_the_region_and_moves_with_the_image(tiny_root):
    import torch
    from PIL import Image

    from fgvc_lib.data.crops import with_mask_channel
    from fgvc_lib.data.transforms import build_transforms
    from fgvc_lib.masks import union_mask

    rgba = with_mask_channel(Image.new("RGB", (6, 5), (10, 20, 30)), [(1, 1, 2, 1), (4.5, 3, 1, 1)])
    expected = np.zeros((5, 6), dtype=np.uint8)
    expected[1, 1:3] = 255          # (1, 1, 2, 1): columns 1-2 of row 1
    expected[3, 4:6] = 255          # (4.5, 3, 1, 1): overlaps columns 4 and 5 of row 3
    assert np.array_equal(np.asarray(rgba)[..., 3], expected)
    assert np.array_equal(np.asarray(rgba)[..., :3], np.full((5, 6, 3), (10, 20, 30)))
    # through a transform that resizes (64 -> 32 px): the colours are exactly the image's own transform, outside
    # the mask too (PIL would blacken them if the mask rode along as alpha), and the mask is the region's
    whole = build_dataset("synthetic", tiny_root, "test")
    masked = build_dataset("synthetic", tiny_root, "test", mask="parts", transform=build_transforms(32, train=False))
    plain = build_transforms(32, train=False)
    for index in range(len(whole)):
        image, _ = masked[index]
        assert image.shape == (4, 32, 32)
        assert torch.equal(image[:3], plain(whole.load_image(index)))
        region = union_mask((64, 64), whole.region_boxes(index, "parts")).astype(np.float32)
        halved = torch.from_numpy(region.reshape(32, 2, 32, 2).mean(axis=(1, 3)))   # 2 x 2 average, by hand
        # PIL's antialiased bilinear filter spreads edges over a pixel more: same mass, edges differ by < 0.5
        assert abs(float(image[3].sum() - halved.sum())) <= 0.02 * float(halved.sum())
        assert float((image[3] - halved).abs().max()) < 0.5
    # a random flip moves the mask with the colours: same draws for both
    flipping = build_transforms(64, train=True, flip=True)
    for seed in range(6):
        torch.manual_seed(seed)
        colours_alone = flipping(whole.load_image(0))
        torch.manual_seed(seed)
        image = with_mask_channel(whole.load_image(0), [(0, 0, 8, 64)], flipping)
        assert torch.equal(image[:3], colours_alone)
        on_left = image[3, :, :8].min() == 1.0 and image[3, :, 8:].max() == 0.0
        on_right = image[3, :, -8:].min() == 1.0 and image[3, :, :-8].max() == 0.0
        flipped = not torch.equal(colours_alone, build_transforms(64, train=False)(whole.load_image(0)))
        assert (on_right if flipped else on_left)
    with pytest.raises(ValueError, match="cannot be combined with crop"):
        build_dataset("synthetic", tiny_root, "test", mask="parts", crop="object")


def test_label_free_regions_are_fixed_squares_around_keypoints(tiny_root):
    from fgvc_lib.data.crops import HEAD_PARTS, KEYPOINT_SIDE

    whole = build_dataset("synthetic", tiny_root, "test")
    defining = sorted({p for label in range(len(whole.classes)) for p in whole.discriminative_parts(label)})
    assert sorted(whole.defining_parts()) == defining
    for index in range(len(whole)):
        note = whole.annotation(index)
        side = KEYPOINT_SIDE * 64                                            # 64-px images: 8 px squares
        for region, names in (("keypoints", defining), ("head", HEAD_PARTS)):
            expected = [(note["parts"][p][0] - side / 2, note["parts"][p][1] - side / 2, side, side)
                        for p in names if p in note["parts"]] or [note["box"]]
            assert whole.region_boxes(index, region) == expected
    with pytest.raises(ValueError, match="region_boxes needs a region"):
        whole.region_boxes(0, None)


def test_the_head_box_mask_is_the_square_the_head_crop_cuts(tiny_root):
    """"head-box": one box, the head crop's square (the zoom oracle's region), by hand from the head's squares:
    their union, squared around its centre, grown by CROP_MARGIN of its side on each side, clipped to the image."""
    from fgvc_lib.data.crops import CROP_MARGIN, HEAD_PARTS, KEYPOINT_SIDE

    whole = build_dataset("synthetic", tiny_root, "test")
    for index in range(len(whole)):
        note = whole.annotation(index)
        side = KEYPOINT_SIDE * 64
        points = [note["parts"][p] for p in HEAD_PARTS if p in note["parts"]]
        if not points:   # no head part visible: the bird's box, squared and grown like any crop
            bx, by, bw, bh = note["box"]
            points, side = [(bx + bw / 2, by + bh / 2)], max(bw, bh)
        x0, y0 = min(x for x, _ in points) - side / 2, min(y for _, y in points) - side / 2
        x1, y1 = max(x for x, _ in points) + side / 2, max(y for _, y in points) + side / 2
        grown = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_MARGIN)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(max(0.0, cx - grown / 2)), int(max(0.0, cy - grown / 2))
        right, bottom = int(round(min(64.0, cx + grown / 2))), int(round(min(64.0, cy + grown / 2)))
        assert whole.region_boxes(index, "head-box") == [(left, top, right - left, bottom - top)]
        assert whole.crop_bounds(index, "head-box") == whole.crop_bounds(index, "head") == (left, top, right, bottom)


def test_region_probe_finds_a_region_that_carries_the_label_and_not_one_that_does_not(tiny_root):
    import torch

    from fgvc_lib.linear_probe import linear_probe
    from fgvc_lib.region_probe import region_masks

    whole = build_dataset("synthetic", tiny_root, "test")
    features, labels = region_masks(whole, "object", grid=4)
    assert features.shape == (len(whole), 16) and labels.tolist() == whole.targets
    # by hand: the bird's box covers each of the 4 x 4 cells by the share of the cell's pixels inside it
    from fgvc_lib.masks import box_mask
    mask = box_mask((64, 64), whole.annotation(0)["box"]).astype(float)
    assert features[0].tolist() == pytest.approx([mask[r:r + 16, c:c + 16].mean() for r in range(0, 64, 16)
                                                  for c in range(0, 64, 16)])
    # the probe itself: a feature that is the label is read perfectly; noise is not
    generator = torch.Generator().manual_seed(0)
    y_train, y_test = torch.arange(200) % 4, torch.arange(200) % 4
    leak = linear_probe(torch.nn.functional.one_hot(y_train, 4).float(), y_train,
                        torch.nn.functional.one_hot(y_test, 4).float(), y_test, 4)
    noise = linear_probe(torch.rand(200, 16, generator=generator), y_train, torch.rand(200, 16, generator=generator),
                         y_test, 4)
    assert leak["test_acc"] == 1.0 and noise["test_acc"] < 0.45 and leak["chance"] == 0.25
    assert leak["test_correct"].tolist() == [100.0] * 200


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


def test_notebook_00_declares_the_positive_controls(monkeypatch, tmp_path):
    from fgvc_lib.models.mask_pooling import MaskPooledNet
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Accuracy, Study

    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = Study(synthetic_dataset.STUDY, profile="cpu")
    assert {name: dict(v.data) for name, v in study.variants.items()} == {
        "baseline": {}, "oracle-object": {"crop": "object"}, "oracle-parts": {"crop": "parts"},
        "oracle-zoom": {"crop": "parts", "crop_input_size": 96}, "oracle-zoom-head": {"crop": "head", "crop_input_size": 96},
        "baseline-os8": {}, "oracle-pool-parts": {"mask": "parts"}, "oracle-pool-keypoints": {"mask": "keypoints"},
        "oracle-pool-head": {"mask": "head-box"}}
    assert {v.seeds for v in study.variants.values()} == {tuple(study.settings.seeds)}   # paired seeds
    assert len(study.settings.seeds) >= 5
    # the baseline chooses its rate on validation; every oracle shares it
    assert study.variants["baseline"].lr_trials == (0.015, 0.05, 0.15)
    assert {v.lr_from for n, v in study.variants.items() if n != "baseline"} == {"baseline"}
    assert study.variants["oracle-pool-keypoints"].model.func is MaskPooledNet
    assert study.variants["oracle-pool-keypoints"].model.keywords == {"output_stride": 8}
    assert study.variants["baseline-os8"].model.keywords == {"output_stride": 8}
    claims, _ = synthetic_dataset.claims(study.settings)
    main = {c.text: c.pairs for c in claims if c.main}
    secondary = {c.text: c.pairs for c in claims if not c.main}
    assert secondary["positive control: oracle attention (discriminative-part crop) beats the whole image"] == (
        (Accuracy("baseline"), Accuracy("oracle-parts")),)                 # carries the label: secondary
    assert secondary["positive control: oracle attention (bird crop) beats the whole image"] == (
        (Accuracy("baseline"), Accuracy("oracle-object")),)
    # the main controls are the label-free ones
    zoom = [pairs for text, pairs in main.items() if text.startswith("zoom oracle")]
    assert zoom == [((Accuracy("baseline"), Accuracy("oracle-zoom-head")),)]
    spatial = [pairs for text, pairs in main.items() if text.startswith("spatial-attention oracle")]
    # same stride: pooling alone; the zoom oracle's region
    assert spatial == [((Accuracy("baseline-os8"), Accuracy("oracle-pool-head")),)]
    main_oracles = [t for t in main if "oracle" in t]
    assert len(main_oracles) == len(synthetic_dataset.CONTROL_CLAIMS)
    assert all(synthetic_dataset.CONTROL_CLAIMS[k][0] in text for k, text in
               zip(synthetic_dataset.CONTROL_CLAIMS, main_oracles))
    chance = [c for c in claims if c.text == "baseline CNN beats chance"][0].pairs[0][0]
    assert chance.value == pytest.approx(100 / 12)                       # the cpu profile's 12 classes
    # every variant trains under its own run key
    keys = {dataset_job[1].run_dir.split("/")[-2] for dataset_job in study.jobs()}
    assert len(keys) == 9


def test_controls_table_reads_the_oracles_intervals_against_the_needed_gain():
    import pandas as pd

    from fgvc_lib.papers import synthetic_dataset

    claims = pd.DataFrame([
        {"claim": "zoom oracle (head crop ...) beats the whole image", "our_effect": 7.0, "ci_low": 5.5, "ci_high": 8.5},
        {"claim": "spatial-attention oracle (head box mask ...) beats ...", "our_effect": 4.0, "ci_low": 2.0,
         "ci_high": 6.0},
    ])
    table = synthetic_dataset.controls_table(claims)
    assert table["attention pays"].tolist() == ["pays", "undecided"]            # 5.5 >= 5; 2 < 5 <= 6
    claims.loc[1, ["ci_low", "ci_high"]] = (1.0, 4.9)
    assert synthetic_dataset.controls_table(claims).iloc[1]["attention pays"] == "below the needed gain"
    with pytest.raises(ValueError, match="no claim starting with 'zoom oracle \\(head'"):
        synthetic_dataset.controls_table(claims.iloc[1:])


def test_centre_cell_reach_on_a_hand_computed_network():
    """Two stacked 3 x 3 convolutions of weight 1 on a 9 x 9 image: the centre cell sees a 5 x 5 square, and its
    input gradient counts the paths from each pixel to it, the outer product of [1 2 3 2 1] with itself; the
    central 3 x 3 square holds 49 of its 81 units of mass."""
    import torch

    from fgvc_lib.room import centre_cell_reach

    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1, bias=False),
                               torch.nn.Conv2d(1, 1, 3, padding=1, bias=False))
    for layer in conv:
        torch.nn.init.ones_(layer.weight)
    found = centre_cell_reach(lambda x: conv(x[:, :1]), image_size=9, square=3, images=torch.zeros(1, 3, 9, 9))
    # gradient of the centre output w.r.t. the input: the number of paths, [1 2 3 2 1] outer [1 2 3 2 1]
    paths = torch.tensor([1., 2., 3., 2., 1.])
    weights = torch.outer(paths, paths)
    assert found["support_side"] == 5.0 and found["support_share"] == pytest.approx(25 / 81)
    assert found["mass_in_square"] == pytest.approx(float(weights[1:4, 1:4].sum() / weights.sum()))   # 49 / 81
    with pytest.raises(ValueError, match="square"):
        centre_cell_reach(lambda x: conv(x[:, :1]), image_size=9, square=0)


def test_centre_cell_reach_centres_the_square_on_the_cell_of_an_even_map():
    """A 2 x 2 convolution of stride 2 on an 8 x 8 image: a 4 x 4 map whose cell (2, 2) sees exactly pixels 4-5 in
    each direction, centred at 5.0, one pixel off the image's centre: a 2-px square on the cell holds all of its
    gradient, one on the image's centre a quarter of it."""
    import torch

    from fgvc_lib.room import centre_cell_reach

    conv = torch.nn.Conv2d(1, 1, 2, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    found = centre_cell_reach(lambda x: conv(x[:, :1]), image_size=8, square=2, images=torch.zeros(1, 3, 8, 8))
    assert found["mass_in_square"] == pytest.approx(1.0)
    assert found["support_side"] == 2.0            # pixels 4 and 5: the square [4, 6) around 5.0
    assert centre_cell_reach(lambda x: conv(x[:, :1]), image_size=8, square=8)["mass_in_square"] == pytest.approx(1.0)
    from fgvc_lib.room import ZeroGradient

    torch.nn.init.zeros_(conv.weight)                # a dead cell: no gradient reaches the input
    with pytest.raises(ZeroGradient, match="zero everywhere"):
        centre_cell_reach(lambda x: conv(x[:, :1]), image_size=8, square=2)
