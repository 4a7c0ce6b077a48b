"""A pass over a DataLoader: the losses of its steps (kept on the device, read once per
epoch), its evaluation losses and correct predictions."""

from __future__ import annotations

import time
from typing import Any

from .facts import LoaderInfo, reference

_FOLD = 64  # device losses kept before they are summed on the device (no sync, few objects)


class Pass:
    """Accumulators of one pass over a DataLoader (or of the steps outside any pass)."""

    __slots__ = (
        "correct", "cpu_sum", "eval_calls", "eval_cpu_sum", "eval_losses", "eval_n", "eval_partial", "extra",
        "grad", "info", "loader", "losses", "mark", "partial", "steps", "t0", "total",
    )  # fmt: skip

    def __init__(self, loader: Any = None, info: LoaderInfo | None = None, grad: bool = True) -> None:
        self.loader = reference(loader) if loader is not None else None
        self.info = info
        self.grad = grad
        self.t0 = time.perf_counter()
        # Losses of backward() calls. On the CPU, .item() is a plain read: summed as floats,
        # nothing is kept. On an accelerator, .item() would wait for the device: the detached
        # 0-d tensors are kept and summed on the device every _FOLD steps, read once per epoch.
        self.cpu_sum = 0.0
        self.losses: list[Any] = []
        self.partial: Any = None  # folded sum of earlier device losses (float64 tensor)
        self.steps = 0
        self.mark = 0  # steps when the last per-step metric under no_grad was dropped
        self.eval_cpu_sum = 0.0
        self.eval_losses: list[Any] = []
        self.eval_partial: Any = None
        self.eval_n = 0  # samples the evaluation losses were taken over
        self.eval_calls = 0
        self.correct: Any = None  # device tensor: correctly classified samples
        self.total = 0
        self.extra: dict[str, Any] = {}

    @staticmethod
    def _fold(values: list[Any], partial: Any) -> Any:
        import torch

        try:
            s = torch.stack(values).sum(dtype=torch.float64)
        except (RuntimeError, TypeError):  # no float64 (MPS) or mixed devices
            s = torch.stack([v.float().cpu() for v in values]).sum(dtype=torch.float64)
        return s if partial is None else partial + s.to(partial.device)

    def add_loss(self, loss: Any) -> None:
        if loss.is_cpu:
            self.cpu_sum += loss.item()
        else:
            self.losses.append(loss.detach())
            if len(self.losses) >= _FOLD:
                self.partial = self._fold(self.losses, self.partial)
                self.losses = []
        self.steps += 1

    def mean_loss(self) -> float | None:
        if not self.steps:
            return None
        total = self.cpu_sum
        device = self._fold(self.losses, self.partial) if self.losses else self.partial
        if device is not None:
            total += float(device.item())  # the one device sync of the epoch
        return total / self.steps

    def add_eval(self, name: str, reduction: Any, out: Any, inp: Any, tgt: Any) -> None:
        """An evaluation loss (module class or functional name, its reduction, its value and
        arguments): summed per sample on the device, so the mean is the dataset's mean however
        the batches are sized and whether the script asks for ``reduction='sum'``."""
        self.eval_calls += 1
        weighed = loss_weight(name, reduction, out, inp, tgt)
        if weighed is not None:
            total, n = weighed
            self.eval_n += n
            if total.is_cpu:
                self.eval_cpu_sum += total.item()
            else:
                self.eval_losses.append(total)
                if len(self.eval_losses) >= _FOLD:
                    self.eval_partial = self._fold(self.eval_losses, self.eval_partial)
                    self.eval_losses = []
        hit = correct_predictions(name, inp, tgt)
        if hit is not None:
            self.correct = hit[0] if self.correct is None else self.correct + hit[0]
            self.total += hit[1]

    def eval_metrics(self) -> dict[str, Any]:
        loss = None
        if self.eval_n:
            total = self.eval_cpu_sum
            device = self._fold(self.eval_losses, self.eval_partial) if self.eval_losses else self.eval_partial
            if device is not None:
                total += float(device.item())
            loss = total / self.eval_n
        acc = float(self.correct.item()) / self.total if self.correct is not None and self.total else None
        return {"loss": loss, "accuracy": acc}


_CLASS_LOSSES = ("CrossEntropyLoss", "NLLLoss", "cross_entropy", "nll_loss")
_BINARY_LOSSES = {"BCEWithLogitsLoss": 0.0, "binary_cross_entropy_with_logits": 0.0,
                  "BCELoss": 0.5, "binary_cross_entropy": 0.5}  # fmt: skip


def loss_weight(name: str, reduction: Any, out: Any, inp: Any, tgt: Any) -> tuple[Any, int] | None:
    """(sum of the per-sample losses as a detached tensor, samples) of one loss call, or
    ``None`` when the value is not a loss over samples that can be counted."""
    import torch

    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return None
    out = out.detach()
    if out.ndim > 0:  # reduction='none': the per-sample losses themselves
        return out.sum(dtype=torch.float64) if out.is_cpu else out.sum(), out.numel()
    n = 1
    if isinstance(inp, torch.Tensor) and isinstance(tgt, torch.Tensor):
        if name in _CLASS_LOSSES:
            # class indices: one sample per target; class probabilities: one per row
            n = tgt.numel() if not tgt.is_floating_point() else (inp.shape[0] if inp.ndim > 1 else 1)
        else:
            n = inp.numel()
    if reduction == "sum":
        return out, max(n, 1)
    if reduction not in (None, "mean"):
        return None
    return out * n, max(n, 1)


def correct_predictions(name: str, inp: Any, tgt: Any) -> tuple[Any, int] | None:
    """(correct predictions as a device tensor, predictions) of a batch, when the loss says
    what a prediction is (class scores or binary logits/probabilities)."""
    import torch

    if not isinstance(inp, torch.Tensor) or not isinstance(tgt, torch.Tensor):
        return None
    if name in _CLASS_LOSSES:
        if inp.ndim == 2 and tgt.ndim == 1 and not tgt.is_floating_point() and inp.shape[0] == tgt.shape[0]:
            return (inp.detach().argmax(1) == tgt).sum(), int(tgt.shape[0])
        return None
    threshold = _BINARY_LOSSES.get(name)
    if threshold is not None and inp.shape == tgt.shape:
        return ((inp.detach() > threshold) == (tgt > 0.5)).sum(), tgt.numel()
    return None


__all__ = ["Pass", "correct_predictions", "loss_weight"]
