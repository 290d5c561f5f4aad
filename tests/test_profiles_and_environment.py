"""Profiles and the two descriptions of the environment (pyproject.toml and environment.yml)."""
import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from fgvc_lib.profiles import PROFILES, get_profile, scale_epochs

REPO = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pip_lines, in_pip = [], False
    for line in (REPO / "environment.yml").read_text().splitlines():
        if line.strip() == "- pip:":
            in_pip = True
        elif in_pip and line.strip().startswith("- "):
            pip_lines.append(line.strip()[2:])
    pip_lines = [p for p in pip_lines if not p.startswith("-e")]
    assert sorted(map(_name, pip_lines)) == sorted(map(_name, declared))
    assert sorted(p.replace(" ", "") for p in pip_lines) == sorted(d.split("#")[0].replace(" ", "") for d in declared)


def test_profiles_and_their_errors(monkeypatch):
    assert set(PROFILES) == {"smoke", "cpu", "paper"}
    monkeypatch.delenv("FGVC_PROFILE", raising=False)
    assert get_profile().name == "cpu"
    monkeypatch.setenv("FGVC_PROFILE", "smoke")
    assert get_profile(None).name == "smoke" and get_profile("paper").name == "paper"
    with pytest.raises(ValueError, match="valid profiles: smoke, cpu, paper"):
        get_profile("gpu")
    assert PROFILES["paper"].width == 1.0 and PROFILES["paper"].pretrained == "imagenet"


def test_schedule_rescaling():
    assert scale_epochs(120, 30, 6) == 2
    assert scale_epochs(120, 2, 6) == 1
    with pytest.raises(ValueError):
        scale_epochs(0, 30, 6)


def test_ci_calls_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_slim_profiles_train_on_one_thread_and_restore_the_callers_threads():
    import torch

    from fgvc_lib.study.executors import InlineExecutor, make_executor
    from fgvc_lib.study.parameters import Execution

    assert PROFILES["cpu"].threads == 1 and PROFILES["smoke"].threads == 1 and PROFILES["paper"].threads is None
    inline = make_executor(Execution(executor="inline"), 3, REPO / ".unused", PROFILES["cpu"].threads)
    assert isinstance(inline, InlineExecutor) and inline.threads == (None if torch.cuda.is_available() else 1)


def test_another_pretraining_draw_changes_only_the_pretrainings_seed():
    from fgvc_lib.profiles import get_profile, with_pretraining_seed

    cpu = get_profile("cpu")
    other = with_pretraining_seed(cpu, 3)
    assert other.pretraining == {**cpu.pretraining, "seed": 3} and other.name == "cpu"
    assert dataclasses.replace(other, pretraining=cpu.pretraining) == cpu       # nothing else moved
    assert get_profile(other) is other                                         # a Profile passes through
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="whole number"):
            with_pretraining_seed(cpu, bad)
    with pytest.raises(ValueError, match="no embedded pretraining"):
        with_pretraining_seed(get_profile("paper"), 1)
