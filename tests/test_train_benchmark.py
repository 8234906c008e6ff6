"""The measurements behind `python -m mvgtutor bench`."""

import torch

from mvgtutor.config import make_profile
from mvgtutor.train import benchmark
from train_helpers import PointwiseNet, cross_entropy


def test_flops_of_a_pointwise_network_by_hand():
    model = PointwiseNet(num_classes=2)
    flops = benchmark.training_flops_per_sample(model, make_profile("test").train, cross_entropy, input_size=4,
                                                num_classes=2)
    # forward: two 1x1x1 convs of 1->4 and 4->2 channels = 2 * (4 + 8) multiply-adds per voxel;
    # backward: about twice the forward (input and weight gradients; the first conv needs no input gradient)
    forward = 2 * (1 * 4 + 4 * 2) * 4**3
    assert forward <= flops <= 3 * forward


def test_training_and_inference_speed_are_positive():
    model = PointwiseNet()
    speed = benchmark.measure_training(model, make_profile("test").train, cross_entropy, batch_size=2,
                                       input_size=8, num_classes=16, device=torch.device("cpu"), steps=1, warmup=1)
    assert speed.samples_per_s > 0 and speed.precision == "fp32" and speed.peak_memory_bytes > 0
    assert benchmark.measure_inference(model, 32, device=torch.device("cpu")) > 0
    assert benchmark.device_peak_flops(torch.device("cpu")) is None
