"""Peak resident memory of a piece of code, measured in a fresh Python process (Linux).

Used by tests/test_long_features.py (the 3-hour bound) and bench/mel.py (``--memory``), so
both measure the same way: run the warm-up code (imports, PyAV, the op, the filter bank), reset
the kernel's peak counter (``/proc/self/clear_refs``, which sets VmHWM to the current VmRSS),
run the measured code, and report how far the peak rose above where it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict

__all__ = ["PEAK_RESET_AVAILABLE", "measure_peak_rss"]

PEAK_RESET_AVAILABLE = os.path.exists("/proc/self/clear_refs")

_PROBE = """
import json, sys, time

def status(key):  # bytes, from the kernel's own accounting
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

scope = {"args": sys.argv[3:]}
exec(compile(sys.argv[1], "<warm-up>", "exec"), scope)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current resident size
start, t0 = status("VmRSS"), time.perf_counter()
exec(compile(sys.argv[2], "<measured>", "exec"), scope)
seconds = time.perf_counter() - t0
print(json.dumps({**scope.get("result", {}), "peak_growth": status("VmHWM") - start, "seconds": seconds}))
"""


def measure_peak_rss(warm_up: str, measured: str, *args: str, timeout: float = 600) -> Dict[str, Any]:
    """Run ``warm_up`` then ``measured`` (Python source) in a fresh interpreter, which sees its
    string arguments as ``args``, and return what ``measured`` left in a dict named ``result``
    plus ``peak_growth`` (bytes the peak RSS rose after the warm-up) and ``seconds`` (wall time
    of ``measured``). Raises RuntimeError with the child's stderr when it fails."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, warm_up, measured, *args],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the measured process failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
