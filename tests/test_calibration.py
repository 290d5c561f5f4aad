"""Candidate renderings of the synthetic testbed (fgvc_lib.calibration): the profile a candidate trains in, bad input,
and the screen's table read back from hand-written candidate folders."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from fgvc_lib import reporting
from fgvc_lib.calibration import SCREEN_SEED, calibration_dir, candidate_profile, screen_table
from fgvc_lib.profiles import get_profile


def test_a_candidate_changes_only_the_rendering_it_names():
    cpu = get_profile("cpu")
    profile = candidate_profile({"clutter": 12, "class_attributes": ["beak_shape", "eye_ring", "crest"]})
    assert profile.synthetic["clutter"] == 12 and profile.synthetic["class_attributes"] == ("beak_shape", "eye_ring", "crest")
    changed = ("clutter", "class_attributes", "seed")
    unchanged = {k: v for k, v in profile.synthetic.items() if k not in changed}
    assert unchanged == {k: v for k, v in cpu.synthetic.items() if k not in changed}
    assert profile.replace(synthetic=cpu.synthetic) == cpu      # nothing else of the profile moved
    assert cpu.synthetic.get("clutter") != 12                   # the registered profile is untouched
    # screens draw another task than the notebooks' (whose test images no screen reads), unless asked
    assert profile.synthetic["seed"] == SCREEN_SEED != cpu.synthetic["seed"]
    assert candidate_profile({"seed": 7}).synthetic["seed"] == 7


@pytest.mark.parametrize("rendering, message", [
    ({"cluter": 3}, "unknown rendering knob"),
    ({"clutter": -1}, "clutter=-1 must be >= 0"),
    ({"class_attributes": ["beak_size"]}, "subset of"),
])
def test_a_bad_candidate_fails_before_anything_trains(rendering, message):
    with pytest.raises(ValueError, match=message):
        candidate_profile(rendering)


def test_a_label_must_be_a_plain_folder_name(tmp_path):
    assert calibration_dir("head", tmp_path) == tmp_path / "calibration" / "head"
    for bad in ("", "a/b", ".hidden", "smoke", "paper"):
        with pytest.raises(ValueError, match="plain folder name"):
            calibration_dir(bad, tmp_path)


def _write_candidate(root, label, rendering, rows, top1, pretraining=None):
    folder = root / "calibration" / label
    folder.mkdir(parents=True)
    table = pd.DataFrame([{**{c: "" for c in reporting.CLAIM_COLUMNS}, "claim": claim, "main": True,
                           "measure": "accuracy", "direction": 1, "smallest_effect": 1.0, "our_effect": effect,
                           "ci_low": low, "ci_high": high, "verdict": verdict, "against_paper": "",
                           "below_smallest_effect": False, "n_seeds": 2, "n_images": 1200}
                          for claim, effect, low, high, verdict in rows], columns=reporting.CLAIM_COLUMNS)
    reporting.write_claims(table, folder / "claims.csv")
    settings = {"rendering": rendering, "seeds": [0, 1], "mean_top1": {"baseline": top1}}
    if pretraining is not None:
        settings["pretraining"] = pretraining
    (folder / "calibration.json").write_text(json.dumps(settings))


def test_the_screen_sets_candidates_side_by_side(tmp_path):
    _write_candidate(tmp_path, "b-more-clutter", {"clutter": 12},
                     [("zoom oracle (head crop ...) beats the whole image", 8.25, 2.0, 14.5, "held")], 61.5)
    _write_candidate(tmp_path, "a-head", {"class_attributes": ["crest"]},
                     [("zoom oracle (head crop ...) beats the whole image", -3.0, -9.0, 3.0, "inconclusive"),
                      ("spatial-attention oracle (keypoint mask, ...) beats pooling", 6.0, 1.0, 11.0, "held"),
                      ("spatial-attention oracle (head box mask, ...) beats pooling", -2.0, -4.0, 0.0, "inconclusive")],
                     55.0, pretraining="pretraining: vgg16_bn_w0.125_96px_abc.pt, last epoch's training accuracy 70.7 % "
                                       "after 30 epochs at 1 torch thread(s), trained on Intel(R) Xeon(R) Processor "
                                       "(AVX512), torch 2.14.1, torchvision 0.29.1")
    table = screen_table(tmp_path)
    assert list(table["candidate"]) == ["a-head", "b-more-clutter"]
    assert list(table["zoom gain"]) == ["-3.0 [-9.0, 3.0]", "8.2 [2.0, 14.5]"]
    assert list(table["spatial gain (keypoints)"]) == ["6.0 [1.0, 11.0]", ""]   # b did not train the spatial oracle
    assert list(table["spatial gain (keypoints) verdict"]) == ["held", ""]
    assert list(table["spatial gain (head box)"]) == ["-2.0 [-4.0, 0.0]", ""]
    # which pretraining a screen started from: the same file name trained on two machines differs
    assert list(table["pretraining"]) == ["vgg16_bn_w0.125_96px_abc.pt, 70.7 %, Intel(R) Xeon(R) Processor (AVX512)",
                                          ""]
    assert list(table["baseline top-1"]) == [55.0, 61.5]
    assert list(table["scored on"]) == ["test", "test"]          # written before screens named their split
    assert screen_table(tmp_path / "nothing-here").empty
    (tmp_path / "calibration" / "c-stopped").mkdir()                          # a screen that stopped early
    assert list(screen_table(tmp_path)["candidate"]) == ["a-head", "b-more-clutter"]


def test_the_pretraining_follows_the_drawing_not_the_targets_classes():
    """The embedded pretraining copies the target's rendering knobs but draws its own classes from every attribute
    (fgvc_lib.study.runner.TASK_KEYS): a candidate that changes only which attributes make the classes starts from
    the cpu profile's pretraining; one that changes the drawing pretrains anew."""
    from fgvc_lib.papers.synthetic_dataset import STUDY
    from fgvc_lib.study.parameters import resolve
    from fgvc_lib.study.runner import backbone_spec_for

    def spec(profile):
        return backbone_spec_for(resolve(STUDY, {"profile": profile}))

    cpu = spec(get_profile("cpu"))
    assert spec(candidate_profile({"class_attributes": ["beak_shape", "beak_colour", "eye_ring", "crest"]})) == cpu
    assert spec(candidate_profile({"clutter": 12})) != cpu


