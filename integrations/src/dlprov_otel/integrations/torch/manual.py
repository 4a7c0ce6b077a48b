"""Learning rates of trainings without an optimizer: the manual SGD update.

``p.data.add_(p.grad, alpha=-lr)`` (pytorch/examples word_language_model) or, under
``torch.no_grad()``, ``p -= lr * p.grad`` / ``p.sub_(lr * p.grad)``. No per-step patch sees
them: at the first step of each epoch of a training with no optimizer, :class:`RateSniffer`
puts plain functions on ``Tensor.add_``, ``sub_``, ``__isub__`` and ``__mul__``/``__rmul__``
for the one update that follows, reads the rate from the first parameter update whose
operand is a gradient, and takes them off again (at once, or after :data:`LIMIT` calls
without an update). Nothing is patched for the other steps.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

LIMIT = 2_000  # sniffed calls before giving up for this epoch
_METHODS = ("add_", "sub_", "__isub__", "__mul__", "__rmul__")


class RateSniffer:
    """Reads one manual update's learning rate, then removes itself."""

    def __init__(self, params: list[Any], found: Callable[[float], None]) -> None:
        self._grads = {id(p.grad) for p in params if p.grad is not None}
        self._found = found
        self._calls = 0
        self._scaled: dict[int, float] = {}  # id(lr * grad) -> lr
        self._originals: dict[str, Any] = {}
        if self._grads:
            self._arm()

    @property
    def armed(self) -> bool:
        return bool(self._originals)

    def _arm(self) -> None:
        import torch

        for name in _METHODS:
            self._originals[name] = torch.Tensor.__dict__.get(name)
            setattr(torch.Tensor, name, self._wrap(name, getattr(torch.Tensor, name)))

    def disarm(self) -> None:
        import torch

        originals, self._originals = self._originals, {}
        for name, original in originals.items():
            if original is None:
                try:
                    delattr(torch.Tensor, name)
                except AttributeError:
                    pass
            else:
                setattr(torch.Tensor, name, original)

    def _hit(self, lr: float) -> None:
        self.disarm()
        self._found(lr)

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        grads, scaled = self._grads, self._scaled

        def sniffed(this: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(this, *args, **kwargs)
            try:
                self._calls += 1
                other = args[0] if args else kwargs.get("other")
                if name in ("__mul__", "__rmul__"):
                    if id(this) in grads and isinstance(other, numbers.Real):
                        scaled[id(out)] = float(other)
                elif name == "add_" and id(other) in grads:
                    alpha = kwargs.get("alpha", args[1] if len(args) > 1 else 1)
                    if isinstance(alpha, numbers.Real) and alpha < 0:
                        self._hit(-float(alpha))
                elif name in ("sub_", "__isub__"):
                    if id(other) in scaled:
                        self._hit(scaled[id(other)])
                    elif id(other) in grads:
                        alpha = kwargs.get("alpha", args[1] if len(args) > 1 else 1)
                        if isinstance(alpha, numbers.Real):
                            self._hit(float(alpha))
                if self.armed and self._calls >= LIMIT:
                    self.disarm()
            except Exception:  # never in the way of the update itself
                self.disarm()
            return out

        sniffed.__wrapped__ = original  # type: ignore[attr-defined]
        return sniffed


__all__ = ["LIMIT", "RateSniffer"]
