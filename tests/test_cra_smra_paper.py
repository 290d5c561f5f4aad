"""CRA-SMRA's surviving numbers (fgvc_lib.papers.cra_smra), pinned against the paper's prose, notebook 02's
study declaration, and the stage-map scores of Figure 4's claim against literal evaluations."""
import numpy as np
import pytest
import torch

from fgvc_lib.papers import cra_smra as paper
from fgvc_lib.papers import cra_smra_views
from fgvc_lib.study import Accuracy, Score, Study
from fgvc_lib.study.parameters import resolve


def test_table3_gains_as_the_text_states_them(tmp_path):
    # sec. 4.3: "increase by over 1.3 %, 1.4 %, 0.9 %, and 1.4 %" (CRAM) and "0.4 %, 0.4 %, 0.1 % and 0.2 %" (SMRAM)
    assert paper.STUDY.printed["table3_gains"] == {
        "+ CRAM": {"cub": 1.3, "aircraft": 1.4, "cars": 0.9, "dogs": 1.4},
        "+ CRAM + SMRAM": {"cub": 0.4, "aircraft": 0.4, "cars": 0.1, "dogs": 0.2}}
    # each claim's effect as the runner reports it, on each dataset of the paper profile: the stated gains, and the
    # main gain (backbone -> + CRAM + SMRAM, printed nowhere) their sum
    effects = {}
    for dataset in paper.DATASETS:
        settings = resolve(paper.STUDY, {"profile": "paper", "dataset": dataset, "data_root": str(tmp_path)})
        claims, _ = paper.claims(settings)
        effects[dataset] = [paper.STUDY.paper_effect(c, dataset) for c in claims if c.text.startswith("Table 3")]
    assert effects == {"cub": [pytest.approx(1.7), 1.3, None, 0.4], "aircraft": [pytest.approx(1.8), 1.4, None, 0.4],
                       "cars": [pytest.approx(1.0), 0.9, None, 0.1], "dogs": [pytest.approx(1.6), 1.4, None, 0.2]}


def test_table2_gaps_as_the_text_states_them():
    gaps = paper.STUDY.printed["table2_gaps"]     # method -> dataset -> CRA-SMRA minus the method
    stated = {d: {method: by[d] for method, by in gaps.items() if d in by} for d in paper.DATASETS}
    assert stated["cub"] == {
        "DeepLAC (part annotations)": 9.1, "Part-RCNN (part annotations)": 7.8, "RA-CNN (VGG)": 4.1, "NTS": 1.9,
        "PCA-Net": 1.1, "MGE-CNN": 0.9, "S3N": 0.9, "FDL": 0.8, "API-Net": 1.6}
    assert stated["aircraft"] == {"NTS": 1.8, "CIN": 0.6, "API-Net": 0.2, "ACNet": 0.8, "PCA-Net": 0.8, "S3N": 0.4}
    assert stated["cars"] == stated["dogs"] == {"API-Net": -0.1}
    assert sum(map(len, stated.values())) == sum(map(len, gaps.values()))   # no column beside the four datasets
    # the notebook's view: one row per stated margin, dataset by dataset, none of the blanks
    table = cra_smra_views.gaps_table(paper.STUDY.printed_table("table2_gaps"))
    assert {(d, m): g for (d, m), g in table.iloc[:, 0].items()} == {
        (d, m): g for d, methods in stated.items() for m, g in methods.items()}
    assert list(table.index.get_level_values("dataset").unique()) == list(paper.DATASETS)
    assert (paper.BEST_DELTA, paper.BEST_GAMMA, paper.OMEGA, paper.LOSS_WEIGHTS) == (0.9, 1.0, 0.5, (2.0, 1.0, 1.0))