def test_the_profiles_classes_differ_in_the_heads_attributes():
    """The recalibrated testbed (issue 19): the cpu and smoke profiles' classes combine the head's attributes, the
    ones whose parts the head crop of the zoom oracle shows (fgvc_lib.data.crops.HEAD_PARTS)."""
    from fgvc_lib.data.crops import HEAD_PARTS
    from fgvc_lib.data.synthetic import ATTRIBUTES, HEAD_ATTRIBUTES

    assert HEAD_ATTRIBUTES == ("beak_shape", "beak_colour", "eye_ring", "crest")
    assert all(ATTRIBUTES[a][0] in HEAD_PARTS for a in HEAD_ATTRIBUTES)
    assert not [a for a, (part, _) in ATTRIBUTES.items() if part in HEAD_PARTS and a not in HEAD_ATTRIBUTES]
    for name in ("cpu", "smoke"):
        assert tuple(get_profile(name).synthetic["class_attributes"]) == HEAD_ATTRIBUTES


def test_a_screen_reads_the_validation_split_or_the_test_split_only():
    from fgvc_lib.calibration import screen

    with pytest.raises(ValueError, match="scored_on must be one of validation, test"):
        screen("x", {}, ["baseline"], scored_on="train")


def test_a_screen_on_validation_trains_without_the_held_out_share():
    from fgvc_lib.calibration import scored_on_validation
    from fgvc_lib.papers.synthetic_dataset import STUDY
    from fgvc_lib.study import Study

    study = Study(STUDY, profile="smoke", lr_selection="fixed")
    variants = {name: study.variants[name] for name in ("baseline", "oracle-zoom-head")}
    moved = scored_on_validation(variants, 0.2)
    assert dict(moved["baseline"].data) == {"validation": 0.2}
    assert dict(moved["oracle-zoom-head"].data) == {**dict(variants["oracle-zoom-head"].data), "validation": 0.2}
    assert dict(scored_on_validation(moved, 0.3)["baseline"].data) == {"validation": 0.3}   # replaced, not added
    assert variants["baseline"].data == ()                                                  # the plan is untouched
    with pytest.raises(ValueError, match="no variant"):
        from fgvc_lib.calibration import screen
        screen("x", {}, [])
