"""Facts about the machine and person behind an execution (the PROV agents)."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import sys
from pathlib import Path
from typing import Any

from . import semconv


def scientist() -> str:
    """Who runs the training: ``DLPROV_SCIENTIST``, else the login name."""
    name = os.environ.get("DLPROV_SCIENTIST")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return f"uid-{os.getuid()}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _container() -> str:
    if Path("/.dockerenv").exists():
        return "docker"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return ""
    for name in ("docker", "kubepods", "containerd", "podman", "lxc"):
        if name in cgroup:
            return name
    return ""


def _gpus() -> list[str]:
    # Only ask frameworks that are already imported: importing torch or TensorFlow here
    # would cost seconds and memory the user did not ask for.
    names: list[str] = []
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception:
            pass
    tf = sys.modules.get("tensorflow")
    if not names and tf is not None:
        try:
            names = [d.name for d in tf.config.list_physical_devices("GPU")]
        except Exception:
            pass
    return names


@functools.cache
def host_facts() -> dict[str, Any]:
    """Static facts about this host (computed once per process)."""
    return {
        semconv.HOST_NAME: platform.node(),
        semconv.HOST_ARCH: platform.machine(),
        semconv.OS_TYPE: sys.platform,
        semconv.OS_DESCRIPTION: platform.platform(),
        semconv.PROCESS_RUNTIME_VERSION: platform.python_version(),
        semconv.HARDWARE_CPU_MODEL: _cpu_model(),
        semconv.HARDWARE_CPU_COUNT: os.cpu_count() or 0,
        semconv.HARDWARE_MEMORY: _memory_bytes(),
        semconv.HARDWARE_CONTAINER: _container(),
    }


def hardware_attributes() -> dict[str, Any]:
    """Host facts plus the GPUs visible now and the process id."""
    facts = dict(host_facts())
    facts[semconv.HARDWARE_GPUS] = _gpus()
    facts[semconv.PROCESS_PID] = os.getpid()
    return facts
