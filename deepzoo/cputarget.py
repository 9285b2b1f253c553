"""Run any command as an AVX2-only machine would, on whatever x86 CPU you have.

Most laptops and many cloud machines have AVX2 but neither AVX-512 nor AMX, and a figure measured on an
AMX machine can be 2-4x faster than what they see. Three libraries pick their kernels from the CPU at run
time; each takes an environment variable that caps the instruction set it may use:

=========================  ==========================  ===========================================
library                    variable                    what it caps
=========================  ==========================  ===========================================
PyTorch (ATen kernels)     ``ATEN_CPU_CAPABILITY``      element-wise and reduction kernels
                                                        (``default``, ``avx2``, ``avx512``)
oneDNN (conv, matmul, RNN) ``ONEDNN_MAX_CPU_ISA``       the JIT-generated kernels (``AVX2`` stops
                                                        AVX-512 and AMX, and so bf16 tiles)
numba (Word2Vec kernel)    ``NUMBA_CPU_NAME`` and       the LLVM target the kernel is compiled for
                           ``NUMBA_CPU_FEATURES``       (the name alone keeps the host's features)
=========================  ==========================  ===========================================

::

    python -m deepzoo.cputarget avx2 -- python benchmarks/charlm.py ...   # one command under the target
    python -m deepzoo.cputarget avx2 --check                               # does each cap take effect here?

A cap can only lower: on an AVX2-only CPU the target is what runs anyway; on an AMX machine it gives the
AVX2 kernels, not the AVX2 machine (its caches, memory bandwidth and clock stay). Every benchmark's JSON
records what it ran under (:func:`describe`). ``tests/test_cputarget.py`` checks that each variable takes
effect, whatever the machine: ATen and oneDNN report the capped ISA, and numba's assembly for the target
has no 512-bit (zmm) registers.
"""

from __future__ import annotations

import os
import sys

# LLVM's haswell (the first AVX2 core); the features are spelled out because NUMBA_CPU_NAME alone
# keeps the host's (an AVX-512 host would still get zmm code)
HASWELL_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+lzcnt,+mmx,"
                    "+movbe,+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt")

TARGETS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": HASWELL_FEATURES},
}


def hides_bf16() -> bool:
    """Whether this process's oneDNN cap (``ONEDNN_MAX_CPU_ISA``) stops below the instruction sets with bf16
    arithmetic: then bf16 is emulated, as on a CPU without it, and ``train.precision=auto`` must pick fp32."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return isa not in ("", "ALL", "DEFAULT") and not any(k in isa for k in ("BF16", "FP16", "AMX", "AVX10"))


def describe() -> dict:
    """What this process's kernels run under: ATen's capability (as PyTorch reports it), oneDNN's cap and
    numba's target ("native" where no cap is set). For the benchmarks' JSON."""
    out = {}
    try:
        import torch
        out["aten"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        out["aten"] = None
    out["onednn_max_cpu_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
    out["numba_cpu"] = os.environ.get("NUMBA_CPU_NAME", "native")
    out["target"] = next((name for name, env in TARGETS.items()
                          if all(os.environ.get(k) == v for k, v in env.items())), None)
    return out


def onednn_isa() -> str:
    """The ISA oneDNN says it dispatches to in this process (run a small convolution with its verbose log on,
    in a child process, since the log goes to the C library's stdout)."""
    import subprocess
    code = ("import torch\nx = torch.randn(2, 16, 16, 16)\n"
            "with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):\n"
            "    torch.nn.functional.conv2d(x, torch.randn(16, 16, 3, 3))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return next((line.split("isa:", 1)[1].strip() for line in out.splitlines() if ",isa:" in line), "unknown")


def numba_vector_width() -> int:
    """The widest vector register (bits) in numba's code for a simple loop under this process's target:
    512 (zmm), 256 (ymm) or 128 (xmm)."""
    from numba import njit

    @njit("void(float32, float32[:], float32[:])", fastmath=True)   # compiled here, never run (the
    def axpy(a, x, y):                                                 # target may exceed this CPU)
        for i in range(x.shape[0]):
            y[i] += a * x[i]

    asm = "\n".join(axpy.inspect_asm().values())
    return 512 if "zmm" in asm else 256 if "ymm" in asm else 128


def check() -> dict:
    """Each cap as this process sees it, measured rather than assumed."""
    return {**describe(), "onednn_isa": onednn_isa(), "numba_vector_bits": numba_vector_width()}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m deepzoo.cputarget",
                                 usage="python -m deepzoo.cputarget avx2 (--check | -- COMMAND ...)",
                                 description="Run a command with the kernels of an AVX2-only CPU (see the module "
                                             "docstring), or --check what each library runs under.")
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--check", action="store_true", help="print what ATen, oneDNN and numba run under, as JSON")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = ap.parse_args(argv[:split]), argv[split + 1:]
    env = {**os.environ, **TARGETS[args.target]}
    if args.check:
        import subprocess
        code = "import json; from deepzoo import cputarget; print(json.dumps(cputarget.check()))"
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        print(json.dumps(json.loads(result.stdout), indent=1))
        return 0
    if not command:
        ap.error("give the command to run after --, or --check")
    os.execvpe(command[0], command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
