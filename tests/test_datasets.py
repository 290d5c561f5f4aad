"""Dataset readers on tiny fixtures built in each official layout (tests/fixtures_datasets.py)."""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from fixtures_datasets import BLUE, GREEN, RED, make_aircraft, make_cars, make_cub, make_dogs, save_image  # noqa: E402

from fgvc_lib.data import (  # noqa: E402
    CUB200,
    DATASET_NAMES,
    CorruptImageError,
    DatasetLayoutError,
    FGVCAircraft,
    MissingImageError,
    StanfordCars,
    StanfordDogs,
    build_dataset,
    build_loaders,
    build_test_loader,
    load_rgb,
)
from fgvc_lib.data.transforms import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_transforms,
    check_image_size,
    denormalize,
    scale_box,
)


def close_colour(pixel, colour, tol=30):
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour))


def centre_pixel(image):
    return image.getpixel((image.size[0] // 2, image.size[1] // 2))


# ------------------------------------------------------------------------------------------------
# load_rgb
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,fmt", [("L", "JPEG"), ("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("RGB", "PNG")])
def test_load_rgb_converts_every_mode(tmp_path, mode, fmt):
    path = save_image(tmp_path / f"x.{fmt.lower()}", size=(10, 8), colour=GREEN, mode=mode, fmt=fmt)
    with Image.open(path) as raw:
        assert raw.mode == mode  # the fixture really is in that mode on disk
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (10, 8)
    expected = (126, 126, 126) if mode == "L" else GREEN  # grayscale keeps luminance only
    assert close_colour(centre_pixel(image), expected), centre_pixel(image)


def test_load_rgb_alpha_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (6, 6), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "a.png")
    image = load_rgb(tmp_path / "a.png")
    assert image.getpixel((3, 3)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 255)


def test_load_rgb_16bit_grayscale(tmp_path):
    array = np.full((4, 5), 65535, dtype=np.uint16)
    array[0, 0] = 0
    Image.fromarray(array).save(tmp_path / "deep.png")
    image = load_rgb(tmp_path / "deep.png")
    assert image.mode == "RGB" and image.size == (5, 4)
    assert image.getpixel((2, 2)) == (255, 255, 255) and image.getpixel((0, 0)) == (0, 0, 0)


def test_load_rgb_errors_name_the_path(tmp_path):
    with pytest.raises(MissingImageError, match="nothere.jpg"):
        load_rgb(tmp_path / "nothere.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg at all")
    with pytest.raises(CorruptImageError, match="junk.jpg") as info:
        load_rgb(junk)
    assert isinstance(info.value, OSError)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "good.jpg", quality=95)  # mostly entropy-coded data
    data = (tmp_path / "good.jpg").read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) * 2 // 3])  # header intact, pixel data cut short
    with Image.open(truncated) as lazy:
        assert lazy.size == (32, 32)  # opening alone does not notice the damage
    with pytest.raises(CorruptImageError, match="truncated.jpg"):
        load_rgb(truncated)


# ------------------------------------------------------------------------------------------------
# CUB-200-2011
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_parent", [True, False])
def test_cub_samples_labels_classes(tmp_path, use_parent):
    facts = make_cub(tmp_path)
    root = tmp_path if use_parent else facts["root"]
    for split, ids in (("train", facts["train_ids"]), ("test", facts["test_ids"])):
        ds = build_dataset("cub", root, split)
        assert isinstance(ds, CUB200) and isinstance(ds, torch.utils.data.Dataset)
        assert len(ds) == len(ids)
        assert ds.classes == facts["classes"]
        assert ds.image_ids == ids
        assert ds.targets == [facts["label"][i] for i in ids]
        assert [s[1] for s in ds.samples] == ds.targets
        assert [os.path.normpath(s[0]) for s in ds.samples] == [os.path.normpath(facts["path"][i]) for i in ids]
        assert ds.part_names == facts["part_names"]
        for k, image_id in enumerate(ids):
            image, label = ds[k]
            assert image.mode == "RGB" and image.size == facts["size"][image_id]
            assert label == facts["label"][image_id]


