"""``python -m mvgtutor bench``: training and inference speed, memory and FLOPs per profile, and the T4 estimate.

On the device at hand it measures samples/s and peak memory; on a GPU bigger than a T4, ``--as-t4`` (default
for the colab profile) caps the process to a T4's memory and computes in fp16, as on Colab. Everywhere it counts
FLOPs per training sample and estimates a T4's time per training run and the peak GPU memory
(``mvgtutor.train.estimate`` says how). A profile that needs CUDA is not timed on a CPU (the paper's model takes
minutes per step there): it gets its counts and estimates only. ``--out FILE`` writes the results with their
provenance (machine, load, torch, commit), which chapter 0 reads.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from pathlib import Path

from mvgtutor.config import PROFILE_ALIASES, PROFILE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench``."""
    parser.add_argument("--profiles", nargs="+", choices=PROFILE_NAMES + tuple(PROFILE_ALIASES),
                        default=list(PROFILE_NAMES), help="profiles to measure (default: all four; gpu is the "
                        "old name of paper)")
    parser.add_argument("--model", default="mvgformer", choices=("mvgformer", "voxresnet", "unet3d"),
                        help="architecture (default mvgformer)")
    parser.add_argument("--decoder", choices=("p3da", "mf", "mlp"), help="MVGFormer's decoder (default p3da)")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the profile's, at most "
                        "--max-cpu-batch on a CPU)")
    parser.add_argument("--max-cpu-batch", type=int, default=8, help="cap on the timed batch size on a CPU "
                        "(default 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps after the warm-up (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1; under --compile "
                        "or --compare-compile the first step compiles and is never timed)")
    parser.add_argument("--inference-size", type=int, default=64, help="side of the random volume for the "
                        "inference timing (default 64; 512 for a SHREC tomogram)")
    parser.add_argument("--inference-batch", type=int, default=32, help="tiles per forward pass (default 32)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="number format (default auto: bf16/fp16 on GPUs, fp32 on CPU; fp16 under --as-t4)")
    parser.add_argument("--memory-format", choices=("auto", "channels_first", "channels_last"), default="auto",
                        help="layout of the 3D feature maps (default auto: channels-last on CUDA, see "
                        "mvgtutor.runtime.layout)")
    parser.add_argument("--compile", action="store_true", help="time the training step under torch.compile "
                        "(its compile time falls in the warm-up step and is not counted)")
    parser.add_argument("--compare-compile", action="store_true", help="time the training step twice in this run, "
                        "eager and under torch.compile, and print both speeds and their ratio")
    parser.add_argument("--as-t4", choices=("auto", "on", "off"), default="auto", help="on a GPU: cap memory to "
                        "a T4's and force fp16 (default auto: for the colab profile only)")
    parser.add_argument("--untimed", nargs="+", default=[], choices=PROFILE_NAMES + tuple(PROFILE_ALIASES),
                        metavar="PROFILE", help="profiles to count and estimate only, not to time here (e.g. "
                        "colab on a CPU: its dilated 3D convolutions take minutes per step there)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count and the T4 time estimate")
    parser.add_argument("--no-memory-estimate", action="store_true", help="skip the estimate of GPU memory from "
                        "saved activations (two CPU forward passes)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per profile")
    parser.add_argument("--out", type=Path, help="also write all results, with their provenance, to this JSON file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _check(args: argparse.Namespace):
    """Validate the options before anything runs; returns the device."""
    from mvgtutor.cli import checks

    for option, value in (("--batch-size", args.batch_size), ("--max-cpu-batch", args.max_cpu_batch),
                          ("--steps", args.steps), ("--inference-size", args.inference_size),
                          ("--inference-batch", args.inference_batch)):
        checks.positive_int(option, value)
    checks.non_negative_int("--warmup", args.warmup)
    if args.out is not None:
        checks.output_file("--out", args.out, overwrite=args.overwrite)
    return checks.torch_device("--device", args.device)


def measure_profile(name: str, args: argparse.Namespace, device) -> dict:
    """Every figure of one profile: counts, estimates, and (where the profile can run here) measurements."""
    import torch

    from mvgtutor.config import make_profile, to_dict
    from mvgtutor.train import benchmark, estimate
    from mvgtutor.train.engine import default_loss
    from mvgtutor.train.models import build_model

    profile = make_profile(name)
    model_config = profile.model if args.decoder is None else dataclasses.replace(profile.model,
                                                                                  decoder=args.decoder)
    t4 = device.type == "cuda" and (args.as_t4 == "on" or (args.as_t4 == "auto" and profile.name == "colab"))
    precision = "fp16" if t4 else args.precision
    train_config = dataclasses.replace(profile.train, precision=precision, memory_format=args.memory_format,
                                       compile=args.compile)
    sizes = dict(input_size=model_config.input_size, num_classes=model_config.num_classes)
    torch.manual_seed(0)
    model = build_model(args.model, model_config)
    result = dict(profile=profile.name, model=args.model, decoder=model_config.decoder,
                  parameters=sum(p.numel() for p in model.parameters()), device=str(device),
                  profile_batch_size=profile.train.batch_size, samples_per_run=estimate.samples_per_run(profile),
                  as_t4=t4, model_config=to_dict(model_config))
    flops = None if args.no_flops else benchmark.training_flops_per_sample(model, train_config, default_loss,
                                                                           batch_size=1, **sizes)
    result["train_flops_per_sample"] = flops
    if flops:
        t4_speed = estimate.estimated_samples_per_s(flops)
        result.update(t4_samples_per_s=t4_speed, t4_run_minutes=result["samples_per_run"] / t4_speed / 60,
                      t4_achieved_fraction=estimate.achieved_fraction())
    if not args.no_memory_estimate:
        memory = estimate.measure_activation_memory(model, train_config, default_loss, **sizes)
        result.update(activation_bytes_per_sample=memory.per_sample_bytes,
                      gpu_memory_estimate_gib=memory.at_batch(profile.train.batch_size,
                                                              estimate.MEMORY_CALIBRATION) / 2**30)
    if profile.requires_cuda and device.type != "cuda":
        result.update(timed=False, untimed_reason="needs CUDA")  # minutes per step on a CPU: counted, not timed
        return result
    if profile.name in {PROFILE_ALIASES.get(n, n) for n in args.untimed}:
        result.update(timed=False, untimed_reason="--untimed")
        return result
    batch = args.batch_size or profile.train.batch_size
    if device.type == "cpu" and args.batch_size is None:
        batch = min(batch, args.max_cpu_batch)
    def time_training(config, warmup: int):  # samples/s of the training step, on a simulated T4 where asked
        with benchmark.as_t4(device) if t4 else contextlib.nullcontext():
            return benchmark.measure_training(model, config, default_loss, batch_size=batch, device=device,
                                              steps=args.steps, warmup=warmup, **sizes)

    speed = time_training(train_config, args.warmup)
    voxels_per_s = benchmark.measure_inference(model, args.inference_size, device=device,
                                               batch_size=args.inference_batch, precision=precision,
                                               tile=model_config.input_size)
    if args.compare_compile and not args.compile:  # the same step again, compiled (warm-up: the compilation)
        compiled = time_training(dataclasses.replace(train_config, compile=True), max(args.warmup, 1))
        result.update(compiled_samples_per_s=compiled.samples_per_s,
                      compile_speedup=compiled.samples_per_s / speed.samples_per_s)
    peak = benchmark.device_peak_flops(device)
    result.update(timed=True, precision=speed.precision, batch_size=batch, memory_format=args.memory_format,
                  compile=args.compile, train_samples_per_s=speed.samples_per_s,
                  cpu_seconds_per_sample=speed.cpu_seconds_per_sample, torch_threads=torch.get_num_threads(),
                  run_minutes_here=result["samples_per_run"] / speed.samples_per_s / 60,
                  peak_memory_gib=speed.peak_memory_bytes / 2**30,
                  peak_memory_kind="cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS",
                  mfu=flops * speed.samples_per_s / peak if (peak and flops) else None,
                  inference_voxels_per_s=voxels_per_s, inference_volume=args.inference_size)
    return result



def format_result(result: dict) -> str:
    """One line per profile: what was measured here, and the T4 estimate."""
    from mvgtutor.train.costs import format_minutes

    parts = [f"{result['profile']:>5}: {result['model']} ({result['parameters'] / 1e6:.2f} M params)"]
    if result.get("train_flops_per_sample"):
        parts.append(f"{result['train_flops_per_sample'] / 1e9:,.1f} GFLOP/sample")
    if result.get("timed"):
        mfu = f", MFU {result['mfu']:.1%}" if result.get("mfu") is not None else ""
        parts.append(f"here ({result['device']}, {result['precision']}, batch {result['batch_size']}"
                     f"{', T4 memory cap' if result['as_t4'] else ''}): train {result['train_samples_per_s']:,.1f} "
                     f"samples/s{mfu}, peak memory {result['peak_memory_gib']:.2f} GiB "
                     f"({result['peak_memory_kind']}), {format_minutes(result['run_minutes_here'])} per training run; "
                     f"inference {result['inference_voxels_per_s'] / 1e6:,.3f} Mvoxel/s")
        if "compiled_samples_per_s" in result:
            parts.append(f"torch.compile: train {result['compiled_samples_per_s']:,.2f} samples/s against "
                         f"{result['train_samples_per_s']:,.2f} eager (x{result['compile_speedup']:.2f})")
    else:
        parts.append(f"not timed on {result['device']} ({result.get('untimed_reason', 'needs CUDA')})")
    if "t4_samples_per_s" in result:
        parts.append(f"T4 estimate: {result['t4_samples_per_s']:,.0f} samples/s, "
                     f"{format_minutes(result['t4_run_minutes'])} per run of {result['samples_per_run']:,} samples")
    if "gpu_memory_estimate_gib" in result:
        parts.append(f"GPU memory estimate {result['gpu_memory_estimate_gib']:.1f} GiB at batch "
                     f"{result['profile_batch_size']}")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Measure every requested profile and print one line (or JSON object) each; ``--out`` writes them all."""
    import torch

    from mvgtutor.train import costs

    device = _check(args)
    names = list(dict.fromkeys(PROFILE_ALIASES.get(n, n) for n in args.profiles))
    info = f"torch {torch.__version__}"
    if device.type == "cuda":
        info += f", cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(device)}"
        torch.backends.cudnn.benchmark = True
    if not args.json:
        print(f"device {device} ({info})")
    started = costs.machine_state()
    results = []
    for name in names:
        result = measure_profile(name, args, device)
        results.append(result)
        print(json.dumps(result) if args.json else format_result(result), flush=True)
    if args.out is not None:
        costs.write_results(args.out, results, started=started, finished=costs.machine_state())
        if not args.json:
            print(f"wrote {args.out}")
    return 0
