import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder (CI sets DEEPZOO_TEST_DATA to it); tests that need it skip without it."""
    root = os.environ.get("DEEPZOO_TEST_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data not found: set DEEPZOO_TEST_DATA to the shared data folder (../shared/data)")
    return Path(root)


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path_factory):
    """Never read or write the user's cache, data folder or mirror."""
    monkeypatch.setenv("DEEPZOO_CACHE", str(tmp_path_factory.mktemp("deepzoo-cache")))
    monkeypatch.delenv("DEEPZOO_DATA", raising=False)
    monkeypatch.delenv("DEEPZOO_MIRROR", raising=False)


def run_deepzoo(*args: str, cwd=None, check: bool = False, timeout: float = 1800):
    """Run the command line in a fresh process, as a user would; return the CompletedProcess."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "deepzoo", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and proc.returncode != 0:
        raise AssertionError(f"deepzoo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def quick_tour(tmp_path_factory) -> Path:
    """`deepzoo tour --quick` run once for the whole session, as a user would (a fresh process, the data
    shipped in the package only): its folder holds report.html and one run folder per recipe."""
    import subprocess
    import sys
    out = tmp_path_factory.mktemp("quick-tour") / "tour"
    env = {k: v for k, v in os.environ.items() if k not in ("DEEPZOO_DATA", "DEEPZOO_MIRROR")}
    env.update(PYTHONWARNINGS="ignore", DEEPZOO_CACHE=str(tmp_path_factory.mktemp("tour-cache")))
    proc = subprocess.run([sys.executable, "-m", "deepzoo", "tour", "--quick", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"deepzoo tour --quick failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (out / "stdout.txt").write_text(proc.stdout)
    return out
