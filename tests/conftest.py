"""Fixtures shared by the test files."""
import pytest


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    """Results, runs and caches of a test go to a temporary folder, never the repository's."""
    for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def use_smoke_folders(mp: pytest.MonkeyPatch, root) -> None:
    """Smoke profile, with the cache, runs and results of a test module in folders under ``root``."""
    mp.setenv("FGVC_PROFILE", "smoke")
    for name in ("cache", "runs", "results"):
        mp.setenv(f"FGVC_{name.upper()}_DIR", str(root / name))
