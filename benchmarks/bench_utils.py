"""Timing, peak-memory and time-budget helpers shared by the benchmarks.

Pure torch + stdlib: no OpenMMLab import, so every benchmark (and the GPU
suite, on machines without mmcv's ops) can use them.

* :class:`PeakMemory` — peak memory of a region: on CUDA
  ``torch.cuda.max_memory_allocated`` (absolute, weights included); on CPU the
  growth of the process's peak resident set (``VmHWM``) over the resident set
  at the start of the region, reset through ``/proc/self/clear_refs`` (Linux).
  None where neither is available.
* :func:`measure` — mean seconds per call after a warm-up, bounded by a time
  limit, with the peak memory of the timed calls.
* :class:`Budget` — an overall wall-clock budget split between benchmarks.
"""
import math
import time
from typing import Any, Callable, Dict, Optional

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on CPU)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def _proc_status_mb(key: str) -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory of the code run between :meth:`reset` and :meth:`read`.

    Args:
        device (torch.device): Where the measured code runs.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self._base: Optional[float] = None

    @property
    def kind(self) -> str:
        """What :meth:`read` returns, for the report."""
        if self.device.type == 'cuda':
            return 'torch.cuda.max_memory_allocated'
        return 'CPU peak RSS growth (VmHWM)'

    def reset(self) -> None:
        """Start a new region."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        self._base = None
        try:  # '5' resets VmHWM to the current RSS (Linux >= 4.0)
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            return
        self._base = _proc_status_mb('VmRSS')

    def read(self) -> Optional[float]:
        """Peak MB since :meth:`reset`, or None when it cannot be measured."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _proc_status_mb('VmHWM')
        if self._base is None or peak is None:
            return None
        return max(peak - self._base, 0.0)


def measure(fn: Callable[[], Any],
            device: torch.device,
            repeats: int = 3,
            max_seconds: float = math.inf,
            warmup: int = 1) -> Dict[str, Any]:
    """Time ``fn`` and record its peak memory.

    ``warmup`` untimed calls, then up to ``repeats`` timed calls; the loop
    stops early (after at least one timed call) once ``max_seconds`` of timed
    calls have passed.

    Args:
        fn (Callable): The work; its last result is returned.
        device (torch.device): Where it runs (synchronised around timing).
        repeats (int): Timed calls at most. Defaults to 3.
        max_seconds (float): Time limit of the timed calls. Defaults to inf.
        warmup (int): Untimed calls first. Defaults to 1.

    Returns:
        dict: ``seconds`` (mean per call), ``calls``, ``peak_mb`` (None where
        unmeasurable) and ``out`` (the last result).
    """
    out = None
    for _ in range(warmup):
        out = fn()
    memory = PeakMemory(device)
    memory.reset()
    calls, total = 0, 0.0
    while calls < max(repeats, 1):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        total += time.perf_counter() - start
        calls += 1
        if total >= max_seconds:
            break
    return dict(seconds=total / calls, calls=calls, peak_mb=memory.read(),
                out=out)


class Budget:
    """A wall-clock budget shared by several benchmarks.

    Args:
        total_s (float): Seconds for everything.
    """

    def __init__(self, total_s: float) -> None:
        self.total_s = float(total_s)
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return max(self.total_s - self.elapsed(), 0.0)

    def slice(self, fraction: float) -> float:
        """Seconds for a task allotted ``fraction`` of the total, capped by
        what is left."""
        return min(self.total_s * fraction, self.remaining())
