"""torch.compile traces MVGFormer once for every masked view: VSL's view index is a tensor, not a Python int."""

import torch
import torch._dynamo.testing

from mvgtutor.config import make_profile
from mvgtutor.train.models import build_model


def test_one_compilation_serves_every_masked_view():
    torch.manual_seed(0)
    model = build_model("mvgformer", make_profile("test").model).train()
    counter = torch._dynamo.testing.CompileCounter()  # a backend that counts the frames dynamo compiles
    compiled = torch.compile(model, backend=counter)
    x = torch.randn(2, 1, 32, 32, 32)
    views, frames = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        views.append(int(torch.randint(3, (1,))))  # the draw choose_mask makes first from the global RNG
        torch.manual_seed(seed)
        compiled(x)
        frames.append(counter.frame_count)
    assert set(views) == {0, 1, 2}  # seeds 0, 1, 2 mask views 2, 1, 0
    assert frames[1:] == [frames[0]] * 2  # nothing compiled after the first call (a Python int: once per view)
    torch._dynamo.reset()


def test_a_second_batch_size_compiles_too():
    """A new batch size makes dynamo trace the batch symbolically; VSL's mask draw must not break it."""
    torch.manual_seed(0)
    model = build_model("mvgformer", make_profile("test").model).train()
    compiled = torch.compile(model, backend=torch._dynamo.testing.CompileCounter())
    for batch in (2, 3):
        out = compiled(torch.randn(batch, 1, 32, 32, 32))
        assert out["logits"].shape[0] == batch and out["recon_loss"].ndim == 0
    torch._dynamo.reset()
