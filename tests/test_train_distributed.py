"""DistributedDataParallel on the CPU (gloo, 2 processes) takes the same steps as one process."""

import dataclasses
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.train import PatchTensors, build_model, train_model
from mvgtutor.train.distributed import ProcessGroup, local_batch_size, shard
from train_helpers import PointwiseNet, cross_entropy, random_patches

WORLD_SIZE = 2


def pointwise_config():
    return dataclasses.replace(make_profile("test").train, epochs=2, batch_size=4, lr=1e-2)


def mvgformer_config():
    return dataclasses.replace(make_profile("test").train, epochs=1, batch_size=2)


def train_pointwise():
    torch.manual_seed(0)
    model = PointwiseNet()
    history = train_model(model, PatchTensors(*random_patches(8)), pointwise_config(), loss_fn=cross_entropy,
                          device="cpu", progress=False)
    return history, model.state_dict()


def train_mvgformer():
    torch.manual_seed(0)
    model = build_model("mvgformer", make_profile("test").model)
    return train_model(model, PatchTensors(*random_patches(2, size=32)), mvgformer_config(), device="cpu",
                       progress=False)


def _worker(rank: int, store: str, results: str) -> None:
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    try:
        torch.set_num_threads(1)
        pointwise_history, state = train_pointwise()
        mvgformer_history = train_mvgformer()
        if rank == 0:
            torch.save(dict(pointwise=pointwise_history, state=state, mvgformer=mvgformer_history), results)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    results = folder / "results.pt"
    mp.spawn(_worker, args=(str(folder / "store"), str(results)), nprocs=WORLD_SIZE, join=True)
    return torch.load(results, weights_only=True)


def test_ddp_matches_one_process_exactly_without_batch_statistics(ddp_results):
    history, state = train_pointwise()
    assert [h["loss"] for h in ddp_results["pointwise"]] == pytest.approx([h["loss"] for h in history], rel=1e-5)
    for name, value in state.items():
        assert torch.allclose(ddp_results["state"][name], value, atol=1e-6), name


def test_ddp_mvgformer_loss_close_to_one_process(ddp_results):
    """Batch norm statistics and VSL masks are per process, so the loss agrees within a tolerance."""
    single = train_mvgformer()
    assert ddp_results["mvgformer"][0]["loss"] == pytest.approx(single[0]["loss"], rel=0.05)


def test_sharding_and_batch_division():
    group = ProcessGroup(rank=1, world_size=2)
    assert shard(torch.arange(6), group).tolist() == [1, 3, 5]
    assert local_batch_size(8, group) == 4
    with pytest.raises(ConfigError, match="divisible"):
        local_batch_size(7, group)