@pytest.mark.usefixtures("private_dirs")
def test_plan_trains_table3_on_every_seed_and_the_sweeps_on_the_first():
    study = Study(paper.STUDY, profile="cpu")
    settings = study.settings
    assert settings.backbone == "vgg16" and settings.output_stride == 8
    variants = study.variants
    seeds = tuple(settings.seeds)
    assert all(variants[name].seeds == seeds for name in paper.VARIANTS) and len(seeds) >= 5
    sweeps = {name: v for name, v in variants.items() if name.startswith("cram_smram-")}
    assert sorted(sweeps) == ["cram_smram-delta0.5", "cram_smram-delta0.7", "cram_smram-delta1",
                              "cram_smram-gamma0.5", "cram_smram-gamma2"]
    assert all(v.seeds == seeds[:3] for v in sweeps.values())
    assert all(v.train == variants["backbone"].train for v in variants.values())   # one recipe
    config = lambda name: variants[name].model.keywords["config"]  # noqa: E731
    assert (config("backbone").attention, config("cbam").attention, config("cram").smram,
            config("cram_smram").smram) == ("none", "cbam", False, True)
    assert (config("cram_smram-delta0.7").delta, config("cram_smram-gamma2").gamma) == (0.7, 2.0)
    assert paper.sweep_variant(settings, "gamma", 0.0) == "cram"    # no L_div: SMRAM changes nothing
    assert paper.sweep_variant(settings, "delta", 0.9) == "cram_smram"
    paper_settings = resolve(paper.STUDY, {"profile": "paper", "dataset": "synthetic"})
    assert paper._rates(paper_settings) == pytest.approx((2e-4, 6e-3))
    assert paper.model_config(paper_settings, "cram").cram_lr_multiplier == pytest.approx(30.0)
    assert paper_settings.backbone == "resnet50" and paper_settings.output_stride is None
    # the room table reads the run's network: every site at stride 8 in the cpu profile, 8/16/32 as published
    assert list(paper.attention_sites(settings, study.backbone_spec.build(weights=False)).values()) == [8, 8, 8]
    smoke = Study(paper.STUDY, profile="smoke")
    assert list(paper.attention_sites(smoke.settings, smoke.backbone_spec.build(weights=False)).values()) == [8, 16, 32]


def test_claims_carry_the_texts_gains_labelled_with_the_papers_setting():
    settings = resolve(paper.STUDY, {"profile": "cpu", "backbone": "resnet50"})
    claims, _ = paper.claims(settings)
    by_pair = {c.pairs[0]: c for c in claims}

    def effect(claim):   # as the runner reports it (the synthetic set reads CUB-200-2011's column)
        return paper.STUDY.paper_effect(claim, "synthetic")

    assert effect(by_pair[(Accuracy("backbone"), Accuracy("cram_smram"))]) == pytest.approx(1.7)
    assert by_pair[(Accuracy("backbone"), Accuracy("cram_smram"))].main
    assert effect(by_pair[(Accuracy("backbone"), Accuracy("cram"))]) == 1.3
    assert effect(by_pair[(Accuracy("cram"), Accuracy("cram_smram"))]) == 0.4
    assert effect(by_pair[(Accuracy("cbam"), Accuracy("cram"))]) is None
    # the cpu profile's VGG-16 on the synthetic set: the same CUB gains, labelled with the paper's setting
    vgg = resolve(paper.STUDY, {"profile": "cpu"})
    vgg_claims, not_measured = paper.claims(vgg)
    printed = {c.text: (effect(c), c.paper_setting) for c in vgg_claims if effect(c) is not None}
    assert printed == {"Table 3: CRA-SMRA (+ CRAM + SMRAM) beats the backbone": (pytest.approx(1.7),
                                                                                 "CUB-200-2011, ResNet-50"),
                       "Table 3: CRAM beats the backbone": (1.3, "CUB-200-2011, ResNet-50"),
                       "Table 3: SMRAM adds a further gain to CRAM": (0.4, "CUB-200-2011, ResNet-50")}
    assert not any("compares our arms only" in note for note in not_measured)

    class Run:   # the paper's own setting: no label
        dataset, backbone = "aircraft", "resnet50"
    assert paper.paper_setting(Run) == ""
    Run.backbone = "densenet161"
    assert paper.paper_setting(Run) == "FGVC-Aircraft, ResNet-50"
    Run.dataset, Run.backbone = "synthetic", "resnet50"    # CUB-200-2011's column, not its data
    assert paper.paper_setting(Run) == "CUB-200-2011, ResNet-50"
    Run.dataset = "inat"                                   # a dataset the paper prints no column for
    assert paper.paper_setting(Run) == ""