def test_cub_annotations(tmp_path):
    facts = make_cub(tmp_path)
    ds = CUB200(tmp_path, "train")
    for k, image_id in enumerate(ds.image_ids):
        ann = ds.annotation(k)
        assert ann["image_size"] == facts["size"][image_id]
        assert ann["box"] == facts["boxes"][image_id]
        assert ann["parts"] == facts["parts"][image_id]  # invisible parts are left out
        assert ann["part_boxes"] == facts["part_boxes"][image_id]
    hidden = ds.image_ids.index(4)  # even id: "left eye" is not visible
    assert "left eye" not in ds.annotation(hidden)["parts"]
    assert ds.annotation(-1) == ds.annotation(len(ds) - 1)
    with pytest.raises(IndexError):
        ds.annotation(len(ds))


def test_cub_without_part_boxes_has_no_part_boxes_key(tmp_path):
    make_cub(tmp_path, with_part_boxes=False)
    ann = CUB200(tmp_path, "test").annotation(0)
    assert "part_boxes" not in ann and "parts" in ann and "box" in ann


def test_cub_grayscale_cmyk_palette_images_load_as_rgb(tmp_path):
    facts = make_cub(tmp_path)
    ds = CUB200(tmp_path, "test")
    seen = set()
    for k, image_id in enumerate(ds.image_ids):
        with Image.open(facts["path"][image_id]) as raw:
            seen.add(raw.mode)
        image = ds.load_image(k)
        assert image.mode == "RGB"
        expected = (126, 126, 126) if facts["mode"][image_id] == "L" else facts["colour"][image_id]
        assert close_colour(centre_pixel(image), expected), (image_id, centre_pixel(image))
    assert {"L", "CMYK", "P"} <= seen


def test_cub_with_transform_gives_tensors(tmp_path):
    make_cub(tmp_path)
    ds = build_dataset("cub", tmp_path, "train", transform=build_transforms(16, train=False))
    image, label = ds[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and isinstance(label, int)


def test_cub_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetLayoutError, match="no_such_folder") as info:
        build_dataset("cub", missing, "train")
    assert isinstance(info.value, FileNotFoundError)
    assert "images.txt" in str(info.value)  # the message describes the expected layout


def test_cub_missing_file_is_named(tmp_path):
    facts = make_cub(tmp_path)
    (facts["root"] / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="image_class_labels.txt"):
        CUB200(tmp_path, "train")


def test_cub_empty_folder_names_images_txt(tmp_path):
    with pytest.raises(DatasetLayoutError, match="images.txt"):
        CUB200(tmp_path, "train")


def test_cub_malformed_line_is_reported(tmp_path):
    facts = make_cub(tmp_path)
    (facts["root"] / "train_test_split.txt").write_text("1 1\n2\n")
    with pytest.raises(ValueError, match="train_test_split.txt: line 2"):
        CUB200(tmp_path, "train")


def test_cub_corrupt_and_missing_images_name_the_path(tmp_path):
    facts = make_cub(tmp_path)
    ds = CUB200(tmp_path, "train")
    corrupt = facts["path"][ds.image_ids[1]]
    corrupt.write_bytes(b"\x00garbage")
    with pytest.raises(CorruptImageError) as info:
        ds[1]
    assert str(corrupt) in str(info.value)
    gone = facts["path"][ds.image_ids[2]]
    gone.unlink()
    with pytest.raises(MissingImageError) as info:
        ds.load_image(2)
    assert str(gone) in str(info.value)
    image, _ = ds[0]  # the others still load
    assert image.mode == "RGB"


# ------------------------------------------------------------------------------------------------
# Stanford Cars
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_inner_folder", [False, True])
def test_cars_samples_labels_boxes(tmp_path, use_inner_folder):
    facts = make_cars(tmp_path)
    root = facts["base"] if use_inner_folder else tmp_path
    for split in ("train", "test"):
        ds = build_dataset("cars", root, split)
        assert isinstance(ds, StanfordCars)
        expected = facts[split]
        assert len(ds) == len(expected["labels"])
        assert ds.classes == facts["classes"]
        assert ds.targets == expected["labels"]
        assert [os.path.normpath(p) for p, _ in ds.samples] == [os.path.normpath(p) for p in expected["paths"]]
        for k in range(len(ds)):
            ann = ds.annotation(k)
            assert ann["box"] == expected["boxes"][k]
            assert ann["image_size"] == (24, 16)
            image, label = ds[k]
            assert image.mode == "RGB" and label == expected["labels"][k]
            assert close_colour(centre_pixel(image), (RED, GREEN, BLUE)[label])


