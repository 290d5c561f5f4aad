"""Replications of a notebook's claims from runs trained cold again, on another machine or from another pretraining
draw (fgvc_lib.replication), and their SUMMARY.md section."""
from __future__ import annotations

import pandas as pd
import pytest

from fgvc_lib import reporting
from fgvc_lib.replication import comparison, replication_dir, replications, verdict_change


def test_what_became_of_a_verdict():
    assert verdict_change("held", "held") == "same"
    assert verdict_change("held", "reversed") == "opposite" and verdict_change("reversed", "held") == "opposite"
    assert verdict_change("held", "inconclusive") == "lost" and verdict_change("reversed", "no effect") == "lost"
    assert verdict_change("inconclusive", "held") == "gained"
    assert verdict_change("inconclusive", "no effect") == "changed"


def _claims(rows):
    """A claims table by hand: (claim, effect, low, high, verdict) rows; the other columns blank or plain."""
    full = []
    for claim, effect, low, high, verdict in rows:
        full.append({**{c: "" for c in reporting.CLAIM_COLUMNS}, "claim": claim, "main": False,
                     "measure": "accuracy", "direction": 1, "smallest_effect": 1.0, "our_effect": effect,
                     "ci_low": low, "ci_high": high, "verdict": verdict, "against_paper": "",
                     "below_smallest_effect": False, "n_seeds": 5, "n_images": 1200})
    return pd.DataFrame(full, columns=reporting.CLAIM_COLUMNS)


def test_comparison_joins_by_claim_and_says_what_changed():
    committed = _claims([("a beats b", 5.93, 3.73, 8.14, "held"), ("c beats d", -7.37, -10.71, -4.02, "reversed"),
                         ("e beats f", 0.5, -2.0, 3.0, "inconclusive")])
    replicated = _claims([("c beats d", -1.0, -3.0, 1.0, "inconclusive"), ("a beats b", -4.0, -6.0, -2.0, "reversed")])
    table = comparison(committed, replicated)
    assert list(table["claim"]) == ["c beats d", "a beats b"]          # the replication's claims, its order
    assert list(table["change"]) == ["lost", "opposite"]
    assert table.iloc[1]["committed"] == "5.9 [3.7, 8.1]" and table.iloc[1]["replication"] == "-4.0 [-6.0, -2.0]"
    unmatched = comparison(committed, _claims([("new claim", 1.0, 0.0, 2.0, "held")]))
    assert list(unmatched["change"]) == ["not in the committed table"] and unmatched.iloc[0]["committed"] == ""


def test_summary_has_a_section_per_replication(tmp_path):
    reporting.write_claims(_claims([("a beats b", 5.93, 3.73, 8.14, "held"),
                                    ("c beats d", -7.37, -10.71, -4.02, "reversed")]),
                           tmp_path / "00_synthetic_dataset" / reporting.CLAIMS_NAME)
    folder = replication_dir("00_synthetic_dataset", "other-cpu", root=tmp_path)
    reporting.write_claims(_claims([("a beats b", 1.0, -1.0, 3.0, "inconclusive"),
                                    ("c beats d", -6.0, -9.0, -3.0, "reversed")]), folder / reporting.CLAIMS_NAME)
    assert replications(tmp_path) == [("00_synthetic_dataset", "other-cpu", folder)]
    text = reporting.build_summary(tmp_path)
    assert f"## {reporting.REPLICATIONS_TITLE}" in text and "### 00_synthetic_dataset: other-cpu" in text
    assert "Of 2 claim(s): 1 same, 1 lost." in text and "Profile cpu; variants ?" in text
    assert "Trained on: not recorded" in text               # no machines.json in the replication's folder
    assert ("**Not reproducible from a cold start.** Claims re-measured from runs trained cold again (with other "
            "seeds, on another machine, or from another draw of the embedded pretraining) changed committed verdicts "
            "(00_synthetic_dataset on other-cpu: 1 no longer decided)") in text
    assert text.index("Not reproducible from a cold start") < text.index(f"## {reporting.REPLICATIONS_TITLE}")
    # the replications folder is not taken for a notebook's results
    assert "## replications" not in text