def test_overlap_claim_reads_more_overlap_as_against_the_paper():
    from fgvc_lib.statistics import against_paper, verdict

    claims, _ = paper.claims(resolve(paper.STUDY, {"profile": "cpu"}))
    overlap = next(c for c in claims if "overlap less" in c.text)
    # effect = B - A = (+ CRAM + SMRAM's overlap) - (+ CRAM's): positive is more overlap, against the paper
    assert overlap.pairs == ((Score(f"+ CRAM: {paper.MAP_OVERLAP}"), Score(f"+ CRAM + SMRAM: {paper.MAP_OVERLAP}")),)
    assert overlap.direction == -1 and "negative supports the paper" in overlap.note
    m = overlap.smallest_effect
    assert verdict(3.0, 6.0, overlap.direction, overlap.kind, m) == "reversed"     # more overlap
    assert verdict(-6.0, -3.0, overlap.direction, overlap.kind, m) == "held"       # less overlap
    assert against_paper(3.0, 6.0, -4.0, overlap.direction) == "smaller than the paper's"


def test_delta_notes_declare_the_degenerate_range_and_the_new_claims():
    settings = resolve(paper.STUDY, {"profile": "cpu"})
    claims, not_measured = paper.claims(settings)
    notes = {c.text: c.note for c in claims if c.text.startswith("Table 4")}
    assert set(notes) == {f"Table 4: delta = 0.9 beats delta = {v:g}" for v in (0.5, 0.7, 1.0)}
    assert "within 0.69 of the top" in notes["Table 4: delta = 0.9 beats delta = 0.5"]   # -ln 0.5
    assert "within 0.36 of the top" in notes["Table 4: delta = 0.9 beats delta = 0.7"]   # -ln 0.7
    assert "top channel and any tied with it" in notes["Table 4: delta = 0.9 beats delta = 1"]
    assert all("1/e (0.37) suppresses all channels" in note for note in notes.values())
    assert "every channel (a uniform scale: degenerate)" in paper.delta_note(0.3)
    assert paper.DEGENERATE_DELTA == pytest.approx(0.36788, abs=1e-5)
    salient = next(c for c in claims if "most salient parts" in c.text)
    assert salient.pairs == ((Score(f"backbone: {paper.DISTINCT_PARTS}"),
                              Score(f"+ CRAM + SMRAM: {paper.DISTINCT_PARTS}")),) and salient.direction == 1
    assert any("information-poor channels" in note for note in not_measured)
    assert any("reduces computing resources" in note for note in not_measured)


@pytest.mark.usefixtures("private_dirs")
def test_loss_pairing_option_leaves_the_default_loss_alone():
    from fgvc_lib.models.cra_smra import CRASMRALoss, StagePairedCRASMRALoss
    from fgvc_lib.study.jobs import describe

    default = Study(paper.STUDY, profile="cpu").variants
    other = Study(paper.STUDY, profile="cpu", loss_pairing="stages").variants
    assert all(type(v.loss) is CRASMRALoss for v in default.values())
    assert all(type(v.loss) is StagePairedCRASMRALoss for v in other.values())
    # the default loss is described (and keyed) as before the option: its type and its config only
    assert describe(default["cram_smram"].loss) == {"type": "fgvc_lib.models.cra_smra.CRASMRALoss",
                                                   "state": {"config": describe(default["cram_smram"].loss.config)}}
    assert describe(other["cram_smram"].loss) != describe(default["cram_smram"].loss)
    with pytest.raises(ValueError, match="parameter loss_pairing"):
        resolve(paper.STUDY, {"profile": "cpu", "loss_pairing": "overall"})