def test_cars_cmyk_image_loads_as_rgb(tmp_path):
    facts = make_cars(tmp_path)
    with Image.open(facts["test"]["paths"][1]) as raw:
        assert raw.mode == "CMYK"
    image = StanfordCars(tmp_path, "test").load_image(1)
    assert image.mode == "RGB" and close_colour(centre_pixel(image), BLUE)


def test_cars_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="stanford_cars"):
        StanfordCars(tmp_path, "train")  # empty folder: the expected sub-folder is named
    with pytest.raises(DatasetLayoutError, match="nope"):
        StanfordCars(tmp_path / "nope", "train")
    facts = make_cars(tmp_path)
    meta = facts["base"] / "devkit" / "cars_meta.mat"
    meta.rename(tmp_path / "elsewhere.mat")
    with pytest.raises(DatasetLayoutError, match="cars_meta.mat"):
        StanfordCars(tmp_path, "train")
    (tmp_path / "elsewhere.mat").rename(meta)
    test_annos = facts["base"] / "cars_test_annos_withlabels.mat"
    test_annos.rename(facts["base"] / "devkit" / test_annos.name)  # a common mistake
    with pytest.raises(DatasetLayoutError, match="move"):
        StanfordCars(tmp_path, "test")


def test_cars_folder_with_other_name_is_explained(tmp_path):
    facts = make_cars(tmp_path)
    renamed = facts["base"].rename(tmp_path / "cars196")
    with pytest.raises(DatasetLayoutError, match="named 'stanford_cars'"):
        StanfordCars(renamed, "train")


# ------------------------------------------------------------------------------------------------
# FGVC-Aircraft
# ------------------------------------------------------------------------------------------------

def test_aircraft_splits_and_paper_convention(tmp_path):
    facts = make_aircraft(tmp_path)
    splits = facts["splits"]
    train = build_dataset("aircraft", tmp_path, "train")
    assert train.split == "trainval" and len(train) == len(splits["trainval"])
    official_train = build_dataset("aircraft", tmp_path, "train", paper_split=False)
    assert official_train.split == "train" and len(official_train) == len(splits["train"])
    for split in ("val", "trainval", "test"):
        ds = build_dataset("aircraft", tmp_path, split)
        assert isinstance(ds, FGVCAircraft)
        assert ds.classes == facts["classes"]
        assert ds.targets == [label for _, label in splits[split]]
        assert [os.path.basename(p) for p, _ in ds.samples] == [f"{n}.jpg" for n, _ in splits[split]]
        image, label = ds[0]
        assert image.mode == "RGB" and image.size == (24, 32)
        assert close_colour(centre_pixel(image), (RED, GREEN, BLUE)[label])


def test_aircraft_boxes_and_banner_crop(tmp_path):
    facts = make_aircraft(tmp_path)
    ds = FGVCAircraft(tmp_path, "test")
    name = facts["splits"]["test"][0][0]
    assert ds.annotation(0) == {"image_size": (24, 32), "box": facts["boxes"][name]}
    cropped = build_dataset("aircraft", facts["data"].parent, "test", crop_banner=True)  # inner folder as root
    assert cropped.load_image(0).size == (24, 12)
    ann = cropped.annotation(0)
    x, y, w, h = facts["boxes"][name]
    assert ann["image_size"] == (24, 12)
    assert ann["box"] == (x, y, w, 12 - y)  # clipped at the banner


def test_aircraft_without_box_file_and_other_levels(tmp_path):
    make_aircraft(tmp_path, with_boxes=False)
    assert "box" not in FGVCAircraft(tmp_path, "test").annotation(0)
    with pytest.raises(DatasetLayoutError, match="families.txt"):
        FGVCAircraft(tmp_path, "test", annotation_level="family")
    with pytest.raises(ValueError, match="annotation_level"):
        FGVCAircraft(tmp_path, "test", annotation_level="model")


