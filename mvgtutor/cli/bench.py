"""``python -m mvgtutor bench``: training and inference speed, memory and FLOPs, per profile and at paper size."""

from __future__ import annotations

import argparse
import dataclasses
import json

PROFILE_CHOICES = ("test", "cpu", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench``."""
    parser.add_argument("--profiles", nargs="+", choices=PROFILE_CHOICES, default=list(PROFILE_CHOICES),
                        help="model sizes to measure: the test and cpu profiles and the paper's settings "
                        "(C=256, Ln=12, batch 72); default: all three")
    parser.add_argument("--model", default="mvgformer", choices=("mvgformer", "voxresnet", "unet3d"),
                        help="architecture (default mvgformer)")
    parser.add_argument("--decoder", choices=("p3da", "mf", "mlp"), help="MVGFormer's decoder (default p3da)")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the profile's, at most "
                        "--max-cpu-batch on a CPU)")
    parser.add_argument("--max-cpu-batch", type=int, default=8, help="cap on the batch size on a CPU so that the "
                        "paper-size model finishes (default 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps after the warm-up (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1; more with --compile, "
                        "which compiles again for each masked view of VSL)")
    parser.add_argument("--inference-size", type=int, default=64, help="side of the random volume for the "
                        "inference timing (default 64; 512 for a SHREC tomogram)")
    parser.add_argument("--inference-batch", type=int, default=32, help="tiles per forward pass (default 32)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="number format (default auto: bf16/fp16 on GPUs, fp32 on CPU)")
    parser.add_argument("--memory-format", choices=("auto", "channels_first", "channels_last"), default="auto",
                        help="layout of the 3D feature maps (default auto: channels-last on CUDA, see "
                        "mvgtutor.train.layout)")
    parser.add_argument("--compile", action="store_true", help="time the training step under torch.compile "
                        "(its compile time falls in the warm-up step and is not counted)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (it runs a CPU pass)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per profile")


def run(args: argparse.Namespace) -> int:
    """Measure every requested profile and print one line (or JSON object) each."""
    import torch

    from mvgtutor.cli import checks
    from mvgtutor.config import make_profile
    from mvgtutor.train import benchmark
    from mvgtutor.train.engine import default_loss
    from mvgtutor.train.models import build_model

    for option, value in (("--batch-size", args.batch_size), ("--max-cpu-batch", args.max_cpu_batch),
                          ("--steps", args.steps), ("--inference-size", args.inference_size),
                          ("--inference-batch", args.inference_batch)):
        checks.positive_int(option, value)
    checks.non_negative_int("--warmup", args.warmup)
    device = checks.torch_device("--device", args.device)
    info = f"torch {torch.__version__}"
    if device.type == "cuda":
        info += f", cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(device)}"
        torch.backends.cudnn.benchmark = True
    if not args.json:
        print(f"device {device} ({info})")
    for name in args.profiles:
        profile = make_profile("gpu" if name == "paper" else name)
        model_config = profile.model if args.decoder is None else dataclasses.replace(
            profile.model, decoder=args.decoder)
        train_config = dataclasses.replace(profile.train, precision=args.precision,
                                           memory_format=args.memory_format, compile=args.compile)
        batch = args.batch_size or profile.train.batch_size
        if device.type == "cpu" and args.batch_size is None:
            batch = min(batch, args.max_cpu_batch)
        torch.manual_seed(0)
        model = build_model(args.model, model_config)
        parameters = sum(p.numel() for p in model.parameters())
        flops = None if args.no_flops else benchmark.training_flops_per_sample(
            model, train_config, default_loss, input_size=model_config.input_size,
            num_classes=model_config.num_classes)
        speed = benchmark.measure_training(model, train_config, default_loss, batch_size=batch,
                                           input_size=model_config.input_size,
                                           num_classes=model_config.num_classes, device=device, steps=args.steps,
                                           warmup=args.warmup)
        voxels_per_s = benchmark.measure_inference(model, args.inference_size, device=device,
                                                   batch_size=args.inference_batch, precision=args.precision,
                                                   tile=model_config.input_size)
        peak = benchmark.device_peak_flops(device)
        mfu = flops * speed.samples_per_s / peak if (peak and flops) else None
        result = dict(profile=name, model=args.model, decoder=model_config.decoder, parameters=parameters,
                      device=str(device), precision=speed.precision, batch_size=batch,
                      memory_format=args.memory_format, compile=args.compile,
                      train_samples_per_s=speed.samples_per_s, peak_memory_gib=speed.peak_memory_bytes / 2**30,
                      train_flops_per_sample=flops, mfu=mfu, inference_voxels_per_s=voxels_per_s,
                      inference_volume=args.inference_size)
        if args.json:
            print(json.dumps(result))
            continue
        flop_text = f"{flops / 1e9:,.1f} GFLOP/sample" if flops else "FLOPs not counted"
        mfu_text = f", MFU {mfu:.1%}" if mfu is not None else ""
        print(f"{name:>5}: {args.model} ({parameters / 1e6:.2f} M params, {speed.precision}, batch {batch}, "
              f"{args.memory_format}{', compiled' if args.compile else ''}): "
              f"train {speed.samples_per_s:,.1f} samples/s, peak memory {result['peak_memory_gib']:.2f} GiB, "
              f"{flop_text}{mfu_text}; inference {voxels_per_s / 1e6:,.3f} Mvoxel/s on "
              f"{args.inference_size}^3")
    return 0