def test_gamma_zero_reads_the_cram_arm_whose_config_differs_only_by_smram():
    settings = resolve(paper.STUDY, {"profile": "cpu"})
    full = paper.model_config(settings, "cram_smram", gamma=0.0)
    cram = paper.model_config(settings, "cram")
    assert paper.sweep_variant(settings, "gamma", 0.0) == "cram"
    assert full.replace(smram=False, gamma=cram.gamma) == cram


def test_cost_claim_by_hand_and_counts_of_tiny_networks():
    from fgvc_lib.backbones import build_backbone
    from fgvc_lib.complexity import count_parameters
    from fgvc_lib.models.cra_smra import CRASMRAConfig, build_cra_smra

    test, train = paper.cost_claims({"params": 1000, "macs": 50000}, {"params": 1004, "macs": 50100}, 1030)
    (reference, ours), = test.pairs
    assert ours.value - reference.value == pytest.approx(100.0 * 4 / 1000)   # params +0.4 %, the larger of it and MACs +0.2 %
    (reference, ours), = train.pairs
    assert ours.value - reference.value == pytest.approx(100.0 * 30 / 1000)
    assert all(c.kind == "similar" and c.measured_as == "count" for c in (test, train))
    from fgvc_lib.statistics import fixed_effect
    assert fixed_effect(0.4, 1, "similar", test.smallest_effect).verdict == "held"      # within 1 % of the count
    assert fixed_effect(3.0, 1, "similar", train.smallest_effect).verdict == "reversed"
    torch.manual_seed(0)
    models = {name: build_cra_smra(build_backbone("vgg16", width=0.125, batch_norm=True), 3,
                                   CRASMRAConfig(attention=attention, smram=smram))
              for name, attention, smram in (("backbone", "none", False), ("cram", "cram", False),
                                             ("full", "cram", True))}
    counts = paper.cost_counts(models, 32)
    assert counts["full"]["macs"] == counts["cram"]["macs"] > counts["backbone"]["macs"]   # SMRAM: training only
    assert counts["full"]["params"] - counts["cram"]["params"] == count_parameters(models["full"].smram)
    # CRAM adds the shared MLPs: 2 * (C * C//16 + C//16) + C per site
    mlp = sum(2 * (c * (c // 16)) + (c // 16) + c for c in (32, 64, 64))
    assert counts["cram"]["params"] - counts["backbone"]["params"] == mlp


def _tiny_cram_model(delta):
    from fgvc_lib.backbones import build_backbone
    from fgvc_lib.models.cra_smra import CRASMRAConfig, build_cra_smra

    torch.manual_seed(1)
    return build_cra_smra(build_backbone("vgg16", width=0.125, batch_norm=True), 3,
                          CRASMRAConfig(smram=False, delta=delta, omega=0.5))


def test_suppressed_channel_shares_by_hand():
    import math

    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model = _tiny_cram_model(0.97).train()
    shares = cra_smra_views.suppressed_channel_shares(model, images, batch_size=2)
    assert model.training   # mode restored
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert list(shares) == list(model.stages)
    for stage in model.stages:
        importance = out.extras["channel_importance"][stage].tolist()
        mask = out.extras["suppression_mask"][stage]
        for b, values in enumerate(importance):
            top = max(values)
            # suppressed: I_c >= I_max + ln(delta), written out
            expected = 100.0 * sum(v >= top + math.log(0.97) - 1e-12 for v in values) / len(values)
            assert shares[stage]["suppressed"][b] == pytest.approx(expected)
            assert shares[stage]["suppressed"][b] == pytest.approx(100.0 * (mask[b] == 0.5).double().mean().item())
            assert shares[stage]["spread"][b] == pytest.approx(top - min(values), rel=1e-5)
    degenerate = cra_smra_views.suppressed_channel_shares(_tiny_cram_model(0.3), images)
    assert all((v["suppressed"] == 100.0).all() for v in degenerate.values())
    table = cra_smra_views.suppression_table({"delta = 0.3": [_tiny_cram_model(0.3)],
                                              "delta = 0.97": [model, _tiny_cram_model(0.97)]}, images)
    assert list(table.index.get_level_values("model").unique()) == ["delta = 0.3", "delta = 0.97"]
    assert (table.loc["delta = 0.3", "suppressed channels (%)"] == 100.0).all()
    assert table.loc["delta = 0.97", "window -ln(delta)"].iloc[0] == pytest.approx(-math.log(0.97))
    assert (table.loc["delta = 0.97", "n_seeds"] == 2).all()
    assert cra_smra_views.suppressed_channel_shares(
        build_model_without_cram(), images) == {}
    cra_smra_views.suppression_figure(table)


def build_model_without_cram():
    from fgvc_lib.backbones import build_backbone
    from fgvc_lib.models.cra_smra import CRASMRAConfig, build_cra_smra

    return build_cra_smra(build_backbone("vgg16", width=0.125, batch_norm=True), 3,
                          CRASMRAConfig(attention="none", smram=False))


@pytest.mark.parametrize("params,message", [
    ({"delta": 1.5}, "parameter delta: must be in \\(0, 1\\]"),
    ({"omega": 0.0}, "parameter omega: must be in \\(0, 1\\]"),
    ({"gamma": -1}, "parameter gamma: must be a number >= 0"),
    ({"variant": "se"}, "parameter variant: got 'se'"),
    ({"backbone": "resnet34"}, "parameter backbone: unknown backbone 'resnet34'"),
])
def test_bad_parameters_stop_with_a_message(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(paper.STUDY, {"profile": "cpu", **params})


def test_stage_map_scores_by_hand(monkeypatch):
    # two 8 x 8 images; part boxes (x, y, w, h): image 0 has parts A (top-left) and B (bottom-right)
    maps = torch.zeros(2, 3, 8, 8)
    maps[0, 0, 1, 1] = maps[0, 1, 6, 6] = maps[0, 2, 1, 2] = 1.0     # stages peak on A, B, A
    maps[1, :, 4, 4] = 1.0                                         # every stage peaks at the same spot
    monkeypatch.setattr(cra_smra_views, "upsampled_stage_maps", lambda model, images: maps)

    class Sample:
        images = torch.zeros(2, 3, 8, 8)
        has_parts = True
        part_boxes = [[(0, 0, 4, 4), (5, 5, 3, 3)], [(3, 3, 3, 3)]]

    scores = cra_smra_views.stage_map_scores(None, Sample)
    assert scores["distinct parts"] == pytest.approx([100.0 * 2 / 2, 100.0 * 1 / 1])
    assert scores["stage3 part pointing"] == pytest.approx([100, 100])
    # overlap, literally: each map minus its minimum, over its sum; h = sum_j max_l / 3; (1 - h) / (1 - 1/3)
    expected = []
    for image in range(2):
        dists = []
        for stage in range(3):
            m = maps[image, stage].numpy().astype(float)
            m = m - m.min()
            dists.append(m / m.sum())
        h = sum(max(d[y, x] for d in dists) for y in range(8) for x in range(8)) / 3
        expected.append(100.0 * (1 - h) / (1 - 1 / 3))
    assert scores["stage maps overlap"] == pytest.approx(expected)
    assert expected == pytest.approx([0.0, 100.0])


def test_stage_map_scores_without_parts_give_the_overlap_alone(monkeypatch):
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, :, 0, 0] = 1.0
    monkeypatch.setattr(cra_smra_views, "upsampled_stage_maps", lambda model, images: maps)

    class Sample:
        images = torch.zeros(1, 3, 4, 4)
        has_parts = False
        part_boxes = [[]]

    assert list(cra_smra_views.stage_map_scores(None, Sample)) == ["stage maps overlap"]


def test_suppression_table_is_written(tmp_path):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    table = cra_smra_views.suppression_table({"delta = 0.3": [_tiny_cram_model(0.3)]}, images)
    path = cra_smra_views.write_suppression(table, tmp_path)
    import pandas as pd
    back = pd.read_csv(path)
    assert list(back["site"]) == list(table.index.get_level_values("site"))
    assert (back["suppressed channels (%)"] == 100.0).all()