def test_aircraft_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="fgvc-aircraft-2013b"):
        FGVCAircraft(tmp_path, "test")
    facts = make_aircraft(tmp_path)
    (facts["data"] / "images_variant_test.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="images_variant_test.txt"):
        build_dataset("aircraft", tmp_path, "test")
    (facts["data"] / "images_variant_val.txt").write_text("0000004 Boeing 999\n")
    with pytest.raises(ValueError, match="Boeing 999"):
        FGVCAircraft(tmp_path, "val")


# ------------------------------------------------------------------------------------------------
# Stanford Dogs
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lists_folder", [True, False])
def test_dogs_samples_labels_boxes(tmp_path, lists_folder):
    facts = make_dogs(tmp_path, lists_folder=lists_folder)
    for split in ("train", "test"):
        ds = build_dataset("dogs", tmp_path, split)
        assert isinstance(ds, StanfordDogs)
        expected = facts[split]
        assert ds.classes == facts["classes"] and ds.folders == facts["folders"]
        assert len(ds) == len(expected["labels"])
        assert ds.targets == expected["labels"]
        assert [os.path.normpath(p) for p, _ in ds.samples] == [os.path.normpath(p) for p in expected["paths"]]
        for k in range(len(ds)):
            ann = ds.annotation(k)
            assert ann["box"] == expected["boxes"][k]  # train[1] has two objects: the first is used
            assert ann["image_size"] == (16, 12)
            image, label = ds[k]
            assert image.mode == "RGB" and label == expected["labels"][k]


def test_dogs_grayscale_loads_as_rgb(tmp_path):
    facts = make_dogs(tmp_path)
    with Image.open(facts["train"]["paths"][3]) as raw:
        assert raw.mode == "L"
    image = StanfordDogs(tmp_path, "train").load_image(3)
    assert image.mode == "RGB"
    r, g, b = centre_pixel(image)
    assert r == g == b


def test_dogs_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="missing_dogs"):
        StanfordDogs(tmp_path / "missing_dogs", "train")
    make_dogs(tmp_path)
    (tmp_path / "lists" / "test_list.mat").unlink()
    with pytest.raises(DatasetLayoutError, match="test_list.mat"):
        build_dataset("dogs", tmp_path, "test")
    shutil.rmtree(tmp_path / "Images" / "n02085782-Japanese_spaniel")  # breed folders shift
    with pytest.raises(ValueError, match="label"):
        StanfordDogs(tmp_path, "train")


def test_dogs_missing_annotation_gives_no_box(tmp_path):
    make_dogs(tmp_path)
    shutil.rmtree(tmp_path / "Annotation")
    ann = StanfordDogs(tmp_path, "test").annotation(0)
    assert ann == {"image_size": (16, 12)}


# ------------------------------------------------------------------------------------------------
# build_dataset errors, synthetic delegation
# ------------------------------------------------------------------------------------------------

def test_unknown_dataset_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError) as info:
        build_dataset("imagenet", tmp_path, "train")
    for name in DATASET_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name,valid", [("cub", ["train", "test"]), ("aircraft", ["trainval", "val"])])
def test_unknown_split_lists_valid_splits(tmp_path, name, valid):
    with pytest.raises(ValueError, match="unknown split 'validation'") as info:
        build_dataset(name, tmp_path, "validation")
    for split in valid:
        assert repr(split) in str(info.value)
    with pytest.raises(ValueError, match="valid splits"):
        CUB200(tmp_path, "val")


def test_unknown_option_is_rejected(tmp_path):
    make_cub(tmp_path)
    with pytest.raises(TypeError, match="crop_banner"):
        build_dataset("cub", tmp_path, "train", crop_banner=True)
    assert len(build_dataset("cub", tmp_path, "train", config=None)) == 4  # None options are ignored


