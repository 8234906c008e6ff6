"""Overlap-tile inference: ours (``mvgtutor.evaluate.predict_volume``) against MONAI's gaussian sliding window.

Same model, same volume, same 32^3 tiles at 50% overlap, same Gaussian: prints the largest difference of the
blended probabilities and the speed ratio, for the blended probabilities and for the labels (MONAI's blend followed
by an argmax on the device; ours needs no weight map for labels), once with the real model and once with a
per-voxel 1x1x1 model, whose cost is nearly nothing, so that the second set of ratios compares the stitching
alone. Ours runs the model channels-last by default (``predict_volume(memory_format=...)``); MONAI gets the model
as it is (channels-first), and ours is also timed channels-first, the like-for-like comparison. Usage::

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

    def ours(net, output="probabilities", memory_format="channels_last"):
        return predict_volume(net, volume, batch_size=args.batch, device=device, precision="fp32", output=output,
                              memory_format=memory_format)

    def monai(net, output="probabilities"):
        with torch.inference_mode():
            blended = sliding_window_inference(volume[None, None].to(device), (32, 32, 32), args.batch,
                                               lambda x: torch.softmax(net(x)["logits"].float(), 1),
                                               overlap=0.5, mode="gaussian")[0]
            return (blended if output == "probabilities" else blended.argmax(0).to(torch.uint8)).cpu()

    print(f"device {device}, torch {torch.__version__}, model {args.model} ({args.profile} profile), "
          f"volume {args.size}^3, batch {args.batch}")
    for name, net in ((f"{args.model}", model), ("1x1x1 conv (stitching alone)", PerVoxel().to(device).eval())):
        print(f"{name}:")
        for output in ("probabilities", "labels"):  # labels: MONAI's blend, then an argmax on the device
            monai_s, monai_result = best_time(lambda: monai(net, output), args.repeats)
            for layout in ("channels_last", "channels_first"):  # ours runs channels-last unless told otherwise
                ours_s, ours_result = best_time(lambda: ours(net, output, layout), args.repeats)
                if output == "probabilities":
                    agreement = f"max |difference| {float((ours_result - monai_result).abs().max()):.2e}"
                else:  # an untrained model's near-ties can round either way
                    agreement = f"same label on {float((ours_result == monai_result).float().mean()):.4%} of voxels"
                print(f"  {output:<13} ours ({layout:<14}) {ours_s:7.3f} s, MONAI {monai_s:7.3f} s: "
                      f"speed ratio ours/MONAI {monai_s / ours_s:.2f}x; {agreement}")


if __name__ == "__main__":
    main()
