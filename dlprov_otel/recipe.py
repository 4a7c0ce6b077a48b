"""The recipe of a run: the code, environment and seeds behind an execution.

Recorded by itself whenever an execution starts (:meth:`dlprov_otel.tracing.Execution.start`,
the one place every API and instrumentation goes through), as ``recipe`` spans under the
execution's root span: the store keeps them as rows of ``execution_recipe`` (name, value,
digest), PROV as a ``prov:Plan``. Three emissions, each one only with what it adds:

- at start, on the caller's thread (well under a millisecond): the entry script (path and
  sha256), the command line (arguments that look secret masked), the working directory, the
  Python version, allow-listed environment variables and the seeds set so far;
- soon after, from a background thread: the git commit, branch, dirty flag and the digest of
  ``git diff HEAD`` (the diff itself when under 64 KiB), and the versions of the
  distributions whose modules are imported (``git`` and the package metadata are the cost);
- at the end: packages imported and seeds set since.

Seeds are caught by wrapping ``random.seed``, ``numpy.random.seed``, ``torch.manual_seed``
and ``tf.random.set_seed`` (post-import hooks: numpy, torch and TensorFlow are not imported
here). A step that fails records what it could (``git.error``, ``script.error``) and never
raises. ``DLPROV_RECIPE=0`` turns recording off; ``DLPROV_RECIPE_ENV`` names more variables
to keep (secret-looking names are refused all the same).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import packages, semconv
from .digests import sha256_file
from .values import storable

logger = logging.getLogger(__name__)

DIFF_LIMIT = 64 * 1024  # a larger diff is stored as its digest only
GIT_TIMEOUT = 5.0
END_WAIT = 2.0  # how long the end of a run waits for the background part

# Variables that say how a run was placed and made reproducible; nothing else is read.
ENV_ALLOWED = (
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG",
    "PYTORCH_CUDA_ALLOC_CONF", "TORCH_DETERMINISTIC", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "PYTHONHASHSEED", "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC", "TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL", "TF_FORCE_GPU_ALLOW_GROWTH",
    "KERAS_BACKEND", "XLA_FLAGS", "SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_CPUS_PER_TASK", "SLURM_JOB_PARTITION",
    "PBS_JOBID", "LSB_JOBID", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
    "DLPROV_RUN_NAME", "DLPROV_DATAFLOW", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV",
)
SECRET = re.compile(r"TOKEN|KEY|SECRET|PASSW|PASSWD|PWD|CREDENTIAL|AUTH|PRIVATE|SESSION|COOKIE|SIGNATURE", re.I)
_URL_CREDENTIALS = re.compile(r"://[^/@\s]*:[^/@\s]*@")
MASK = "***"

Entry = tuple[str, str, str | None]  # (name, value, digest)


def enabled() -> bool:
    return os.environ.get("DLPROV_RECIPE", "1").strip().lower() not in ("0", "false", "no", "off")


def secret_looking(name: str) -> bool:
    return bool(SECRET.search(name))


def _clean_value(value: str) -> str:
    return _URL_CREDENTIALS.sub("://" + MASK + "@", value)


# --- the parts of a recipe ------------------------------------------------------------------
def entry_script() -> str | None:
    """The script the interpreter runs (``python train.py``, ``python -m pkg.mod``), if any."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path and "ipykernel" in sys.modules:  # a notebook: argv[0] is the kernel's launcher
        path = os.environ.get("JPY_SESSION_NAME") or None  # the notebook, as Jupyter names it
    elif not path and sys.argv and sys.argv[0] not in ("", "-c", "-m"):
        path = sys.argv[0]
    return os.path.abspath(path) if path else None