def test_synthetic_is_read_by_the_cub_reader(tmp_path):
    synthetic = pytest.importorskip("fgvc_lib.data.synthetic")
    config = synthetic.SyntheticConfig(num_classes=2, train_per_class=2, test_per_class=1, image_size=32,
                                       clutter=0, supersample=1)
    ds = build_dataset("synthetic", tmp_path / "synth", "train", config=config)
    assert isinstance(ds, CUB200)
    assert len(ds) == 4 and sorted(set(ds.targets)) == [0, 1] and len(ds.classes) == 2
    ann = ds.annotation(0)
    assert ann["image_size"] == (32, 32) and "box" in ann and ann["parts"] and ann["part_boxes"]
    assert ds.load_image(0).mode == "RGB"
    assert len(build_dataset("synthetic", tmp_path / "synth", "test", config=config)) == 2


# ------------------------------------------------------------------------------------------------
# transforms and loaders
# ------------------------------------------------------------------------------------------------

def test_build_transforms_shapes_and_normalisation():
    image = Image.new("RGB", (20, 10), (255, 0, 0))
    test_tf = build_transforms(8, train=False)
    out = test_tf(image)
    assert out.shape == (3, 8, 8) and out.is_contiguous()
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                -IMAGENET_MEAN[2] / IMAGENET_STD[2]]
    assert torch.allclose(out.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-4)
    assert build_transforms((6, 10), train=True)(image).shape == (3, 6, 10)
    names = lambda tf: [type(t).__name__ for t in tf.transforms]  # noqa: E731
    assert "RandomHorizontalFlip" in names(build_transforms(8, train=True))
    assert "RandomHorizontalFlip" not in names(build_transforms(8, train=True, flip=False))
    assert "RandomHorizontalFlip" not in names(test_tf)
    crop = build_transforms(8, train=False, resize_mode="resize_crop")
    assert "CenterCrop" in names(crop) and crop(image).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="resize_mode"):
        build_transforms(8, train=True, resize_mode="stretch")
    with pytest.raises(ValueError, match="positive"):
        build_transforms(0, train=True)


def test_resize_crop_keeps_the_aspect_ratio_and_the_uncropped_view_leaves_out_the_crop():
    wide = Image.new("RGB", (40, 20), (255, 0, 0))      # width 40, height 20
    # shorter side to 8/7 of the input (14 -> 16), aspect ratio kept (32 x 16), then the 14 x 14 crop
    names = lambda tf: [type(t).__name__ for t in tf.transforms]  # noqa: E731
    center = build_transforms(14, train=False, resize_mode="resize_crop")
    assert center(wide).shape == (3, 14, 14) and "CenterCrop" in names(center)
    assert build_transforms(14, train=True, resize_mode="resize_crop")(wide).shape == (3, 14, 14)
    whole = build_transforms(14, train=False, resize_mode="resize_crop", view="uncropped")
    assert whole(wide).shape == (3, 16, 32) and "CenterCrop" not in names(whole)
    # the center crop is the middle of the uncropped image
    ramp = Image.fromarray(np.tile(np.arange(0, 240, 6, dtype=np.uint8), (20, 1))[..., None].repeat(3, 2))
    full, crop = whole(ramp), center(ramp)
    assert torch.allclose(full[:, 1:15, 9:23], crop, atol=1e-5)
    with pytest.raises(ValueError, match="needs resize_mode='resize_crop'"):
        build_transforms(14, train=False, view="uncropped")
    with pytest.raises(ValueError, match="for test images"):
        build_transforms(14, train=True, resize_mode="resize_crop", view="uncropped")
    with pytest.raises(ValueError, match="unknown test view 'tiles'"):
        build_transforms(14, train=False, resize_mode="resize_crop", view="tiles")


def test_an_uncropped_test_view_of_photographs_is_read_one_image_at_a_time(tmp_path):
    make_cub(tmp_path)
    loader = build_test_loader("cub", tmp_path, 14, batch_size=3, resize_mode="resize_crop", view="uncropped")
    assert loader.batch_size == 1
    shapes = [tuple(images.shape[2:]) for images, _ in loader]
    # test images 2 (12 x 16, w x h), 5 (24 x 16) and 7 (16 x 16): the shorter side becomes 16
    assert shapes == [(21, 16), (16, 24), (16, 16)]
    _, cropped = build_loaders("cub", tmp_path, 14, batch_size=3, resize_mode="resize_crop")
    assert [tuple(images.shape) for images, _ in cropped] == [(3, 3, 14, 14)]