def test_a_replication_on_another_synthetic_task_is_not_compared(tmp_path):
    """The committed results re-run on a recalibrated task: a replication of the former task says nothing of them
    (its machines.json names another testbed, or none), so no verdict of it reaches the head as a change."""
    import json

    committed = tmp_path / "00_synthetic_dataset"
    reporting.write_claims(_claims([("a beats b", 5.93, 3.73, 8.14, "held")]), committed / reporting.CLAIMS_NAME)
    (committed / reporting.MACHINES_NAME).write_text(json.dumps({"testbed": "head's classes; input 96 px"}))
    folder = replication_dir("00_synthetic_dataset", "former-task", root=tmp_path)
    reporting.write_claims(_claims([("a beats b", -4.0, -6.0, -2.0, "reversed")]), folder / reporting.CLAIMS_NAME)
    text = reporting.build_summary(tmp_path)
    assert "*Not compared: the committed results and this replication trained on different synthetic tasks" in text
    assert "Not reproducible from a cold start" not in text
    (folder / reporting.MACHINES_NAME).write_text(json.dumps({"testbed": "head's classes; input 96 px"}))
    text = reporting.build_summary(tmp_path)   # the same task: compared, and the reversal reaches the head
    assert "Of 1 claim(s): 1 opposite." in text and "Not reproducible from a cold start" in text


def test_a_label_is_a_plain_folder_name(tmp_path):
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain folder name"):
            replication_dir("00_synthetic_dataset", bad, root=tmp_path)


def test_replicate_trains_in_runs_of_its_own_and_writes_claims_and_machines(private_dirs, tmp_path, monkeypatch):
    import dataclasses
    import json
    import os

    import study_paper
    from fgvc_lib import paths
    from fgvc_lib.replication import replicate
    from fgvc_lib.study import Accuracy, Claim

    monkeypatch.setenv("FGVC_PROFILE", "smoke")
    claim = Claim("slow beats plain", ((Accuracy("plain"), Accuracy("slow")),))
    paper = dataclasses.replace(study_paper.PAPER, claims=lambda settings: ([claim], []))
    runs_before = os.environ["FGVC_RUNS_DIR"]
    with pytest.raises(ValueError, match="plans no variant"):
        replicate(paper, ["plain", "nope"], "here", executor="inline")
    with pytest.raises(ValueError, match="take their learning rate from tuned"):
        replicate(paper, ["shared"], "here", executor="inline", variants="tuned,shared")
    folder = replicate(paper, ["plain", "slow"], "here", executor="inline", seeds="0,1")
    assert os.environ["FGVC_RUNS_DIR"] == runs_before                    # restored
    assert folder == paths.results_root() / "replications" / "99_tiny" / "here"
    claims = reporting.read_claims(folder / reporting.CLAIMS_NAME)
    assert list(claims["claim"]) == ["slow beats plain"] and claims.iloc[0]["n_seeds"] == 2
    machines = json.loads((folder / reporting.MACHINES_NAME).read_text())
    assert machines["unrecorded"] == 0 and sum(m["runs"] for m in machines["machines"]) == 4
    trained = list((paths.runs_dir("99_tiny", "smoke").parent.parent / "replications" / "here").rglob("record.json"))
    assert len(trained) == 4                                              # never the notebook's own runs folder
    assert not paths.runs_dir("99_tiny", "smoke").exists()
    written = json.loads((folder / "replication.json").read_text())
    started_from = written.pop("pretraining")
    assert written == {"profile": "smoke", "variants": ["plain", "slow"], "seeds": [0, 1],
                       "parameters": {"executor": "inline", "seeds": "0,1"}, "pretraining_epochs": 1,
                       "recipe_protocol": 2}
    assert started_from.startswith("pretraining: vgg16_bn_") and "training accuracy" in started_from
    assert machines["pretraining"] == started_from                        # machines.json names it too
    # another draw of the embedded pretraining: another file, other runs, and the draw in replication.json
    other = replicate(paper, ["plain", "slow"], "draw1", pretraining_seed=1, executor="inline", seeds="0")
    written = json.loads((other / "replication.json").read_text())
    assert written["pretraining_seed"] == 1 and written["parameters"] == {"executor": "inline", "seeds": "0"}
    assert written["pretraining_epochs"] == 1                             # the smoke profile's pretraining recipe
    draw0 = {p.parent.parent.name for p in (paths.runs_root() / "replications" / "here").rglob("record.json")}
    draw1 = {p.parent.parent.name for p in (paths.runs_root() / "replications" / "draw1").rglob("record.json")}
    assert draw0 and draw1 and not draw0 & draw1                          # other run keys: never loaded across draws
    assert written["pretraining"].split(",")[0] != started_from.split(",")[0]   # other file
    assert written["profile"] == "smoke"
    # compared with the committed claims of its profile (here smoke: results/99_tiny/smoke/)
    committed = paths.results_dir("99_tiny", "smoke")
    reporting.write_claims(claims, committed / reporting.CLAIMS_NAME)
    # trained on the same task (a comparison needs both folders to name one testbed)
    (committed / reporting.MACHINES_NAME).write_text((folder / reporting.MACHINES_NAME).read_text())
    text = reporting.build_summary(paths.results_root())
    assert "### 99_tiny: here" in text and "Of 1 claim(s): 1 same." in text and "Profile smoke" in text
    assert text.count("*Not compared:") == 0   # another pretraining draw of the same task is compared
    assert "Profile smoke; pretraining seed 1; variants plain, slow" in text
    assert f"Started from the {started_from}." in text


