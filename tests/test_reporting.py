"""Results format, atomic files, claims and SUMMARY.md (fgvc_lib.reporting)."""
import math
import os
import stat

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fgvc_lib import reporting
from fgvc_lib.atomic import atomic_write_text
from fgvc_lib.reporting import (CLAIM_COLUMNS, RESULT_COLUMNS, build_summary, claim_row,
                                claims_table, markdown_table, new_figure, paper_vs_reproduced, read_claims, read_table,
                                result_row, result_rows, save_figure, seed_statistics, write_claims, write_summary,
                                write_table)
from fgvc_lib.statistics import paired_effect
from fgvc_lib.study import Accuracy, Claim


def sample_table(profile="cpu", dataset="synthetic"):
    return result_rows([{"row": "VGG-16", "values": [70.0, 72.0, 74.0], "paper": 77.8},
                        {"row": "+ attention | ours", "values": [75.5], "paper": None},
                        {"row": "+ both", "values": [80.0, 81.0], "paper": 85.1, "metric": "top5"}],
                       table="table2", dataset=dataset, backbone="vgg16", metric="top1", profile=profile)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- rows


def test_seed_statistics_and_rows():
    assert seed_statistics([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)  # ddof=1
    mean, std, n = seed_statistics(5.0)
    assert (mean, n) == (5.0, 1) and math.isnan(std)
    with pytest.raises(ValueError, match="at least one"):
        seed_statistics([])
    with pytest.raises(ValueError, match="finite"):
        seed_statistics([1.0, float("nan")])
    df = sample_table()
    assert list(df.columns) == RESULT_COLUMNS
    assert df.loc[0, "reproduced"] == 72.0 and df.loc[0, "std"] == 2.0 and df.loc[0, "n_seeds"] == 3
    assert math.isnan(df.loc[1, "paper"]) and math.isnan(df.loc[1, "std"])
    assert df.loc[2, "metric"] == "top5" and df.loc[0, "metric"] == "top1"
    with pytest.raises(ValueError, match="lacks profile"):
        result_rows([{"row": "a", "values": [1]}], table="t", dataset="d", backbone="b", metric="m")
    with pytest.raises(ValueError, match="unknown result field"):
        result_rows([{"row": "a", "values": [1], "colour": "red"}], table="t", dataset="d", backbone="b",
                    metric="m", profile="cpu")
    assert result_row(table="t", row="r", dataset="d", backbone="b", metric="m", values=[1, 3],
                      paper="", profile="smoke")["reproduced"] == 2.0


# --------------------------------------------------------------------------- writing tables


def test_write_table_round_trip(tmp_path):
    df = sample_table()
    path = write_table(df, tmp_path / "nb" / "table2.csv")
    assert path.exists() and leftovers(path.parent) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    back = read_table(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back["n_seeds"].dtype == np.int64 and back["paper"].dtype == np.float64
    assert path.read_text().splitlines()[0] == ",".join(RESULT_COLUMNS)


def test_write_table_validates_columns(tmp_path):
    df = sample_table()
    with pytest.raises(ValueError, match=r"missing column\(s\): std.*unexpected column\(s\): spread"):
        write_table(df.rename(columns={"std": "spread"}), tmp_path / "t.csv")
    with pytest.raises(ValueError, match=r"unexpected column\(s\): note"):
        write_table(df.assign(note="x"), tmp_path / "t.csv")
    with pytest.raises(ValueError, match="must hold numbers"):
        write_table(df.assign(reproduced="high"), tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()
    # columns in another order are accepted and written in the canonical order
    write_table(df[RESULT_COLUMNS[::-1]], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == ",".join(RESULT_COLUMNS)


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "table.csv"
    write_table(sample_table(), path)
    before = path.read_text()

    def half_then_crash(self, handle, *args, **kwargs):
        handle.write("table,row,dat")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_table(sample_table(), path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_table(sample_table(), tmp_path / "new.csv")
    assert path.read_text() == before
    assert not (tmp_path / "new.csv").exists()
    assert leftovers(tmp_path) == []


def test_atomic_text_and_figure(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "a" / "note.md", "héllo\nworld\n")
    assert target.read_text(encoding="utf-8") == "héllo\nworld\n"
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "fig.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 1000 < len(data) < 60_000
    with pytest.raises(ValueError, match=".png"):
        save_figure(fig, tmp_path / "fig.jpg")
    shown = new_figure(figsize=(1, 1))  # displays itself in Jupyter without pyplot
    shown.subplots().plot([0, 1])
    assert isinstance(shown, Figure) and shown._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"

    def crash(*args, **kwargs):
        raise OSError("no space left")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "a" / "note.md", "partial")
    assert target.read_text(encoding="utf-8") == "héllo\nworld\n"
    assert leftovers(tmp_path / "a") == []


def test_atomic_torch_save_keeps_the_old_file_when_saving_fails(tmp_path, monkeypatch):
    import torch

    from fgvc_lib.atomic import atomic_torch_save

    path = atomic_torch_save({"w": torch.ones(3)}, tmp_path / "state.pt")
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))

    def half_written(obj, handle):
        handle.write(b"half")
        raise OSError("killed")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="killed"):
        atomic_torch_save({"w": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- display


def test_paper_vs_reproduced():
    shown = paper_vs_reproduced(sample_table())
    assert shown.index.names == ["metric", "row"]  # only the varying keys plus row
    assert list(shown.columns) == ["paper", "reproduced", "delta", "n_seeds", "comparable"]
    first = shown.loc[("top1", "VGG-16")]
    assert first["reproduced"] == "72.00 ± 2.00" and first["delta"] == pytest.approx(-5.8)
    assert not first["comparable"]
    single = shown.loc[("top1", "+ attention | ours")]
    assert single["reproduced"] == "75.50" and math.isnan(single["delta"])
    real = paper_vs_reproduced(sample_table(profile="paper", dataset="cub"))
    assert real["comparable"].all()
    assert not paper_vs_reproduced(sample_table(profile="paper", dataset="synthetic"))["comparable"].any()


# --------------------------------------------------------------------------- claims


def claim_from_seeds(text, paper_effect, a_values, b_values, main=False, note=""):
    """A claims-table row from per-seed values of two arms (one value per seed, no per-image values)."""
    differences = (np.asarray(b_values, float) - np.asarray(a_values, float))[:, None]
    claim = Claim(text, ((Accuracy("a"), Accuracy("b")),), paper_effect,
                  direction=1 if paper_effect is None or paper_effect >= 0 else -1, main=main, note=note)
    return claim_row(claim, paired_effect([differences], claim.direction))


def test_claim_rows_and_round_trip(tmp_path):
    claims = claims_table([
        claim_from_seeds("attention beats baseline", 4.6, [70, 71, 72], [74, 75.5, 76]),
        claim_from_seeds("part branch hurts", 1.2, [70, 71, 72], [66, 65, 67]),
        claim_from_seeds("ordering A < B", None, [0] * 5, [0.3, -0.2, 0.1, 0.0, 0.2], note="a sign only"),
        claim_from_seeds("single seed", 1.0, [1.0], [4.0]),
        claim_from_seeds("main comparison", 1.0, [0, 0, 0, 0, 0], [1, 4, 2, 6, 3], main=True),
    ])
    assert list(claims.columns) == CLAIM_COLUMNS
    assert claims["verdict"].tolist() == ["held", "reversed", "no effect", "inconclusive", "held"]
    assert claims.loc[0, "n_seeds"] == 3 and claims.loc[0, "our_effect"] == pytest.approx(4.1666666)
    assert math.isnan(claims.loc[2, "paper_effect"]) and math.isnan(claims.loc[3, "our_std"])
    assert math.isnan(claims.loc[3, "ci_low"]) and claims.loc[3, "note"] == "one seed: spread unknown"
    assert claims.loc[2, "note"] == "a sign only" and claims.loc[4, "half_width_target"] == 2.0
    assert claims["main"].tolist() == [False, False, False, False, True]
    assert claims["direction"].tolist() == [1, 1, 1, 1, 1] and set(claims["measure"]) == {"accuracy"}
    # 4.6 printed, ours 4.17 [2.7, 5.6]: as large; 1.2 printed, ours -5 (reversed): smaller
    assert claims["against_paper"].tolist() == ["as large as the paper's", "smaller than the paper's", "", "",
                                                "as large as the paper's"]
    # the main comparison (mean 3.2, sd 1.92 over 5 seeds): half-width 2.39 > 2, needs more seeds
    assert claims.loc[4, "ci_high"] - claims.loc[4, "ci_low"] > 4.0 and claims.loc[4, "seeds_needed"] > 5
    path = write_claims(claims, tmp_path / "claims.csv")
    pd.testing.assert_frame_equal(read_claims(path), claims, check_dtype=False)
    # an empty seeds_needed says why: too many seeds (a spread over seeds of tens of points) or too few images
    rng = np.random.default_rng(3)
    seeds_bound = rng.normal(0, 30, (5, 1)) + rng.normal(0, 5, (5, 1200))
    images_bound = rng.normal(0, 40, (1, 20)) + rng.normal(0, 1, (5, 20))
    claim = Claim("wide", ((Accuracy("a"), Accuracy("b")),), None, main=True)
    notes = [claim_row(claim, paired_effect([m]))["note"] for m in (seeds_bound, images_bound)]
    assert notes == ["more than 200 seeds needed", "more seeds cannot reach the target width: more test images needed"]
    bad = claims.to_dict("records")[0]
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims_table([{**bad, "verdict": "maybe"}])
    with pytest.raises(ValueError, match="lacks"):
        claims_table([{"claim": "x", "paper_effect": 1}])
    with pytest.raises(ValueError, match=r"missing column\(s\): verdict"):
        write_claims(claims.drop(columns="verdict"), tmp_path / "c.csv")


# --------------------------------------------------------------------------- summary


def test_markdown_table_escapes_and_formats():
    text = markdown_table(pd.DataFrame({"a": ["x|y", "line\nbreak"], "b": [1 / 3, float("nan")]}))
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 0.3333 |", "| line break |  |"]


def test_summary_from_fake_results_dir(tmp_path):
    results = tmp_path / "results"
    assert "No results yet" in build_summary(results)  # directory does not even exist
    results.mkdir()
    assert "No results yet" in build_summary(results)

    clan = results / "03_clan"
    write_table(sample_table(), clan / "table2.csv")
    write_claims(claims_table([claim_from_seeds("CLAN beats VGG-16", 3.1, [70, 71, 72], [74, 75, 76]),
                               claim_from_seeds("A | B", -1.0, [1, 2, 3], [1.5, 1.8, 3.4])]), clan / "claims.csv")
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    save_figure(fig, clan / "fig 3 cams.png")
    (results / "03_clan.ipynb").write_text("{}")
    ssa = results / "05_ssanet"
    save_figure(fig, ssa / "fig4.png")  # figures but no claims yet
    (results / "empty").mkdir()

    path = write_summary(results)
    text = path.read_text()
    assert path == results / "SUMMARY.md" and text == build_summary(results)
    assert "Profile(s): cpu." in text and "not comparable" in text
    assert text.index("## 03_clan") < text.index("## 05_ssanet")
    assert "## empty" not in text
    assert ("| claim | measure | direction | paper_effect | paper_setting | our_effect | ci_low | ci_high "
            "| p_improvement | n_seeds | verdict | against_paper | seeds_needed | note |") in text
    assert ("| CLAN beats VGG-16 | accuracy | 1 | 3.1 |  | 4 | 4 | 4 | 1 | 3 | held | larger than the paper's "
            "|  |  |") in text
    assert "A \\| B" in text and "Verdict rule" in text and "within +-m" in text and "accuracy 1 (top-1" in text
    assert ("1 held, 0 reversed, 0 no effect, 1 inconclusive (0 of the decided ones below the smallest effect of "
            "interest); against the paper's printed effect: 0 as large as the paper's, 1 smaller than the "
            "paper's, 1 larger than the paper's, 0 not compared (a claim of no difference, or no interval), 0 with "
            "no printed effect.") in text
    overall = text[text.index("### Claims over all notebooks"):text.index("## 03_clan")]
    assert "| 03_clan | 1 | 0 | 0 | 1 | 0 | 0 | 1 | 1 | 0 | 0 |" in overall
    assert "| all | 1 | 0 | 0 | 1 | 0 | 0 | 1 | 1 | 0 | 0 |" in overall
    assert "Of the 2 claims of a difference measured with an interval, 1 are decided" in overall
    assert "chance alone would decide at most about 0.1 of them" in overall
    assert "1 of the decided verdicts still exclude 0" in overall
    assert "![fig 3 cams](03_clan/fig%203%20cams.png)" in text
    assert "[table2.csv](03_clan/table2.csv)" in text and "[03_clan.ipynb](03_clan.ipynb)" in text
    assert "![fig4](05_ssanet/fig4.png)" in text and "No claims table written" in text
    assert leftovers(results) == []


def test_summary_states_comparable_paper_runs(tmp_path):
    folder = tmp_path / "01_cra_cnn" / "paper"  # a paper-profile run has its own folder
    write_table(sample_table(profile="paper", dataset="cub"), folder / "table1.csv")
    text = build_summary(tmp_path)
    assert "Profile(s): paper." in text and "not comparable" not in text
    assert "## 01_cra_cnn (profile paper)" in text and "## 01_cra_cnn\n" not in text
    assert "No claims table written" in text
    (folder / "claims.csv").write_text("garbage,only\n1,2\n")
    assert "could not be read" in build_summary(tmp_path)


def _claims(*pairs):
    return claims_table([claim_from_seeds(name, 1.0, a, b) for name, a, b in pairs])


def test_summary_has_a_section_per_profile_folder(tmp_path):
    results = tmp_path / "results"
    ssa = results / "05_ssanet"
    write_table(sample_table(profile="cpu"), ssa / "table2.csv")
    write_claims(_claims(("plus beats baseline", [1, 2, 3], [5, 6, 7])), ssa / "claims.csv")
    (ssa / "05_ssanet.ipynb").write_text("{}")
    smoke = ssa / "smoke"
    write_table(sample_table(profile="smoke"), smoke / "table2.csv")
    write_claims(_claims(("plus beats baseline", [1], [2]), ("alpha beats plus", [1], [0])), smoke / "claims.csv")
    (smoke / "05_ssanet.ipynb").write_text("{}")
    write_table(sample_table(profile="paper", dataset="cub"), ssa / "paper" / "table2.csv")
    write_table(sample_table(profile="smoke"), results / "03_clan" / "smoke" / "table1.csv")  # no default run
    write_table(sample_table(profile="cpu"), ssa / "scratch" / "table9.csv")  # not a profile: left out
    (ssa / "cpu").mkdir()  # the default profile never gets a subfolder; an empty one is ignored

    text = build_summary(results)
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    assert titles == ["## 03_clan (profile smoke)", "## 05_ssanet", "## 05_ssanet (profile paper)",
                      "## 05_ssanet (profile smoke)"]
    assert "Profile(s): cpu, paper, smoke." in text and "not comparable" in text
    sections = {title: body for title, body in zip(titles, text.split("\n## ")[1:])}
    assert sections["## 05_ssanet"].count("Profile: cpu (default)") == 1
    for title in titles[:1] + titles[2:]:
        profile = title.split("profile ")[1].rstrip(")")
        assert f"Profile: {profile} (not the default cpu" in sections[title]
    assert "[05_ssanet.ipynb](05_ssanet/05_ssanet.ipynb)" in sections["## 05_ssanet"]
    assert "smoke/" not in sections["## 05_ssanet"] and "scratch" not in text
    assert "[05_ssanet.ipynb](05_ssanet/smoke/05_ssanet.ipynb)" in sections["## 05_ssanet (profile smoke)"]
    assert "[table2.csv](05_ssanet/smoke/table2.csv)" in sections["## 05_ssanet (profile smoke)"]
    assert "[table1.csv](03_clan/smoke/table1.csv)" in sections["## 03_clan (profile smoke)"]
    assert "Warning" not in text
    # claims of different profiles are counted apart, the default profile first
    headings = [line for line in text.splitlines() if line.startswith("### Claims over")]
    assert headings == ["### Claims over all notebooks (profile cpu)", "### Claims over all notebooks (profile paper)",
                        "### Claims over all notebooks (profile smoke)"]
    cpu = text[text.index(headings[0]):text.index(headings[1])]
    smoke = text[text.index(headings[2]):text.index("## 03_clan")]
    assert "| all | 1 | 0 | 0 | 0 |" in cpu and "| all | 0 | 0 | 0 | 2 |" in smoke
    assert "No claims table." in text[text.index(headings[1]):text.index(headings[2])]


def test_summary_warns_when_a_folder_holds_another_profile_s_tables(tmp_path):
    # What an old smoke run left in the default folder before runs were split by profile.
    write_table(sample_table(profile="smoke"), tmp_path / "05_ssanet" / "table2.csv")
    text = build_summary(tmp_path)
    assert "Profile(s): cpu, smoke." in text
    assert "Profile: cpu (default)" in text
    assert "record profile(s) smoke, not cpu" in text


def test_module_constants_match_design():
    assert reporting.RESULT_COLUMNS == ["table", "row", "dataset", "backbone", "metric", "paper", "paper_setting",
                                        "reproduced", "std", "n_seeds", "profile"]


def test_a_paper_number_from_another_setting_is_labelled(tmp_path):
    df = result_rows([{"row": "VGG-16", "values": [70.0, 72.0], "paper": 84.5, "paper_setting": "CUB, ResNet-50"},
                      {"row": "ours only", "values": [60.0], "paper_setting": "ignored without a number"}],
                     table="t", dataset="synthetic", backbone="vgg16", metric="top1", profile="cpu")
    assert df["paper_setting"].tolist() == ["CUB, ResNet-50", ""]
    shown = paper_vs_reproduced(df)
    assert shown.loc["VGG-16", "paper_setting"] == "CUB, ResNet-50" and shown.loc["VGG-16", "paper"] == 84.5
    assert "paper_setting" not in paper_vs_reproduced(df.assign(paper_setting=""))
    path = write_table(df, tmp_path / "t.csv")
    assert read_table(path)["paper_setting"].tolist() == ["CUB, ResNet-50", ""]


def test_main_power_table_lists_each_main_comparison_with_its_half_width_and_error_parts():
    from fgvc_lib.reporting import POWER_COLUMNS, main_power_table

    claims = pd.DataFrame([
        {"claim": "method beats baseline", "main": True, "our_effect": 1.5, "ci_low": -0.5, "ci_high": 3.5,
         "half_width_target": 2.0, "our_std": 1.2, "se_seed": 0.5, "se_test": 0.4, "n_seeds": 5, "seeds_needed": 8.0},
        {"claim": "an ablation", "main": False, "our_effect": 9.0, "ci_low": 0.0, "ci_high": 18.0,
         "half_width_target": 3.0, "our_std": 5.0, "se_seed": 2.0, "se_test": 1.0, "n_seeds": 5, "seeds_needed": 40.0},
    ])
    table = main_power_table([("02_cra_smra", claims)])
    assert list(table.columns) == POWER_COLUMNS
    assert table["claim"].tolist() == ["method beats baseline"]                     # main comparisons only
    assert table.iloc[0]["half_width"] == 2.0                                        # (3.5 - -0.5) / 2, by hand
    assert table.iloc[0][["se_seed", "se_test", "seeds_needed"]].tolist() == [0.5, 0.4, 8.0]


def test_summary_carries_the_testbed_caveat_to_the_notebooks_whose_attention_does_not_pay(tmp_path):
    from fgvc_lib.reporting import build_summary, testbed_caveats

    for name in ("00_synthetic_dataset", "01_cra_cnn", "02_cra_smra"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "figure.png").write_bytes(b"")          # a results folder: its section is written
    pd.DataFrame([
        {"mechanism": "zoom", "methods": "CRA-CNN", "oracle": "zoom oracle (head", "gain": -8.0, "ci_low": -10.0,
         "ci_high": -6.0, "needed": 5.0, "attention pays": "below the needed gain", "notebooks": "01_cra_cnn"},
        {"mechanism": "spatial", "methods": "CRA-SMRA", "oracle": "spatial oracle", "gain": 9.0, "ci_low": 7.0,
         "ci_high": 11.0, "needed": 5.0, "attention pays": "pays", "notebooks": "02_cra_smra"},
    ]).to_csv(tmp_path / "00_synthetic_dataset" / "controls.csv", index=False)
    for name in ("00_synthetic_dataset", "01_cra_cnn", "02_cra_smra"):   # all trained on one task
        reporting.write_machines([None], tmp_path / name / reporting.MACHINES_NAME, testbed="synthetic: task A")
    caveats = testbed_caveats(tmp_path)
    assert list(caveats) == ["01_cra_cnn"]                          # only the kind that does not pay
    assert "below the needed gain" in caveats["01_cra_cnn"] and "-8.0 [-10.0, -6.0]" in caveats["01_cra_cnn"]
    summary = build_summary(tmp_path)
    section = summary[summary.index("## 01_cra_cnn"):summary.index("## 02_cra_smra")]
    assert caveats["01_cra_cnn"] in section
    assert "Testbed control" not in summary[summary.index("## 02_cra_smra"):]
    # controls measured on another task than a notebook's results do not show its kind paying there
    reporting.write_machines([None], tmp_path / "02_cra_smra" / reporting.MACHINES_NAME, testbed="synthetic: task B")
    caveats = testbed_caveats(tmp_path)
    assert sorted(caveats) == ["01_cra_cnn", "02_cra_smra"] and "another task" in caveats["02_cra_smra"]
    (tmp_path / "02_cra_smra" / reporting.MACHINES_NAME).unlink()     # results that name no task: the same
    assert "another task, or on one their files do not name" in testbed_caveats(tmp_path)["02_cra_smra"]
    assert reporting.testbed_of(tmp_path / "02_cra_smra") == ""


def test_null_accuracy_verdicts_of_a_kind_that_does_not_pay_are_shown_as_not_testable(tmp_path):
    """Issue 19: where the testbed does not show a kind of attention paying, a null verdict of a method of that kind
    says nothing against it; SUMMARY.md shows it as not testable (keeping the statistical verdict), and keeps a
    decided verdict and a score claim as they are, and every verdict of a kind that pays."""
    from fgvc_lib.reporting import NOT_TESTABLE

    pd.DataFrame([
        {"mechanism": "zoom", "methods": "CRA-CNN", "oracle": "zoom oracle (head", "gain": 1.0, "ci_low": -2.0,
         "ci_high": 4.0, "needed": 5.0, "attention pays": "below the needed gain", "notebooks": "01_cra_cnn"},
        {"mechanism": "spatial", "methods": "CRA-SMRA", "oracle": "spatial oracle", "gain": 9.0, "ci_low": 7.0,
         "ci_high": 11.0, "needed": 5.0, "attention pays": "pays", "notebooks": "02_cra_smra"},
    ]).to_csv((tmp_path / "00_synthetic_dataset").mkdir() or tmp_path / "00_synthetic_dataset" / "controls.csv",
              index=False)
    for name in ("00_synthetic_dataset", "01_cra_cnn", "02_cra_smra"):
        reporting.write_machines([None], tmp_path / name / reporting.MACHINES_NAME, testbed="synthetic: task A")
    pairs = (("method beats baseline", [50, 52, 49], [50.5, 51, 50]),    # inconclusive
             ("method loses to nothing", [50, 51, 52], [60, 61, 62]))    # held
    for name in ("01_cra_cnn", "02_cra_smra"):
        claims = _claims(*pairs)
        first = claims.iloc[0].to_dict()
        claims.loc[len(claims)] = {**first, "claim": "maps point at the part", "measure": "score"}
        claims.loc[len(claims)] = {**first, "claim": "the gap is smaller", "direction": -1}       # not a gain
        claims.loc[len(claims)] = {**first, "claim": "two modules are alike", "direction": 0, "verdict": "held"}
        claims.loc[len(claims)] = {**first, "claim": "two modules differ", "direction": 0, "verdict": "reversed"}
        write_claims(claims, tmp_path / name / "claims.csv")
    summary = build_summary(tmp_path)
    cra = summary[summary.index("## 01_cra_cnn"):summary.index("## 02_cra_smra")]
    smra = summary[summary.index("## 02_cra_smra"):]
    row = {line.split("|")[1].strip(): line for line in cra.splitlines() if line.startswith("| ")}
    assert f"{NOT_TESTABLE} (statistically: inconclusive)" in row["method beats baseline"]
    assert f"{NOT_TESTABLE} (statistically: held)" in row["two modules are alike"]     # a no-difference confirmed
    for kept in ("maps point at the part", "the gap is smaller", "method loses to nothing", "two modules differ"):
        assert NOT_TESTABLE not in row[kept], kept
    assert "| held |" in row["method loses to nothing"] and "| reversed |" in row["two modules differ"]
    assert "2 of these verdicts" in cra
    assert NOT_TESTABLE not in smra and "inconclusive" in smra


# --------------------------------------------------------------------------- machines.json
def test_machines_are_counted_and_named_in_summary(tmp_path):
    import json as _json

    a = {"cpu": "CPU A", "cpu_capability": "AVX2", "gpu": "", "python": "3.11.7", "torch": "2.14.1",
         "torchvision": "0.29.1", "numpy": "2.4.6", "PIL": "13.0.0"}
    b = {**a, "cpu": "CPU B", "cpu_capability": "AVX512"}
    path = reporting.write_machines([a, None, b, a, None, a], tmp_path / reporting.MACHINES_NAME)
    assert _json.loads(path.read_text()) == {"machines": [{"runs": 3, "machine": a}, {"runs": 1, "machine": b}],
                                             "unrecorded": 2}
    line = reporting.machines_line(tmp_path)
    assert line == ("Trained on: CPU A (AVX2), torch 2.14.1, torchvision 0.29.1, numpy 2.4.6, PIL 13.0.0 (3 run(s)); "
                    "CPU B (AVX512), torch 2.14.1, torchvision 0.29.1, numpy 2.4.6, PIL 13.0.0 (1 run(s)); "
                    "not recorded (2 run(s) trained before records named their machine).")
    assert reporting.machines_line(tmp_path / "elsewhere").startswith("Trained on: not recorded")
    from fgvc_lib.machine import describe
    assert describe({**a, "gpu": "NVIDIA H200"}).startswith("NVIDIA H200, torch 2.14.1")


def test_the_head_names_results_whose_pretraining_is_not_recorded(tmp_path):
    """A results folder of a profile with the embedded pretraining whose machines.json does not name the pretraining
    its runs started from is named at SUMMARY.md's head; one that names it is not."""
    for name in ("00_synthetic_dataset", "03_clan"):
        (tmp_path / name).mkdir()
    reporting.write_machines([None], tmp_path / "00_synthetic_dataset" / reporting.MACHINES_NAME)   # no pretraining
    reporting.write_machines([None], tmp_path / "03_clan" / reporting.MACHINES_NAME,
                             pretraining="pretraining: vgg16_bn_x.pt, last epoch's training accuracy 65.2 %")
    folders = [("00_synthetic_dataset", "cpu", tmp_path / "00_synthetic_dataset"), ("03_clan", "cpu", tmp_path / "03_clan")]
    line = reporting.pretraining_warning(folders)
    assert line.startswith("**Pretraining not recorded.** The runs of 1 results folder(s) (00_synthetic_dataset) ")
    assert reporting.pretraining_warning(folders[1:]) == ""
    assert "Started from the pretraining: vgg16_bn_x.pt" in reporting.machines_line(tmp_path / "03_clan")
