"""Recurrent attention's printed numbers (fgvc_lib.papers.recurrent_attention), pinned cell by cell against
the thesis's Tables 5.1, 5.2, 6.1 and 6.2."""
import pytest

from fgvc_lib.papers import recurrent_attention as paper


def test_tables_5_every_printed_cell():
    assert paper.TABLE5 == {"cub": (77.8, 79.8), "dogs": (77.2, 78.7)}
    assert paper.local_stream_gain("cub") == pytest.approx(2.0)
    assert paper.local_stream_gain("dogs") == pytest.approx(1.5)


def test_table_6_1_every_printed_cell():
    assert paper.TABLE6_1 == {"baseline": 77.80, "cnn": 77.79, "lstm": 78.20, "attention": 79.60}
    assert paper.component_gain("cnn", "lstm") == pytest.approx(0.41)
    assert paper.component_gain("lstm", "attention") == pytest.approx(1.40)


def test_table_6_2_every_printed_cell():
    assert paper.TABLE6_2_SUMS == (78.90, 78.78, 79.18, 78.75, 77.04, 75.32, 72.97, 71.01, 69.21, 67.64)
    assert paper.TABLE6_2_ATTENTION == 79.60 and paper.TIME_STEPS == len(paper.TABLE6_2_SUMS)
    assert paper.attention_over_sum(10) == pytest.approx(11.96)
    assert paper.attention_over_sum(1) == pytest.approx(0.70)
    assert paper.sum_decline() == pytest.approx(11.26)              # 78.90 (step 1) - 67.64 (steps 1..10)
    assert paper.best_sum_k() == 3 and paper.attention_over_sum(3) == pytest.approx(0.42)


def _cells_and_claims(**parameters):
    from fgvc_lib.study.parameters import resolve

    settings = resolve(paper.STUDY, {"profile": "smoke", **parameters})
    return settings, paper.cells(settings), paper.claims(settings)[0]


def test_printed_numbers_sit_beside_vgg_streams_only():
    _, cells, claims = _cells_and_claims(backbone="vgg19")
    printed = {(c.table, c.row): c.paper for c in cells if c.paper is not None}
    assert printed[("table5", "VGG19")] == 77.8 and printed[("table5", "VGG19 + local-stream (attention)")] == 79.8
    assert printed[("table6_1", "VGG19 + local-stream (CNN + LSTM)")] == 78.20
    assert [printed[("table6_2", r)] for r in ("1", "1 ~ 5", "1 ~ 10", "Attention")] == [78.90, 77.04, 67.64, 79.60]
    # the within-run comparison is the main claim; Table 5.1's gain is the reference of both local-stream claims
    assert claims[0].main and claims[0].text.startswith("Tables 5.1-5.2, within each run")
    assert claims[0].paper_effect == pytest.approx(2.0) and claims[1].paper_effect == pytest.approx(2.0)
    assert not claims[1].main and claims[2].kind == "similar" and claims[2].paper_effect is None
    # the synthetic set stands in for CUB-200-2011: the printed numbers are labelled, even beside VGG-19
    assert claims[0].paper_setting == "CUB-200-2011, VGG19"
    _, cells_cpu, claims_cpu = _cells_and_claims()          # the slim VGG-16 on the synthetic set: labelled
    assert {c.paper_setting for c in cells_cpu if c.paper is not None} == {"CUB-200-2011, VGG19"}
    assert claims_cpu[0].paper_setting == "CUB-200-2011, VGG19" and claims_cpu[2].paper_setting == ""
    _, cells, claims = _cells_and_claims()       # the CPU profiles' slim VGG-16 stands in for VGG-19
    assert [c.paper for c in cells if c.table == "table5"] == [77.8, 79.8, None]
    _, cells, claims = _cells_and_claims(backbone="resnet50")   # not the paper's network: our arms only
    assert all(c.paper is None for c in cells) and all(c.paper_effect is None for c in claims)
    _, cells, _ = _cells_and_claims(backbone="vgg19", time_steps=6)   # other T: Table 6.2 is not the paper's
    assert all(c.paper is None for c in cells if c.table == "table6_2")
    for other in ({"variant": "cnn"}, {"self_attention": "on"}):      # Table 5's row 2 is the full local stream
        _, cells, claims = _cells_and_claims(backbone="vgg19", **other)
        assert [c.paper for c in cells if c.table == "table5"] == [77.8, None, None]
        assert claims[0].main and claims[0].paper_effect is None
    _, cells, claims = _cells_and_claims(backbone="vgg19", patch_backbone="resnet34")   # not the paper's streams
    assert all(c.paper is None for c in cells) and all(c.paper_effect is None for c in claims)


def test_every_arm_and_the_seeds_it_trains():
    settings, _, claims = _cells_and_claims(seeds="0,1,2,3", profile="cpu")
    variants = {v.name: v.seeds for v in paper.plan(settings)}
    assert variants == {"baseline": (0, 1, 2, 3), "attention": (0, 1, 2, 3), "cnn": (0, 1, 2), "lstm": (0, 1, 2),
                        "attention_sa": (0, 1, 2)}
    assert [c.main for c in claims].count(True) == 1