def masked_command(argv: Iterable[str]) -> str:
    """The command line with the values of secret-looking options masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if arg.startswith("-") and secret_looking(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + MASK)
            else:
                out.append(arg)
                hide_next = True
            continue
        name, eq, _ = arg.partition("=")
        if eq and name and not name.startswith("-") and secret_looking(name):  # wandb.api_key=... (Hydra)
            out.append(name + "=" + MASK)
            continue
        out.append(_clean_value(arg))
    return shlex.join(out)


def environment(extra: str | None = None) -> list[Entry]:
    """Allow-listed environment variables; a secret-looking name is never kept."""
    names = list(ENV_ALLOWED)
    names += [n.strip() for n in (extra or "").split(",") if n.strip()]
    out: list[Entry] = []
    for name in dict.fromkeys(names):
        if secret_looking(name):
            continue
        value = os.environ.get(name)
        if value is not None:
            out.append((f"env.{name}", _clean_value(value), None))
    return out


def script_entries() -> list[Entry]:
    out: list[Entry] = []
    path = entry_script()
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    out.append(("command", masked_command(argv), None))
    try:
        out.append(("cwd", os.getcwd(), None))
    except OSError as exc:  # the working directory was removed: the rest is still known
        out.append(("cwd.error", f"{type(exc).__name__}: {exc}", None))
    if path is None:
        out.append(("script.error", "no entry script (interactive session or -c)", None))
        return out
    try:
        digest = sha256_file(path)
    except OSError as exc:
        out.append(("script.path", path, None))
        out.append(("script.error", f"{type(exc).__name__}: {exc}", None))
        return out
    out.append(("script.path", path, digest))
    out.append(("script.sha256", digest, digest))
    return out


def python_entries() -> list[Entry]:
    return [
        ("python.version", platform.python_version(), None),
        ("python.implementation", platform.python_implementation(), None),
        ("python.executable", sys.executable, None),
    ]


def _git(args: list[str], cwd: str) -> str:
    # text as a store takes it: bytes that are not UTF-8 (a Latin-1 file in a diff) become U+FFFD
    return _git_bytes(args, cwd).decode("utf-8", "replace")


def _git_bytes(args: list[str], cwd: str) -> bytes:
    # at a lower priority than the training beside it (a large diff costs git tenths of a second)
    low = ["nice", "-n", "10"] if shutil.which("git") and shutil.which("nice") else []
    done = subprocess.run(
        [*low, "git", "-C", cwd, *args],
        capture_output=True,
        timeout=GIT_TIMEOUT,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(lines[0] if lines else f"git {args[0]} failed ({done.returncode})")
    return done.stdout


_git_cache: dict[str, tuple[float, list[Entry]]] = {}
GIT_CACHE_SECONDS = 10.0  # runs started in one process within this share one look at git


def git_entries(directory: str) -> list[Entry]:
    """Commit, branch, dirty flag and ``git diff HEAD`` of the repository holding ``directory``:
    one ``git status`` (and one ``git diff`` when the tree is dirty)."""
    now = time.monotonic()
    cached = _git_cache.get(directory)
    if cached is not None and now - cached[0] < GIT_CACHE_SECONDS:
        return list(cached[1])
    found = _look_at_git(directory)
    _git_cache[directory] = (now, found)
    return list(found)


def _look_at_git(directory: str) -> list[Entry]:
    try:
        status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], directory)
    except FileNotFoundError:
        return [("git.error", "git is not installed", None)]
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return [("git.error", str(exc), None)]
    commit = branch = None
    changed = 0
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            changed += 1
    out: list[Entry] = []
    if commit and commit != "(initial)":
        out.append(("git.commit", commit, None))
    if branch:
        out.append(("git.branch", "" if branch == "(detached)" else branch, None))
    out.append(("git.dirty", "true" if changed else "false", None))
    if changed and commit and commit != "(initial)":
        try:
            raw = _git_bytes(["diff", "HEAD", "--no-color", "--no-ext-diff"], directory)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            out.append(("git.error", f"git diff: {exc}", None))
        else:
            digest = hashlib.sha256(raw).hexdigest()  # of git's own bytes
            text = raw.decode("utf-8", "replace") if len(raw) <= DIFF_LIMIT else f"({len(raw)} bytes, not stored)"
            out.append(("git.diff", text, digest))
    try:
        top = _git(["rev-parse", "--show-toplevel"], directory).strip()
        out.append(("git.root", top, None))
    except (OSError, RuntimeError, subprocess.SubprocessError):
        pass
    return out


def imported_top_modules() -> set[str]:
    return {name.partition(".")[0] for name in list(sys.modules) if name and not name.startswith("_")}


def package_entries(modules: Iterable[str]) -> list[Entry]:
    """``package.<distribution>`` = version, for the distributions of imported modules."""
    found = packages.versions(set(modules))
    return [(f"package.{dist}", found[dist], None) for dist in sorted(found, key=str.lower)]


# --- seeds -------------------------------------------------------------------------------------
_seeds: dict[str, str] = {}
_seed_lock = threading.Lock()


def seeds() -> dict[str, str]:
    """The seeds set so far in this process (``random``, ``numpy``, ``torch``, ``tensorflow``)."""
    with _seed_lock:
        return dict(_seeds)


def _wrap_seed(module: Any, attr: str, name: str, skip_none: bool = False) -> None:
    original = getattr(module, attr, None)
    if original is None or getattr(original, "__dlprov_seed__", False):
        return

    @functools.wraps(original)
    def seeded(*args: Any, **kwargs: Any) -> Any:
        try:
            value = args[0] if args else next(iter(kwargs.values()), None)
            if value is not None or not skip_none:
                with _seed_lock:
                    _seeds[name] = "None" if value is None else str(value)[:200]
        except Exception:  # never in the way of the user's call
            pass
        return original(*args, **kwargs)

    seeded.__dlprov_seed__ = True  # type: ignore[attr-defined]
    try:
        setattr(module, attr, seeded)
    except (AttributeError, TypeError):
        logger.debug("DLProv: cannot wrap %s.%s", module, attr)


def _hook_numpy(module: Any) -> None:
    random_mod = sys.modules.get("numpy.random") or getattr(module, "random", None)
    if random_mod is not None:
        _wrap_seed(random_mod, "seed", "numpy")
        # np.random.default_rng(seed); an unseeded call (a library's own generator) is not a seed
        _wrap_seed(random_mod, "default_rng", "numpy.default_rng", skip_none=True)


def _hook_torch(module: Any) -> None:
    _wrap_seed(module, "manual_seed", "torch")
    if (random_mod := sys.modules.get("torch.random")) is not None:
        _wrap_seed(random_mod, "manual_seed", "torch")


def _hook_tensorflow(module: Any) -> None:
    try:
        random_mod = module.random
    except Exception:  # a lazily loaded API module that fails to load
        return
    _wrap_seed(random_mod, "set_seed", "tensorflow")


_HOOKS: dict[str, Callable[[Any], None]] = {"numpy": _hook_numpy, "torch": _hook_torch, "tensorflow": _hook_tensorflow}
_installed = False


def install_seed_hooks() -> None:
    """Wrap the seed functions: now for ``random`` and what is imported, else when imported."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import random

        import wrapt

        _wrap_seed(random, "seed", "random")
        for name, hook in _HOOKS.items():
            wrapt.register_post_import_hook(_guarded(hook), name)
    except Exception:  # never in the way of an import of dlprov_otel
        logger.debug("DLProv: seed hooks not installed", exc_info=True)


