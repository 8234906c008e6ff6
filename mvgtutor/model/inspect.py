"""Looking inside a model: the shape each part produces (forward hooks), parameters and FLOPs per part.

Chapter 6 traces one forward pass of MVGFormer through these functions instead of wiring hooks by hand:

* ``trace_shapes(model, images)``: run ``model`` once and record, for every top-level part (and the decoder's
  own parts), what went in and what came out, as readable shape strings;
* ``format_trace(trace)``: those records as aligned text lines;
* ``decoder_costs(config, images)``: parameters and forward FLOPs of each decoder, at a profile's settings and
  at the paper's;
* ``parameters_by_part(model)``: the parameter count of each top-level part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mvgtutor.config import ModelConfig


def describe(value) -> str:
    """A short text for a module's input or output: a tensor's shape, ``N x shape`` for a list, a ``Graph``."""
    if torch.is_tensor(value):
        return str(tuple(value.shape))
    if isinstance(value, (list, tuple)) and value:
        return f"{len(value)} x {describe(value[0])}"
    if hasattr(value, "nodes") and hasattr(value, "assignment"):
        return f"Graph(nodes {tuple(value.nodes.shape)}, assignment {tuple(value.assignment.shape)})"
    return type(value).__name__


@dataclass(frozen=True)
class TraceEntry:
    """One module call: its name in the model, what it was given (first argument) and what it returned."""

    name: str
    given: str
    produced: str


def traced_parts(model: nn.Module, skip: Sequence[str] = ("fusion",)) -> list[tuple[str, nn.Module]]:
    """The parts worth tracing: ``model``'s children (less ``skip``), and the decoder's children and branches."""
    parts = [(name, module) for name, module in model.named_children() if name not in skip]
    decoder = getattr(model, "decoder", None)
    if decoder is not None:
        for name, module in decoder.named_modules():
            depth = name.count(".")
            if not name or isinstance(module, nn.ModuleList) or depth > 1:
                continue
            if depth == 1 and not name.startswith("branches"):  # inside a block: only the P3DA branches
                continue
            parts.append((f"decoder.{name}", module))
    return parts


def trace_shapes(model: nn.Module, images: torch.Tensor, **forward_kwargs) -> tuple[list[TraceEntry], dict]:
    """Run ``model(images)`` once in eval mode without gradients and record each part's input and output.

    ``images`` is ``(B, 1, D, H, W)``. Returns the entries in the order the calls *finished* (a hook fires when
    a module returns, so a decoder's parts come before the decoder) and the model's output dict. The hooks are
    removed afterwards, even when the forward pass fails; the model's train/eval mode is restored.
    """
    trace: list[TraceEntry] = []

    def record(name):
        def hook(module, args, out):
            if name == "encoder" and isinstance(out, tuple):  # the encoder returns (hidden states, attention)
                out = out[0]
            trace.append(TraceEntry(name, describe(args[0]) if args else "-", describe(out)))
        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in traced_parts(model)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            outputs = model(images, **forward_kwargs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return trace, outputs


def format_trace(trace: Sequence[TraceEntry], outputs: dict | None = None, width: int = 20) -> str:
    """The trace as lines ``name  given -> produced``; with ``outputs``, a last line for the fusion (eq. 8)."""
    lines = [f"  {entry.name:<{width}} {entry.given:>28} -> {entry.produced}" for entry in trace]
    if outputs is not None and "view_logits" in outputs:
        views = outputs["view_logits"]
        first = describe(next(iter(views.values())))
        lines.append(f"  {'fusion (eq. 8)':<{width}} {f'{len(views)} x ' + first:>28} -> "
                     f"{describe(outputs['logits'])}")
    return "\n".join(lines)


def count_parameters(module: nn.Module) -> int:
    """The number of parameters of ``module`` (works on the ``meta`` device: no memory needed)."""
    return sum(p.numel() for p in module.parameters())


def parameters_by_part(model: nn.Module) -> dict[str, int]:
    """``{part name: parameter count}`` for each top-level part of ``model``, plus ``"total"``."""
    counts = {name: count_parameters(module) for name, module in model.named_children()}
    counts["total"] = count_parameters(model)
    return counts


@dataclass(frozen=True)
class DecoderCost:
    """One decoder's size: at the profile (decoder and whole-model parameters, forward FLOPs per sample) and at
    the paper's settings (decoder and whole-model parameters)."""

    decoder: str
    decoder_parameters: int
    model_parameters: int
    flops_per_sample: int
    paper_decoder_parameters: int
    paper_model_parameters: int


def decoder_costs(config: ModelConfig, paper: ModelConfig, sample: torch.Tensor,
                  decoders: Sequence[str] = ("mlp", "mf", "p3da")) -> list[DecoderCost]:
    """Parameters and forward FLOPs of MVGFormer with each decoder.

    ``config`` is the profile's model, ``paper`` the paper's (counted on the ``meta`` device, so no memory);
    ``sample`` is one input ``(1, 1, D, H, W)`` on the device to measure on. FLOPs are counted by
    ``torch.utils.flop_counter.FlopCounterMode`` in eval mode (all views; VSL runs in training only).
    """
    from mvgtutor.model.mvgformer import MVGFormer

    rows = []
    for name in decoders:
        torch.manual_seed(0)
        model = MVGFormer(dataclasses.replace(config, decoder=name)).to(sample.device).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(sample)
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            paper_model = MVGFormer(dataclasses.replace(paper, decoder=name))
        rows.append(DecoderCost(name, count_parameters(model.decoder), count_parameters(model),
                                counter.get_total_flops() // len(sample), count_parameters(paper_model.decoder),
                                count_parameters(paper_model)))
    return rows


def best_time(run, repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``run()``, after one warm-up call (allocations, kernels).

    On CUDA, call ``torch.cuda.synchronize()`` inside ``run`` so that the time covers the work, not its launch.
    """
    import time

    run()  # warm-up: the first call pays for allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)
