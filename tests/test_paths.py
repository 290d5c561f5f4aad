"""The project's folder conventions (fgvc_lib.paths): environment variables, profile subfolders."""
import shutil
import subprocess
from pathlib import Path

import pytest

import fgvc_lib
from fgvc_lib import paths
from fgvc_lib.profiles import DEFAULT_PROFILE, PROFILE_NAMES

REPO = Path(__file__).resolve().parents[1]
OTHER_PROFILES = [p for p in PROFILE_NAMES if p != DEFAULT_PROFILE]


@pytest.fixture
def clean_env(monkeypatch):
    for variable in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_repo_root_is_the_parent_of_the_package():
    assert paths.repo_root() == Path(fgvc_lib.__file__).resolve().parent.parent == REPO
    assert (paths.repo_root() / "fgvc_lib" / "paths.py").is_file()


def test_results_root_default_and_environment(clean_env, tmp_path):
    assert paths.results_root() == REPO / "results"
    clean_env.setenv("FGVC_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert paths.results_root() == tmp_path / "elsewhere"
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("FGVC_RESULTS_DIR", "~/res")
    assert paths.results_root() == tmp_path / "res"


def test_results_dir_default_profile_is_flat_and_created(clean_env, tmp_path):
    clean_env.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    folder = paths.results_dir("05_ssanet", DEFAULT_PROFILE)
    assert folder == tmp_path / "results" / "05_ssanet" and folder.is_dir()
    assert list(folder.iterdir()) == []  # no profile subfolder for the default run
    assert paths.results_dir("05_ssanet", DEFAULT_PROFILE) == folder  # calling again is fine


@pytest.mark.parametrize("profile", OTHER_PROFILES)
def test_results_dir_other_profiles_get_a_subfolder(clean_env, tmp_path, profile):
    clean_env.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    folder = paths.results_dir("05_ssanet", profile)
    assert folder == tmp_path / "results" / "05_ssanet" / profile and folder.is_dir()
    assert folder != paths.results_dir("05_ssanet", DEFAULT_PROFILE)


def test_without_environment_everything_hangs_off_the_repository(clean_env, tmp_path):
    # A stand-in repository, so that the test never creates folders in the real results/.
    clean_env.setattr(paths, "repo_root", lambda: tmp_path / "repo")
    assert paths.results_root() == tmp_path / "repo" / "results"
    assert paths.results_dir("05_ssanet", "smoke") == tmp_path / "repo" / "results" / "05_ssanet" / "smoke"
    assert paths.results_dir("05_ssanet", DEFAULT_PROFILE) == tmp_path / "repo" / "results" / "05_ssanet"
    assert paths.runs_dir("05_ssanet", "smoke") == tmp_path / "repo" / ".cache" / "runs" / "05_ssanet" / "smoke"


@pytest.mark.parametrize("profile", ["gpu", "", None, "CPU"])
def test_results_dir_unknown_profile_lists_the_valid_ones(clean_env, tmp_path, profile):
    clean_env.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    with pytest.raises(ValueError, match="valid profiles: " + ", ".join(PROFILE_NAMES)):
        paths.results_dir("05_ssanet", profile)
    assert not (tmp_path / "results").exists()  # nothing created on error


@pytest.mark.parametrize("notebook", ["", "..", "a/b", None])
def test_bad_notebook_names_are_refused(clean_env, tmp_path, notebook):
    clean_env.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    with pytest.raises(ValueError, match="notebook must be a plain name"):
        paths.results_dir(notebook, DEFAULT_PROFILE)
    with pytest.raises(ValueError, match="notebook must be a plain name"):
        paths.runs_dir(notebook, DEFAULT_PROFILE)


def test_runs_dir_default_and_environment_not_created(clean_env, tmp_path):
    assert paths.runs_dir("03_clan", "smoke") == REPO / ".cache" / "runs" / "03_clan" / "smoke"
    assert paths.runs_dir("03_clan", DEFAULT_PROFILE) == REPO / ".cache" / "runs" / "03_clan" / DEFAULT_PROFILE
    clean_env.setenv("FGVC_RUNS_DIR", str(tmp_path / "runs"))
    folder = paths.runs_dir("03_clan", "paper")
    assert folder == tmp_path / "runs" / "03_clan" / "paper"
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ValueError, match="profile must be a plain name"):
        paths.runs_dir("03_clan", "")


def test_cache_dir_default_and_environment(clean_env, tmp_path):
    clean_env.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "fgvc_lib"
    clean_env.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    assert paths.cache_dir() == tmp_path / "cache"
    assert not (tmp_path / "cache").exists()
    from fgvc_lib.data.synthetic import default_cache_root

    assert default_cache_root() == paths.cache_dir()  # the synthetic cache follows the same rule


def test_module_has_exactly_the_documented_functions():
    public = sorted(n for n in vars(paths) if not n.startswith("_") and callable(getattr(paths, n))
                    and getattr(getattr(paths, n), "__module__", None) == paths.__name__)
    assert public == sorted(["repo_root", "results_root", "results_dir", "runs_root", "runs_dir", "cache_dir"])
    assert paths.__doc__ and "results/<notebook>/<profile>/" in paths.__doc__


def _ignored(relative: str) -> bool:
    done = subprocess.run(["git", "check-ignore", "--quiet", "--no-index", relative], cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs the git checkout")
def test_only_the_default_profile_results_are_committed():
    """.gitignore keeps every other profile's results folder out of git, and the default one in."""
    for name in ("05_ssanet", "03_clan"):
        for table in ("table2.csv", f"{name}.ipynb", "figure.png"):
            assert not _ignored(f"results/{name}/{table}")
            for profile in OTHER_PROFILES:
                assert _ignored(f"results/{name}/{profile}/{table}")
    assert not _ignored("results/SUMMARY.md")
    # a replication (runs trained cold again: fgvc_lib/replication.py) is committed too
    for name in ("claims.csv", "machines.json", "replication.json", "recipe_trials.csv"):
        assert not _ignored(f"results/replications/00_synthetic_dataset/some-machine/{name}")
    # and a screened candidate rendering of the testbed (fgvc_lib/calibration.py)
    for name in ("claims.csv", "machines.json", "calibration.json"):
        assert not _ignored(f"results/calibration/head-attributes/{name}")
