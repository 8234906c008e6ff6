"""Benchmark MVGFormer at the paper's size: forward+backward time per sample, peak memory, forward FLOPs.

    .venv/bin/python data_scripts/bench_model.py                    # paper size (C=256, Ln=12, P3DA), batch 4
    .venv/bin/python data_scripts/bench_model.py --conv valid_taps  # the P3DA variant that skips padding taps
    .venv/bin/python data_scripts/bench_model.py --decoder mf --steps 3

Prints one line per figure. Peak memory is the process's peak resident set size on a CPU (model, optimizer
state and activations of one training step) and ``torch.cuda.max_memory_allocated`` on a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mvgtutor.config import paper_config
from mvgtutor.model import MVGFormer, segmentation_loss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4, help="patches per step (default 4)")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up (default 2)")
    parser.add_argument("--decoder", default="p3da", choices=("p3da", "mf", "mlp"))
    parser.add_argument("--conv", default=None, choices=("dense", "valid_taps"), help="P3DA's dilated convs")
    parser.add_argument("--no-vsl", action="store_true", help="train without the VSL branch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def forward_flops(model: MVGFormer, x: torch.Tensor) -> int:
    """FLOPs of one forward pass (eval mode: no VSL branch) counted by ``FlopCounterMode``."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train()
    return counter.get_total_flops()


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    config = dataclasses.replace(paper_config().model, decoder=args.decoder, vsl=not args.no_vsl,
                                 **({"p3da_conv": args.conv} if args.conv else {}))
    torch.manual_seed(0)
    model = MVGFormer(config).to(device)
    train = paper_config().train
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr)
    side = config.input_size
    x = torch.randn(args.batch, 1, side, side, side, device=device)
    target = torch.randint(config.num_classes, (args.batch, side, side, side), device=device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", load average {os.getloadavg()[0]:.1f}")
    print(f"model: decoder={config.decoder} p3da_conv={config.p3da_conv} vsl={config.vsl} C={config.embed_dim} "
          f"Ln={config.depth}: {model.num_parameters() / 1e6:.2f}M parameters (paper, P3DA: 13.7M)")

    flops = forward_flops(model, x[:1])
    print(f"forward FLOPs per sample: {flops / 1e9:.1f} GFLOP")

    def step() -> None:
        loss, _ = segmentation_loss(model(x), target, train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    print(f"forward+backward+Adam, batch {args.batch}: {seconds:.2f} s/step, {seconds / args.batch:.2f} s/sample, "
          f"{3 * flops * args.batch / seconds / 1e9:.0f} GFLOP/s (3x forward FLOPs)")
    print(f"peak memory: {peak_memory_gib(device):.2f} GiB (budget 8 GiB)")


if __name__ == "__main__":
    main()
