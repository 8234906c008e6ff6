"""The library functions that chapters 3, 6 and 7 call instead of their own loops: forward-hook traces, decoder
costs, MF sized lighter than P3DA, the timing helper, and the exact-resume check."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mvgtutor.config import make_profile, paper_config
from mvgtutor.model import MVGFormer
from mvgtutor.model.decoders import MFDecoder, P3DADecoder, mf_width
from mvgtutor.model.inspect import (best_time, count_parameters, decoder_costs, describe, format_trace,
                                    parameters_by_part, trace_shapes)
from mvgtutor.train.resume_check import Disconnect, check_exact_resume, disconnect_at
from mvgtutor.train import PatchTensors
from train_helpers import PointwiseNet, cross_entropy, random_patches

CONFIG = make_profile("test").model


def test_trace_records_every_part_in_order_and_removes_its_hooks():
    torch.manual_seed(0)
    model = MVGFormer(CONFIG).train()
    images = torch.randn(2, 1, 32, 32, 32)
    trace, outputs = trace_shapes(model, images)
    names = [entry.name for entry in trace]
    for part in ("context", "encoder", "decoder"):
        assert any(name == part or name.startswith(part) for name in names), names
    assert names.index("decoder") > max(i for i, n in enumerate(names) if n.startswith("decoder."))
    decoder = next(entry for entry in trace if entry.name == "decoder")
    assert decoder.produced == str((2 * len(CONFIG.views), 16, 32, 32, 32))
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed
    text = format_trace(trace, outputs)
    assert text.splitlines()[-1].strip().startswith("fusion (eq. 8)") and "(2, 16, 32, 32, 32)" in text
    assert describe([torch.zeros(3, 4)] * 2) == "2 x (3, 4)"


def test_trace_removes_hooks_when_the_forward_pass_fails():
    model = MVGFormer(CONFIG)
    with pytest.raises(Exception):
        trace_shapes(model, torch.randn(1, 1, 8, 8, 8))  # not the model's input size
    assert all(not m._forward_hooks for m in model.modules())


def test_mf_is_the_lighter_decoder_at_every_profile():
    for config in (paper_config().model, make_profile("cpu").model, CONFIG):
        with torch.device("meta"):
            mf = count_parameters(MFDecoder(dataclasses.replace(config, decoder="mf")))
            p3da = count_parameters(P3DADecoder(dataclasses.replace(config, decoder="p3da")))
        assert mf < p3da, (config.embed_dim, mf, p3da)
    paper = paper_config().model
    assert mf_width(paper) == paper.decoder_channels // 2
    with torch.device("meta"):  # the other reading, blocks as wide as P3DA's branches, is heavier than P3DA
        wide = count_parameters(MFDecoder(dataclasses.replace(paper, decoder="mf", mf_channels=64)))
        p3da = count_parameters(P3DADecoder(paper))
    assert wide > p3da


def test_decoder_costs_count_parameters_and_flops():
    costs = decoder_costs(CONFIG, paper_config().model, torch.randn(1, 1, 32, 32, 32), decoders=("mf",))
    assert [row.decoder for row in costs] == ["mf"]
    for row in costs:
        assert 0 < row.decoder_parameters < row.model_parameters and row.flops_per_sample > 0
        assert row.paper_decoder_parameters > row.decoder_parameters  # the paper's model is the larger
    with torch.device("meta"):
        paper = MVGFormer(paper_config().model)
    counts = parameters_by_part(paper)
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total") == paper.num_parameters()


def test_best_time_warms_up_and_returns_the_fastest():
    calls = []
    seconds = best_time(lambda: calls.append(1), repeats=3)
    assert len(calls) == 4 and seconds >= 0


def _tiny_config():
    return dataclasses.replace(make_profile("test").train, epochs=3, batch_size=4, lr_step_epochs=2,
                               checkpoint_every_epochs=1, prior_bias=False, validate=False, augment=False)


def test_exact_resume_check_finds_identical_weights(tmp_path):
    def make_model():
        torch.manual_seed(0)
        return PointwiseNet()

    check = check_exact_resume(make_model, PatchTensors(*random_patches(12)), _tiny_config(), disconnect=(1, 1),
                               run_dir=tmp_path, loss_fn=cross_entropy)
    assert check.identical and check.epochs == 3
    assert any(name.startswith("checkpoint") or name.endswith(".pt") for name in check.files_at_disconnect)


def test_exact_resume_check_can_fail():
    seeds = iter(range(10))

    def differently_initialised():  # a model factory that does not seed: the runs start apart
        torch.manual_seed(next(seeds))
        return PointwiseNet()

    check = check_exact_resume(differently_initialised, PatchTensors(*random_patches(12)), _tiny_config(),
                               loss_fn=cross_entropy)
    assert not check.identical


def test_disconnect_fires_at_its_step_only():
    callback = disconnect_at(1, 2)
    callback(0, 2, 0.0)
    with pytest.raises(Disconnect):
        callback(1, 2, 0.0)
