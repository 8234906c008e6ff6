"""Overlap-tile inference: ours (``mvgtutor.evaluate.predict_volume``) against MONAI's gaussian sliding window.

Same model, same volume, same 32^3 tiles at 50% overlap, same Gaussian: prints the largest difference of the
blended probabilities and the speed ratio, once with the real model and once with a per-voxel 1x1x1 model, whose
cost is nearly nothing, so that the second ratio compares the two stitching loops alone. Usage::

    python data_scripts/bench_inference.py [--size 96] [--model voxresnet] [--batch 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from monai.inferers import sliding_window_inference

from mvgtutor.config import make_profile
from mvgtutor.evaluate import predict_volume
from mvgtutor.train.models import MODEL_NAMES, build_model


class PerVoxel(torch.nn.Module):
    """A 1x1x1 convolution to 16 classes: a model that costs almost nothing next to the stitching."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 16, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": self.conv(x)}


def best_time(function, repeats: int) -> tuple[float, torch.Tensor]:
    """The fastest of ``repeats`` calls (after one warm-up) and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=96, help="side of the random test volume (default 96)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="mvgformer", help="model (default mvgformer)")
    parser.add_argument("--profile", default="test", help="profile whose model settings to use (default test)")
    parser.add_argument("--batch", type=int, default=32, help="tiles per forward pass, both methods (default 32)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats, the best counts (default 2)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model(args.model, make_profile(args.profile).model).to(device).eval()
    volume = torch.randn(args.size, args.size, args.size, generator=torch.Generator().manual_seed(0))

    def ours(net):
        return predict_volume(net, volume, batch_size=args.batch, device=device, precision="fp32",
                              output="probabilities")

    def monai(net):
        with torch.inference_mode():
            return sliding_window_inference(volume[None, None].to(device), (32, 32, 32), args.batch,
                                            lambda x: torch.softmax(net(x)["logits"].float(), 1),
                                            overlap=0.5, mode="gaussian")[0].cpu()

    print(f"device {device}, torch {torch.__version__}, model {args.model} ({args.profile} profile), "
          f"volume {args.size}^3, batch {args.batch}")
    for name, net in ((f"{args.model}", model), ("1x1x1 conv (stitching alone)", PerVoxel().to(device).eval())):
        ours_s, ours_probs = best_time(lambda: ours(net), args.repeats)
        monai_s, monai_probs = best_time(lambda: monai(net), args.repeats)
        difference = float((ours_probs - monai_probs).abs().max())
        print(f"{name}:")
        print(f"  ours  {ours_s:7.3f} s  ({volume.numel() / ours_s / 1e6:.3f} Mvoxel/s)")
        print(f"  MONAI {monai_s:7.3f} s  ({volume.numel() / monai_s / 1e6:.3f} Mvoxel/s)")
        print(f"  max |difference| of probabilities {difference:.2e}; speed ratio ours/MONAI "
              f"{monai_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
