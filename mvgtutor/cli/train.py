"""``python -m mvgtutor train``: train MVGFormer or a baseline on a dataset folder and save the run.

Re-running the same command after an interruption resumes from the run's last checkpoint. Under
``torchrun --nproc_per_node N -m mvgtutor train ...`` every process trains on 1/N of each batch (DDP).
"""

from __future__ import annotations

import argparse
import dataclasses

from mvgtutor.config import PROFILE_ALIASES, PROFILE_NAMES, get_profile
from mvgtutor.train.models import MODEL_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``train``."""
    parser.add_argument("--data", required=True, help="dataset folder with model_0, model_1, ... sub-folders "
                        "(SHREC 2021 layout); the last n_test tomograms of the profile are held out")
    parser.add_argument("--out", required=True, help="run folder to write (run.json, checkpoint.pt, model.pt, "
                        "history.json); an existing run with the same settings is resumed")
    parser.add_argument("--model", choices=MODEL_NAMES, default="mvgformer", help="architecture (default "
                        "mvgformer; voxresnet and unet3d are the convolutional baselines)")
    parser.add_argument("--decoder", choices=("p3da", "mf", "mlp"), help="MVGFormer's decoder (default: the "
                        "profile's, p3da)")
    parser.add_argument("--profile", choices=PROFILE_NAMES + tuple(PROFILE_ALIASES), help="settings profile "
                        "(default: $MVGTUTOR_PROFILE, else colab when CUDA is available, else cpu; gpu is the old "
                        "name of paper)")
    parser.add_argument("--epochs", type=int, help="number of epochs (default: the profile's)")
    parser.add_argument("--batch-size", type=int, help="global batch size over all processes (default: the "
                        "profile's)")
    parser.add_argument("--lr", type=float, help="Adam's initial learning rate (default 1e-3)")
    parser.add_argument("--lr-schedule", choices=("step", "warmup_cosine"), help="step: x0.1 every lr_step_epochs "
                        "(the paper); warmup_cosine: linear warm-up then cosine to 0 (ours; default: the profile's)")
    parser.add_argument("--patch-sampling", choices=("grid", "foreground"), help="grid: the paper's fixed "
                        "non-overlapping patches; foreground: random crops, a third forced onto foreground (ours, "
                        "nnU-Net; default: the profile's)")
    parser.add_argument("--no-vsl", action="store_true", help="train without view-masked self-supervised "
                        "learning (drops the reconstruction term of eq. 9)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="number format (default "
                        "auto: bf16 on GPUs with compute capability >= 8, fp16 on older GPUs, fp32 on CPU)")
    parser.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    parser.add_argument("--seed", type=int, help="random seed of initialisation, shuffling and augmentation")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def run(args: argparse.Namespace) -> int:
    """Train (or resume) the run and print where it is."""
    from pathlib import Path

    from mvgtutor.cli import checks
    from mvgtutor.train.distributed import init_from_environment
    from mvgtutor.train.runs import train_run

    checks.positive_int("--epochs", args.epochs)
    checks.positive_int("--batch-size", args.batch_size)
    checks.positive_float("--lr", args.lr)
    checks.non_negative_int("--seed", args.seed)
    if args.device is not None:
        checks.torch_device("--device", args.device)
    checks.writable_folder("--out", Path(args.out))
    group = init_from_environment()
    profile = get_profile(args.profile)
    model_config = profile.model
    if args.decoder:
        model_config = dataclasses.replace(model_config, decoder=args.decoder)
    if args.no_vsl:
        model_config = dataclasses.replace(model_config, vsl=False)
    overrides = {name: value for name, value in dict(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, precision=args.precision,
        seed=args.seed, compile=args.compile or None, lr_schedule=args.lr_schedule,
        patch_sampling=args.patch_sampling).items() if value is not None}
    train_config = dataclasses.replace(profile.train, **overrides)
    device = args.device
    if device is None and group.distributed:
        import torch

        device = f"cuda:{group.local_rank}" if torch.cuda.is_available() else "cpu"
    result = train_run(args.out, args.data, model_name=args.model, model_config=model_config,
                       train_config=train_config, data_config=profile.data, device=device,
                       progress=not args.quiet)
    if group.is_main:
        last = result.history[-1] if result.history else {}
        print(f"run {result.directory}: {len(result.history)}/{train_config.epochs} epochs, "
              f"final loss {last.get('loss', float('nan')):.4f}")
    return 0