def test_train_transform_flips_sometimes():
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.putpixel((0, 4), (255, 255, 255))
    tf = build_transforms(8, train=True)
    torch.manual_seed(0)
    left = [bool(tf(image)[0, 4, 0] > tf(image)[0, 4, 7]) for _ in range(20)]
    assert any(left) and not all(left)


def test_denormalize_inverts_normalisation():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    tensor = build_transforms(8, train=False)(image)
    back = denormalize(tensor)
    assert torch.allclose(back, torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255, atol=1e-5)
    batch = denormalize(torch.stack([tensor, tensor]) * 100)
    assert batch.shape == (2, 3, 8, 8) and batch.min() >= 0 and batch.max() <= 1
    with pytest.raises(ValueError, match="expects"):
        denormalize(torch.zeros(8, 8))


def test_scale_box_and_point():
    assert scale_box((10, 20, 30, 40), (100, 200), 50) == (5.0, 5.0, 15.0, 10.0)
    assert scale_box((10, 20), (100, 200), (200, 100)) == (20.0, 10.0)
    with pytest.raises(ValueError):
        scale_box((1, 2, 3), (10, 10), 5)


def test_check_image_size():
    check_image_size(64, 32)
    with pytest.raises(ValueError, match="image_size 16 is below the minimum 32 that backbone 'vgg16'"):
        check_image_size(16, 32, backbone="vgg16")
    with pytest.raises(ValueError, match="below the minimum"):
        check_image_size((64, 16), 32)


def test_build_loaders_batches_are_contiguous_and_seeded(tmp_path):
    make_cub(tmp_path)
    train, test = build_loaders("cub", tmp_path, image_size=16, batch_size=3, seed=5)
    assert train.drop_last is True  # 4 training images with batch 3 would leave a batch of one
    assert test.drop_last is False
    images, labels = next(iter(train))
    assert images.shape == (3, 3, 16, 16) and images.is_contiguous() and labels.dtype == torch.int64
    assert sum(len(y) for _, y in test) == 3
    assert [y.tolist() for _, y in test] == [[0, 2, 1]]  # test order is the dataset order

    def epoch_order(seed):
        loader, _ = build_loaders("cub", tmp_path, image_size=8, batch_size=2, seed=seed, flip=False)
        return [y.tolist() for _, y in loader]

    assert epoch_order(1) == epoch_order(1)
    orders = {str(epoch_order(s)) for s in range(6)}
    assert len(orders) > 1  # the train loader shuffles
    with pytest.raises(ValueError, match="batch_size"):
        build_loaders("cub", tmp_path, image_size=8, batch_size=0)


def test_validation_split_holds_out_a_share_of_every_class_the_same_way_every_time():
    from fgvc_lib.data.validation import DatasetPart, validation_indices

    targets = [0] * 10 + [1] * 5 + [2] * 1 + [0] * 5
    kept, held = validation_indices(targets, 0.2)
    assert sorted(kept + held) == list(range(len(targets))) and not set(kept) & set(held)
    # per class: round(0.2 * 15) = 3, round(0.2 * 5) = 1, and a class of one image keeps it
    assert [sum(targets[i] == c for i in held) for c in (0, 1, 2)] == [3, 1, 0]
    assert validation_indices(targets, 0.2) == (kept, held)            # fixed: every run holds out the same images
    assert validation_indices([0, 0], 0.01)[1] != []                   # two images: one is held out
    for bad in (0, 1, -0.5, True, "0.2"):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            validation_indices(targets, bad)

    class Reader:
        classes = ["a", "b", "c"]
        targets = [0, 1, 2, 1]
        samples = [("p0", 0), ("p1", 1), ("p2", 2), ("p3", 1)]

        def __getitem__(self, index):
            return f"image {index}", self.targets[index]

        def annotation(self, index):
            return {"index": index}

    part = DatasetPart(Reader(), [3, 1])
    assert len(part) == 2 and part[0] == ("image 3", 1) and part.targets == [1, 1]
    assert part.samples == [("p3", 1), ("p1", 1)] and part.annotation(1) == {"index": 1} and part.classes == Reader.classes
