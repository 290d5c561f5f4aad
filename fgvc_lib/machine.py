"""Which machine a run trained on: its CPU (model and the vector instructions torch uses), its GPU when it trained
on one, and the versions of the libraries that shape the numbers.

Why it is recorded (issue 19): the committed cpu results of 2026-12-04 could not be reproduced from their own code
on a clean machine. The likeliest cause is the embedded pretraining every run starts from
(:mod:`fgvc_lib.pretraining`), whose outcome moved with the float rounding of what trained it: on 2026-12-05 the
same code and images gave notebook 00's recipe trial 38.19 % from the 12-epoch pretraining trained at one torch
thread and 52.78 % from one trained at two (by editing ``PRETRAINING_THREADS``; 56.94 % committed, from a
pretraining nobody recorded), while that machine reproduced the results of 2026-11-23 to every digit, and torch
2.13.0+cpu and 2.14.1+cu130 gave equal trials there. A run's record therefore says where it was
made (:mod:`fgvc_lib.study.jobs` writes these facts into ``record.json``), the pretraining writes a record of its
own, the study writes the machines and the pretraining of a notebook's runs beside its results
(``machines.json``), and SUMMARY.md names them.
"""
from __future__ import annotations

import platform
from typing import Dict, Optional

LIBRARIES = ("torch", "torchvision", "numpy", "PIL")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def facts(device: Optional[str] = None) -> Dict[str, str]:
    """The machine's facts: ``cpu``, ``cpu_capability`` (torch's vector-instruction level, e.g. AVX2), ``gpu`` (the
    CUDA device's name when ``device`` resolves to one, "auto" included, else ""), ``cuda`` and ``cudnn`` (their
    versions on a GPU), ``python`` and each of :data:`LIBRARIES`."""
    import importlib

    import torch

    from .engine import resolve_device

    where = resolve_device(str(device or "cpu"))   # "auto" (the inline executor's) is CUDA when there is one
    gpu = torch.cuda.get_device_name(where) if where.type == "cuda" else ""
    found = {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "gpu": gpu,
             "cuda": (torch.version.cuda or "") if gpu else "",
             "cudnn": str(torch.backends.cudnn.version() or "") if gpu else "", "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            found[name] = "not installed"
    return found


def describe(machine: Dict[str, str]) -> str:
    """One line: ``AMD EPYC (AVX2), torch 2.14.1, torchvision 0.29.1, numpy 2.4.6, PIL 13.0.0``."""
    where = machine.get("gpu") or f"{machine.get('cpu', '?')} ({machine.get('cpu_capability', '?')})"
    return ", ".join([where] + [f"{name} {machine[name]}" for name in LIBRARIES if name in machine])