def test_the_rates_a_replication_chose_are_named_beside_the_committed_ones(tmp_path):
    from fgvc_lib.replication import chosen_rates

    trials = ("variant,lr,validation_top1,validation_se,chosen,seed,held_out_images\n"
              "baseline,0.015,36.1,4.0,{a},0,144\nbaseline,0.05,38.2,4.0,{b},0,144\n")
    (tmp_path / "00_synthetic_dataset").mkdir()
    (tmp_path / "00_synthetic_dataset" / "recipe_trials.csv").write_text(trials.format(a=True, b=False))
    reporting.write_claims(_claims([("a beats b", 5.93, 3.73, 8.14, "held")]),
                           tmp_path / "00_synthetic_dataset" / reporting.CLAIMS_NAME)
    folder = replication_dir("00_synthetic_dataset", "other-cpu", root=tmp_path)
    reporting.write_claims(_claims([("a beats b", 5.0, 3.0, 7.0, "held")]), folder / reporting.CLAIMS_NAME)
    (folder / "recipe_trials.csv").write_text(trials.format(a=False, b=True))
    assert chosen_rates(folder) == {"baseline": 0.05} and chosen_rates(tmp_path / "nowhere") == {}
    text = reporting.build_summary(tmp_path)
    assert "Rates the recipe protocol chose there: baseline 0.05 (committed: 0.015)." in text
    assert "Not reproducible from a cold start" not in text   # the verdict stayed: no warning at the head


