"""The one patching helper: wrapt in, ``opentelemetry.instrumentation.utils.unwrap`` out.

A :class:`Patcher` belongs to one instrumentor. It records every attribute it changes and
:meth:`Patcher.unpatch_all` undoes exactly those, newest first: a method a class inherited
is deleted again rather than left behind as a copy. Hooks for modules not imported yet
(:meth:`Patcher.when_imported`) stop acting once the instrumentor is undone (wrapt cannot
remove them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from .guard import guarded

_MISSING = object()


@dataclass(frozen=True)
class _Patch:
    owner: Any
    name: str
    original: Any  # the owner's own attribute before the patch, or _MISSING (inherited)
    installed: Any  # what the patch put there
    proxy: bool  # a wrapt wrapper (undone with unwrap) or a plain replacement


class Patcher:
    """The patches of one instrumentor, undone symmetrically."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._applied: list[_Patch] = []
        self._generation = 0

    @property
    def applied(self) -> list[tuple[Any, str]]:
        """(owner, attribute) of each patch in place, oldest first."""
        return [(p.owner, p.name) for p in self._applied]

    def is_patched(self, owner: Any, name: str) -> bool:
        return any(p.owner is owner and p.name == name for p in self._applied)

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        """Wrap ``owner.name`` with a wrapt ``wrapper(wrapped, instance, args, kwargs)``."""
        original = vars(owner).get(name, _MISSING)
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        self._applied.append(_Patch(owner, name, original, vars(owner)[name], proxy=True))

    def replace(self, owner: Any, name: str, factory: Callable[[Any], Callable[..., Any]]) -> None:
        """Replace a method called once per training step by ``factory(original)``.

        wrapt costs about 0.8 µs per call, more than everything such a wrapper does; a plain
        function costs a quarter of that (bench/bench_torch_overhead.py).
        """
        original = vars(owner).get(name, _MISSING)
        current = getattr(owner, name)
        replacement = factory(current)
        replacement.__wrapped__ = current  # type: ignore[attr-defined]
        replacement.__doc__ = current.__doc__
        setattr(owner, name, replacement)
        self._applied.append(_Patch(owner, name, original, replacement, proxy=False))

    def when_imported(self, module: str, patch: Callable[[], Any]) -> None:
        """Run ``patch`` when ``module`` is imported (now, if it is), unless undone by then."""
        generation = self._generation

        def hook(_module: Any) -> None:
            if generation == self._generation:
                guarded(f"{self.name} instrumentation", patch)

        wrapt.register_post_import_hook(hook, module)

    def unpatch_all(self) -> None:
        """Undo every patch, newest first, and disarm the import hooks.

        A patch that someone else has patched over since is left alone (removing it would
        remove theirs too).
        """
        self._generation += 1
        while self._applied:
            p = self._applied.pop()
            if vars(p.owner).get(p.name, _MISSING) is not p.installed:
                continue
            if p.proxy:
                unwrap(p.owner, p.name)
            if p.original is _MISSING:
                try:
                    delattr(p.owner, p.name)
                except AttributeError:
                    pass
            elif vars(p.owner).get(p.name, _MISSING) is not p.original:
                setattr(p.owner, p.name, p.original)


__all__ = ["Patcher"]
