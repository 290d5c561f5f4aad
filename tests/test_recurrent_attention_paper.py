"""Recurrent attention's printed numbers (fgvc_lib.papers.recurrent_attention), pinned cell by cell against
the thesis's Tables 5.1, 5.2, 6.1 and 6.2, and the paper's effects the runner computes from them."""
import tempfile

import pytest

from fgvc_lib.papers import recurrent_attention as paper
from fgvc_lib.study import Accuracy, Claim, Printed

CUB, DOGS = "CUB-200-2011", "Stanford Dogs"


def test_tables_5_every_printed_cell():
    assert paper.STUDY.printed["table5"] == {"VGG19": {CUB: 77.8, DOGS: 77.2},
                                             "VGG19 + local-stream": {CUB: 79.8, DOGS: 78.7}}
    assert [paper.STUDY.column(d) for d in ("cub", "dogs", "synthetic", "cars")] == [CUB, DOGS, CUB, None]
    assert paper.STUDY.printed_value(Printed("table5", "VGG19 + local-stream"), "dogs") == 78.7


def test_table_6_1_every_printed_cell():
    assert paper.STUDY.printed["table6_1"] == {
        "VGG19": {CUB: 77.80}, "VGG19 + local-stream (CNN only)": {CUB: 77.79},
        "VGG19 + local-stream (CNN + LSTM)": {CUB: 78.20}, "VGG19 + local-stream (CNN + LSTM + attention)": {CUB: 79.60}}
    assert list(paper.TABLE6_1_ROWS.values()) == list(paper.STUDY.printed["table6_1"])   # every row has its arm
    assert paper.STUDY.printed_value(Printed("table6_1", "VGG19"), "dogs") is None           # CUB only


def test_table_6_2_every_printed_cell():
    table = paper.STUDY.printed["table6_2"]
    assert [table[paper.sum_row(k)] for k in range(1, 11)] == [{CUB: v} for v in (
        78.90, 78.78, 79.18, 78.75, 77.04, 75.32, 72.97, 71.01, 69.21, 67.64)]
    assert table["Attention"] == {CUB: 79.60} and len(table) == paper.TIME_STEPS + 1
    assert paper.BEST_SUM == 3                                       # 79.18, the highest printed sum


def _cells_and_claims(**parameters):
    from fgvc_lib.study.parameters import resolve

    settings = resolve(paper.STUDY, {"profile": "smoke", **parameters})
    return settings, paper.cells(settings), paper.claims(settings)[0]


def _effects(dataset, **parameters):
    """The paper's effect of every claim, as the runner computes it from the claim's printed cells."""
    settings, _, claims = _cells_and_claims(profile="paper", dataset=dataset, data_root=tempfile.gettempdir(), **parameters)
    return {c.text: paper.STUDY.paper_effect(c, settings.dataset) for c in claims}


def test_the_runner_computes_every_printed_effect():
    cub, dogs = _effects("cub"), _effects("dogs")
    local = "Tables 5.1-5.2: the local stream adds accuracy to the baseline"
    within = "Tables 5.1-5.2, within each run: the joint prediction beats the same model's global stream alone"
    assert cub[local] == cub[within] == pytest.approx(2.0) and dogs[local] == dogs[within] == pytest.approx(1.5)
    assert cub["Table 6.1: a local stream of the CNN alone adds no accuracy"] == pytest.approx(-0.01)
    assert cub["Table 6.1: the LSTM adds accuracy to the CNN-only local stream"] == pytest.approx(0.41)
    assert cub["Table 6.1: step attention adds accuracy to the LSTM"] == pytest.approx(1.40)
    assert cub["Table 6.2: attention beats the mean of all 10 step features"] == pytest.approx(11.96)
    # 78.90 (step 1) - 67.64 (steps 1..10)
    assert cub["Table 6.2: pooling more steps hurts: step 1 alone beats the mean of steps 1..10"] == pytest.approx(11.26)
    assert cub["Table 6.2: attention beats the mean of the best printed sum's steps (1..3)"] == pytest.approx(0.42)
    # Tables 6.1-6.2 print CUB only: no effect beside Stanford Dogs
    assert dogs["Table 6.1: step attention adds accuracy to the LSTM"] is None
    assert dogs["Table 6.2: attention beats the mean of all 10 step features"] is None
    # attention over the first step alone: no claim of ours, the runner's arithmetic on Table 6.2's cells
    over_step_1 = Claim("attention beats step 1", ((Accuracy("a"), Accuracy("b")),),
                        printed=((Printed("table6_2", "1"), Printed("table6_2", "Attention")),))
    assert paper.STUDY.paper_effect(over_step_1, "cub") == pytest.approx(0.70)