def test_two_replications_of_the_same_variants_are_compared_with_each_other(tmp_path):
    """Two cold runs of the same variants and seeds (e.g. two pretraining draws) are set side by side, and their
    disagreement reaches SUMMARY.md's head; a replication of other variants is not paired with them."""
    import json

    from fgvc_lib.replication import compared, twins

    reporting.write_claims(_claims([("a beats b", 5.93, 3.73, 8.14, "held")]),
                           tmp_path / "00_synthetic_dataset" / reporting.CLAIMS_NAME)
    runs = {"draw0": [("a beats b", 4.0, 2.0, 6.0, "held"), ("c beats d", 3.0, 1.0, 5.0, "held")],
            "draw1": [("a beats b", -3.0, -5.0, -1.0, "reversed"), ("c beats d", 1.0, -1.0, 3.0, "inconclusive")],
            "other": [("a beats b", 4.0, 2.0, 6.0, "held")]}
    for label, rows in runs.items():
        folder = replication_dir("00_synthetic_dataset", label, root=tmp_path)
        reporting.write_claims(_claims(rows), folder / reporting.CLAIMS_NAME)
        variants = ["baseline"] if label == "other" else ["baseline", "crop"]
        (folder / "replication.json").write_text(json.dumps({"profile": "cpu", "variants": variants, "seeds": [0, 1],
                                                             "pretraining_epochs": 30}))
    # the same variants from another pretraining recipe (or an unrecorded one) pair with none of them
    old = replication_dir("00_synthetic_dataset", "draw9-12-epochs", root=tmp_path)
    reporting.write_claims(_claims(runs["draw1"]), old / reporting.CLAIMS_NAME)
    (old / "replication.json").write_text(json.dumps({"profile": "cpu", "variants": ["baseline", "crop"],
                                                      "seeds": [0, 1]}))
    # ... and so do they under another recipe protocol
    newer = replication_dir("00_synthetic_dataset", "draw9-protocol2", root=tmp_path)
    reporting.write_claims(_claims(runs["draw1"]), newer / reporting.CLAIMS_NAME)
    (newer / "replication.json").write_text(json.dumps({"profile": "cpu", "variants": ["baseline", "crop"],
                                                        "seeds": [0, 1], "pretraining_epochs": 30,
                                                        "recipe_protocol": 2}))
    ((notebook, first, second, table),) = twins(compared(tmp_path))
    assert (notebook, first, second) == ("00_synthetic_dataset", "draw0", "draw1")
    assert list(table["change"]) == ["opposite", "lost"]
    assert table.iloc[0]["draw0"] == "4.0 [2.0, 6.0]" and table.iloc[0]["draw1 verdict"] == "reversed"
    text = reporting.build_summary(tmp_path)
    assert "### 00_synthetic_dataset: draw0 against draw1" in text and "Of 2 claim(s): 1 opposite, 1 lost." in text
    assert "Two cold runs of the same variants and seeds disagree (00_synthetic_dataset, draw0 against draw1: " \
           "1 opposite, 1 decided in one only)" in text


