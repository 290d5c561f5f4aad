"""`make reproduce`: notebook selection, parameter passing and failures that stop the command."""
import json

import pytest

from fgvc_lib import reproduce


def test_select_notebooks_by_name_or_number():
    names = reproduce.available_notebooks()
    assert "00_synthetic_dataset" in names
    assert reproduce.select_notebooks("") == names
    assert reproduce.select_notebooks("00") == ["00_synthetic_dataset"]
    assert reproduce.select_notebooks("00_synthetic_dataset,00") == ["00_synthetic_dataset"]
    with pytest.raises(SystemExit, match="unknown notebook '99_nothing'; available: 00_synthetic_dataset"):
        reproduce.select_notebooks("99_nothing")


def test_only_declared_parameters_are_passed():
    path = reproduce.NOTEBOOK_DIR / "00_synthetic_dataset.ipynb"
    params = reproduce.notebook_parameters(path, {"profile": "smoke", "backbone": "vgg16", "data_root": "",
                                                  "not_a_parameter": "x"})
    assert params == {"profile": "smoke", "backbone": "vgg16"}


def test_bad_profile_and_missing_data_root_stop_before_any_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="valid profiles"):
        reproduce.main(["--profile", "gpu"])
    with pytest.raises(SystemExit, match="PROFILE=paper needs DATA_ROOT"):
        reproduce.main(["--profile", "paper"])
    with pytest.raises(SystemExit, match="is not a folder"):
        reproduce.main(["--profile", "paper", "--data-root", str(tmp_path / "missing")])
    assert not any(tmp_path.iterdir())


def _write_notebook(folder, name, *sources):
    """A notebook with a ``profile`` parameters cell followed by one code cell per source."""
    import nbformat

    folder.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_a_failing_notebook_fails_the_command_and_shows_its_error(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks, "98_broken", 'raise RuntimeError("deliberate failure in cell two")')
    monkeypatch.setattr(reproduce, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    assert reproduce.main(["--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "notebook 98_broken failed" in err and "deliberate failure in cell two" in err
    # a smoke run lands in the notebook's smoke subfolder, never in the default profile's folder
    copy = tmp_path / "results" / "98_broken" / "smoke" / "98_broken.ipynb"
    assert str(copy) in err
    assert not (tmp_path / "results" / "98_broken" / "98_broken.ipynb").exists()
    executed = json.loads(copy.read_text())
    assert executed["cells"][-1]["outputs"][0]["ename"] == "RuntimeError"


def test_a_smoke_run_keeps_the_default_results_and_gets_its_own_summary_section(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks, "98_ok", "print('profile:', profile)")
    monkeypatch.setattr(reproduce, "NOTEBOOK_DIR", notebooks)
    results = tmp_path / "results"
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(results))
    committed = results / "98_ok" / "98_ok.ipynb"  # the default profile's executed copy
    committed.parent.mkdir(parents=True)
    committed.write_text("{}")
    assert reproduce.main(["--profile", "smoke"]) == 0
    assert committed.read_text() == "{}"
    executed = json.loads((results / "98_ok" / "smoke" / "98_ok.ipynb").read_text())
    assert "profile: smoke" in "".join(executed["cells"][-1]["outputs"][0]["text"])
    summary = (results / "SUMMARY.md").read_text()
    assert summary.index("## 98_ok\n") < summary.index("## 98_ok (profile smoke)")
    assert "[98_ok.ipynb](98_ok/smoke/98_ok.ipynb)" in summary


def test_executed_copies_follow_the_results_folder_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path))
    assert reproduce.executed_path("05_ssanet", "cpu") == tmp_path / "05_ssanet" / "05_ssanet.ipynb"
    assert reproduce.executed_path("05_ssanet", "smoke") == tmp_path / "05_ssanet" / "smoke" / "05_ssanet.ipynb"
    assert reproduce.executed_path("05_ssanet", "paper") == tmp_path / "05_ssanet" / "paper" / "05_ssanet.ipynb"


@pytest.mark.parametrize("name", reproduce.available_notebooks())
def test_every_parameter_of_every_notebook_is_visible_to_papermill(name):
    """papermill silently drops a parameter whose line it cannot parse (e.g. an '=' in its comment)."""
    import ast

    import nbformat
    import papermill

    path = reproduce.NOTEBOOK_DIR / f"{name}.ipynb"
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    assigned = [t.id for node in ast.parse(cells[0].source).body for t in node.targets]
    assert list(papermill.inspect_notebook(str(path))) == assigned
    assert "profile" in assigned