def test_printed_numbers_sit_beside_vgg_streams_only():
    def numbers(settings, cells):
        return {(c.table, c.row): paper.STUDY.cell_number(c, settings.dataset) for c in cells}

    def effect(settings, claim):
        return paper.STUDY.paper_effect(claim, settings.dataset)

    settings, cells, claims = _cells_and_claims(backbone="vgg19")
    printed = {key: number for key, number in numbers(settings, cells).items() if number is not None}
    assert printed[("table5", "VGG19")] == 77.8 and printed[("table5", "VGG19 + local-stream (attention)")] == 79.8
    assert printed[("table6_1", "VGG19 + local-stream (CNN + LSTM)")] == 78.20
    assert [printed[("table6_2", r)] for r in ("1", "1 ~ 5", "1 ~ 10", "Attention")] == [78.90, 77.04, 67.64, 79.60]
    # the within-run comparison is the main claim; Table 5.1's gain is the reference of both local-stream claims
    assert claims[0].main and claims[0].text.startswith("Tables 5.1-5.2, within each run")
    assert effect(settings, claims[0]) == pytest.approx(2.0) and effect(settings, claims[1]) == pytest.approx(2.0)
    assert not claims[1].main and claims[2].kind == "similar" and effect(settings, claims[2]) is None
    # the synthetic set stands in for CUB-200-2011: the printed numbers are labelled, even beside VGG-19
    assert claims[0].paper_setting == "CUB-200-2011, VGG19"
    settings, cells_cpu, claims_cpu = _cells_and_claims()    # the slim VGG-16 on the synthetic set: labelled
    assert {c.paper_setting for c in cells_cpu if paper.STUDY.cell_number(c, settings.dataset) is not None} == \
        {"CUB-200-2011, VGG19"}
    assert claims_cpu[0].paper_setting == "CUB-200-2011, VGG19" and claims_cpu[2].paper_setting == ""
    # the CPU profiles' slim VGG-16 stands in for VGG-19
    assert [n for (table, _), n in numbers(settings, cells_cpu).items() if table == "table5"] == [77.8, 79.8, None]
    settings, cells, claims = _cells_and_claims(backbone="resnet50")   # not the paper's network: our arms only
    assert all(n is None for n in numbers(settings, cells).values())
    assert all(effect(settings, c) is None for c in claims)
    settings, cells, _ = _cells_and_claims(backbone="vgg19", time_steps=6)   # other T: Table 6.2 is not the paper's
    assert all(n is None for (table, _), n in numbers(settings, cells).items() if table == "table6_2")
    for other in ({"variant": "cnn"}, {"self_attention": "on"}):      # Table 5's row 2 is the full local stream
        settings, cells, claims = _cells_and_claims(backbone="vgg19", **other)
        assert [n for (table, _), n in numbers(settings, cells).items() if table == "table5"] == [77.8, None, None]
        assert claims[0].main and effect(settings, claims[0]) is None
    settings, cells, claims = _cells_and_claims(backbone="vgg19", patch_backbone="resnet34")   # not the paper's streams
    assert all(n is None for n in numbers(settings, cells).values())
    assert all(effect(settings, c) is None for c in claims)
    # on Stanford Dogs itself, with the paper's VGG-19 streams: Table 5.2 unlabelled, Tables 6.1-6.2 blank
    settings, cells, claims = _cells_and_claims(profile="paper", dataset="dogs", data_root=tempfile.gettempdir())
    shown = {key: n for key, n in numbers(settings, cells).items() if n is not None}
    assert shown == {("table5", "VGG19"): 77.2, ("table5", "VGG19 + local-stream (attention)"): 78.7}
    assert {c.paper_setting for c in cells + claims} == {""}


def test_every_arm_and_the_seeds_it_trains():
    from fgvc_lib.study import Study

    settings, _, claims = _cells_and_claims(seeds="0,1,2,3", profile="cpu")
    tiers = {v.name: v.seed_tier for v in paper.plan(settings)}   # the plan names each arm's tier, the runner
    assert tiers == {"baseline": "main", "attention": "main", "cnn": "ablation", "lstm": "ablation",  # applies it
                     "attention_sa": "ablation"}
    variants = {name: v.seeds for name, v in Study(paper.STUDY, seeds="0,1,2,3", profile="cpu").variants.items()}
    assert variants == {"baseline": (0, 1, 2, 3), "attention": (0, 1, 2, 3), "cnn": (0, 1, 2), "lstm": (0, 1, 2),
                        "attention_sa": (0, 1, 2)}
    assert [c.main for c in claims].count(True) == 1
