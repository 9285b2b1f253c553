"""The AVX2 target (deepzoo/cputarget.py): each library's cap takes effect, measured in a fresh process
(the variables are read once, at import), whatever CPU runs the suite."""

import json
import os
import subprocess
import sys

import pytest

from deepzoo import cputarget
from deepzoo.figures import cpu

CHECK = "import json; from deepzoo import cputarget; print(json.dumps(cputarget.check()))"


def _check(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEN_CPU", "ONEDNN_", "NUMBA_CPU"))}
    out = subprocess.run([sys.executable, "-c", CHECK], env={**env, **env_extra}, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_caps_below_this_cpu_take_effect():
    # below what any x86-64 CPU has, so the cap is seen to act on every machine
    seen = _check({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                   "NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": "+sse2"})
    assert seen["aten"] == "DEFAULT"
    assert seen["onednn_isa"] == "Intel SSE4.1"
    assert seen["numba_vector_bits"] == 128
    assert seen["target"] is None


@pytest.mark.skipif("avx2" not in cpu()[1], reason="this CPU has no AVX2: the AVX2 target cannot be reached")
def test_the_avx2_target_runs_avx2_kernels():
    proc = subprocess.run([sys.executable, "-m", "deepzoo.cputarget", "avx2", "--check"],
                          capture_output=True, text=True, check=True)
    seen = json.loads(proc.stdout)
    assert seen["aten"] == "AVX2" and seen["onednn_isa"] == "Intel AVX2"
    assert seen["numba_vector_bits"] == 256 and seen["numba_cpu"] == "haswell"
    assert seen["target"] == "avx2"


def test_a_command_runs_under_the_target_and_says_so():
    code = "import json; from deepzoo import cputarget; print(json.dumps(cputarget.describe()))"
    proc = subprocess.run([sys.executable, "-m", "deepzoo.cputarget", "avx2", "--", sys.executable, "-c", code],
                          capture_output=True, text=True, check=True)
    seen = json.loads(proc.stdout)
    assert seen["target"] == "avx2" and seen["onednn_max_cpu_isa"] == "AVX2"
    assert cputarget.describe()["target"] is None or os.environ.get("ATEN_CPU_CAPABILITY") == "avx2"


def test_no_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "deepzoo.cputarget", "avx2"], capture_output=True, text=True)
    assert proc.returncode == 2 and "give the command to run after --" in proc.stderr


def test_auto_precision_is_fp32_under_the_avx2_target(monkeypatch):
    """Under the AVX2 cap bf16 is emulated, as on an AVX2-only CPU: auto must not pick it, whatever this CPU."""
    import torch

    from deepzoo.train.engine import resolve_precision
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cputarget.hides_bf16() and resolve_precision("auto", torch.device("cpu")) == "fp32"
    for isa in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert not cputarget.hides_bf16()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not cputarget.hides_bf16()
