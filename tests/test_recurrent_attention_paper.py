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