def _guarded(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        try:
            hook(module)
        except Exception:
            logger.debug("DLProv: seed hook failed", exc_info=True)

    return run


def seed_entries(values: dict[str, str]) -> list[Entry]:
    return [(f"seed.{k}", v, None) for k, v in sorted(values.items())]


def torch_initial_seed() -> list[Entry]:
    """The seed torch's default generator started from (set or drawn), when torch is imported."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "initial_seed"):
        return []
    try:
        return [("seed.torch.initial", str(torch.initial_seed()), None)]
    except Exception:
        return []


# --- recording -------------------------------------------------------------------------------
Emit = Callable[[list[Entry], str], None]


_pending: set[threading.Thread] = set()  # background parts still running


def wait_background(timeout: float) -> None:
    """Wait (up to ``timeout`` seconds) for the background parts of recipes to be emitted:
    ``flush()`` counts them as recorded so far."""
    deadline = time.monotonic() + timeout
    for thread in list(_pending):
        thread.join(max(0.0, deadline - time.monotonic()))


def _part(entries: list[Entry], what: str, part: Callable[[], list[Entry]]) -> None:
    """Add one part's entries, or ``<what>.error`` when it fails: the rest is kept either way."""
    try:
        entries.extend(part())
    except Exception as exc:
        entries.append((f"{what}.error", f"{type(exc).__name__}: {exc}", None))


class RecipeRecorder:
    """The recipe of one execution in this process: start, background part, end."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.sent: dict[str, str] = {}
        self.modules: set[str] = set()
        self.thread: threading.Thread | None = None

    def _send(self, entries: list[Entry], phase: str) -> None:
        fresh = [e for e in entries if self.sent.get(e[0]) != e[1]]
        if not fresh:
            return
        for name, value, _ in fresh:
            self.sent[name] = value
        self.emit(fresh, phase)

    def start(self) -> None:
        entries: list[Entry] = []
        _part(entries, "script", script_entries)
        _part(entries, "python", python_entries)
        _part(entries, "env", lambda: environment(os.environ.get("DLPROV_RECIPE_ENV")))
        _part(entries, "seed", lambda: seed_entries(seeds()))
        self._send(entries, "start")
        self.thread = threading.Thread(target=self._background, name="dlprov-recipe", daemon=True)
        _pending.add(self.thread)
        self.thread.start()

    def _background(self) -> None:
        try:
            script = entry_script()
            entries: list[Entry] = []
            _part(entries, "git", lambda: git_entries((os.path.dirname(script) if script else "") or os.getcwd()))
            self.modules = imported_top_modules()
            _part(entries, "package", lambda: package_entries(self.modules))
            self._send(entries, "environment")
        except Exception:
            logger.debug("DLProv: recording the recipe failed", exc_info=True)
        finally:
            _pending.discard(threading.current_thread())

    def end(self) -> None:
        if self.thread is not None:
            self.thread.join(END_WAIT)
        entries: list[Entry] = []
        try:
            now = imported_top_modules()
            new = now - self.modules if self.modules else set()
            if new:
                entries.extend(package_entries(new))
        except Exception:
            logger.debug("DLProv: packages at the end of the run", exc_info=True)
        _part(entries, "seed", lambda: seed_entries(seeds()))
        _part(entries, "seed", torch_initial_seed)
        try:
            self._send(entries, "end")
        except Exception:  # the run ends whatever happens to its recipe
            logger.debug("DLProv: the recipe's end part was not emitted", exc_info=True)


def attributes(entries: list[Entry], phase: str) -> dict[str, Any]:
    """The span attributes of one recipe emission."""
    return {
        semconv.KIND: semconv.KIND_RECIPE,
        semconv.RECIPE_PHASE: phase,
        semconv.RECIPE_NAMES: [storable(e[0]) for e in entries],
        semconv.RECIPE_VALUES: [storable(e[1]) for e in entries],
        semconv.RECIPE_DIGESTS: [e[2] or "" for e in entries],
    }


def entries_of(attrs: Any) -> list[Entry]:
    """The entries of a recipe span's attributes (the inverse of :func:`attributes`)."""
    names = list(attrs.get(semconv.RECIPE_NAMES) or ())
    values = list(attrs.get(semconv.RECIPE_VALUES) or ())
    digests = list(attrs.get(semconv.RECIPE_DIGESTS) or ())
    out: list[Entry] = []
    for i, name in enumerate(names):
        value = values[i] if i < len(values) else ""
        digest = digests[i] if i < len(digests) else ""
        out.append((str(name), "" if value is None else str(value), str(digest) if digest else None))
    return out


__all__ = [
    "ENV_ALLOWED",
    "RecipeRecorder",
    "attributes",
    "enabled",
    "entries_of",
    "environment",
    "git_entries",
    "install_seed_hooks",
    "masked_command",
    "package_entries",
    "secret_looking",
    "seeds",
    "wait_background",
]