def test_a_whole_notebook_replication_keeps_what_its_cells_wrote_and_leaves_the_results_alone(private_dirs,
                                                                                               monkeypatch):
    """--whole executes the notebook (papermill) with the replication's seeds, its results in a scratch folder and its
    runs in their own folder: the claims its cells scored come back, nothing else of it is kept."""
    import json
    import os

    import study_paper
    from fgvc_lib import paths, reproduce
    from fgvc_lib.replication import replicate_notebook
    from fgvc_lib.study import Study

    monkeypatch.setenv("FGVC_PROFILE", "smoke")
    results_before, runs_before = os.environ.get("FGVC_RESULTS_DIR"), os.environ.get("FGVC_RUNS_DIR")
    seen = {}

    def executed(name, wanted):   # stands in for papermill: writes what a notebook's cells write
        seen.update(name=name, wanted=dict(wanted), results=os.environ["FGVC_RESULTS_DIR"],
                    runs=os.environ["FGVC_RUNS_DIR"])
        folder = paths.results_dir(name, wanted["profile"])
        (folder / reporting.CLAIMS_NAME).write_text("claim,verdict\nthe IoU beats the whole image's,held\n")
        (folder / reporting.MACHINES_NAME).write_text("{}\n")
        (folder / "recipe_trials.csv").write_text("variant,lr,chosen\ntuned,0.05,True\n")
        (folder / "localization.csv").write_text("not kept\n")

    planned = {}

    def plan(name, wanted):      # the notebook's study as its parameters would build it (a tiny paper here)
        planned.update(wanted)
        return Study(study_paper.PAPER, seeds=wanted["seeds"]), {}

    monkeypatch.setattr(reproduce, "planned_study", plan)
    monkeypatch.setattr(reproduce, "run_notebook", executed)
    folder = replicate_notebook("99_tiny", "whole", profile="smoke", seeds="3,4", workers=2)
    assert folder == paths.results_root() / "replications" / "99_tiny" / "whole"
    assert seen["name"] == "99_tiny" and seen["wanted"] == {"profile": "smoke", "seeds": "3,4", "workers": 2}
    assert planned == seen["wanted"]                                      # planned with the parameters it ran with
    assert seen["results"] != results_before and not os.path.exists(seen["results"])     # a scratch folder, gone
    assert seen["runs"] == str(paths.runs_root() / "replications" / "whole")
    assert (os.environ.get("FGVC_RESULTS_DIR"), os.environ.get("FGVC_RUNS_DIR")) == (results_before, runs_before)
    assert sorted(p.name for p in folder.iterdir()) == ["claims.csv", "machines.json", "recipe_trials.csv",
                                                        "replication.json"]
    assert "the IoU beats the whole image's" in (folder / "claims.csv").read_text()
    written = json.loads((folder / "replication.json").read_text())
    assert written["whole_notebook"] is True and written["seeds"] == [3, 4] and written["profile"] == "smoke"
    assert written["variants"] == ["plain", "slow"] and written["recipe_protocol"] == 2   # the planned study's
    assert not (paths.results_root() / "99_tiny").exists()               # the notebook's own results untouched
    with pytest.raises(FileExistsError, match="already holds a replication's claims"):
        replicate_notebook("99_tiny", "whole", profile="smoke", seeds="3,4")   # never overwritten
    assert "the IoU beats" in (folder / "claims.csv").read_text()

    def wrote_nothing(name, wanted):
        pass

    monkeypatch.setattr(reproduce, "run_notebook", wrote_nothing)
    with pytest.raises(RuntimeError, match="wrote no claims.csv"):
        replicate_notebook("99_tiny", "empty", profile="smoke", seeds="3")
    assert not replication_dir("99_tiny", "empty").exists()

    def failed(name, wanted):    # papermill leaves the executed copy, with the failing cell, then raises
        folder = paths.results_dir(name, wanted["profile"])
        (folder / f"{name}.ipynb").write_text("{\"cells\": [\"the traceback\"]}")
        raise RuntimeError("cell 7 failed")

    monkeypatch.setattr(reproduce, "run_notebook", failed)
    with pytest.raises(RuntimeError, match="cell 7 failed"):
        replicate_notebook("99_tiny", "broken", profile="smoke", seeds="3")
    kept = replication_dir("99_tiny", "broken")
    assert [p.name for p in kept.iterdir()] == ["99_tiny.failed.ipynb"] and "the traceback" in next(kept.iterdir()).read_text()
    assert (os.environ.get("FGVC_RESULTS_DIR"), os.environ.get("FGVC_RUNS_DIR")) == (results_before, runs_before)


def test_summary_says_when_a_replication_chose_its_rates_under_another_recipe_protocol(tmp_path):
    """machines.json names the protocol version that chose a results folder's rates (none named: version 1); a
    replication records its own in replication.json; SUMMARY.md names the replication's, and the committed one
    when they differ."""
    import json

    committed = tmp_path / "03_clan"
    reporting.write_claims(_claims([("a beats b", 5.93, 3.73, 8.14, "held")]), committed / reporting.CLAIMS_NAME)
    trials = "variant,lr,validation_top1,validation_se,chosen,seed,held_out_images\nb,0.03,50.0,4.2,True,0,144\n"
    folder = replication_dir("03_clan", "older", root=tmp_path)
    reporting.write_claims(_claims([("a beats b", 6.0, 4.0, 8.0, "held")]), folder / reporting.CLAIMS_NAME)
    (folder / "recipe_trials.csv").write_text(trials)
    (committed / "recipe_trials.csv").write_text(trials)
    reporting.write_machines([], committed / reporting.MACHINES_NAME, recipe_protocol=2)
    assert json.loads((committed / reporting.MACHINES_NAME).read_text())["recipe_protocol"] == 2
    assert reporting.recipe_protocol_of(committed) == 2 and reporting.recipe_protocol_of(folder) == 1
    text = reporting.build_summary(tmp_path)
    assert "Profile cpu; recipe protocol 1 (the committed results': 2); variants" in text   # none named: 1
    (folder / "replication.json").write_text(json.dumps({"profile": "cpu", "recipe_protocol": 2}))
    text = reporting.build_summary(tmp_path)
    assert "Profile cpu; recipe protocol 2; variants" in text and "the committed results'" not in text
