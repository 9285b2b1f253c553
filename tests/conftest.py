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


def deepzoo_main(*args: str) -> tuple[int, str, str]:
    """Run the command line in this process (no 3-second torch import): (exit status, stdout, stderr).

    argparse's exits become their status; any other exception propagates, as a traceback would."""
    import contextlib
    import io

    from deepzoo.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return status, out.getvalue(), err.getvalue()


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


def headless_chromium(profile, width: int = 1200, height: int = 900):
    """A Selenium driver for Debian's headless Chromium (the tour report's and deepzoo serve's browser tests),
    or a skip that says what to install."""
    import shutil
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("headless Chromium not found: apt-get install chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)
