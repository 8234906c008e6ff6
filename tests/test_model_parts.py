"""Model components: tokens and positions, attention readings of eq. 7, decoders, fusion, VSL, eq. 9."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.config import TrainConfig, make_profile
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.model.attention import GraphGuidedAttention, MultiHeadAttention, attention
from mvgtutor.model.context import ContextEncoder, block_strides
from mvgtutor.model.decoders import CpuChannelsLastConv3d, DilatedConv3d, mf_layer_indices, valid_tap_conv3d
from mvgtutor.model.embed import (PatchEmbed, PositionEncoding, apply_rotary, patchify, rotary_angles, unpatchify,
                                  view_coordinates)
from mvgtutor.model.fusion import ViewFusion
from mvgtutor.model.losses import segmentation_loss
from mvgtutor.model.views import VIEWS, from_view, to_view
from mvgtutor.model.vsl import ViewMaskedSSL, realign_tokens

CONFIG = make_profile("test").model  # embed_dim 32, 2 heads, 32^3 input, 4^3 tokens


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_views_round_trip_and_cells_follow_their_voxels():
    x = seeded(2, 1, 32, 32, 32)
    cells = torch.arange(8**3).view(1, 1, 8, 8, 8).float()
    labelled = cells.repeat_interleave(4, 2).repeat_interleave(4, 3).repeat_interleave(4, 4)  # cell id per voxel
    for view in VIEWS:
        assert torch.equal(from_view(to_view(x, view), view), x)
        token_cells = patchify(to_view(labelled, view), 4)[0, :, 0]  # (L,) the cell under each token
        assert torch.equal(token_cells, to_view(cells[0, 0], view).flatten())  # how the model re-orders clusters


def test_patchify_and_unpatchify_are_inverse_and_match_patch_embedding():
    x = seeded(2, 3, 16, 16, 16)
    tokens = patchify(x, 4)  # (2, 64, 3 * 64)
    assert torch.equal(unpatchify(tokens, 4, 4), x)
    embed = PatchEmbed(dataclasses.replace(CONFIG, in_channels=3, input_size=16))
    expected = tokens @ embed.proj.weight.flatten(1).T + embed.proj.bias  # a linear map of each flattened cube
    assert torch.allclose(embed(x), expected, atol=1e-5)


def test_context_encoder_reaches_the_token_grid():
    assert ContextEncoder(CONFIG)(seeded(2, 1, 32, 32, 32)).shape == (2, 32, 8, 8, 8)
    assert block_strides(8) == [2, 2, 2] and block_strides(2) == [2, 1, 1]
    assert block_strides(16) == [2, 2, 2, 2]  # Table 8's 16^3 token: a fourth block
    wide = ContextEncoder(dataclasses.replace(CONFIG, token_patch=16))
    assert len(wide.blocks) == 4 and wide(seeded(1, 1, 32, 32, 32)).shape == (1, 32, 2, 2, 2)
    for bad in (3, 32):
        with pytest.raises(ConfigError, match=f"token_patch={bad}"):
            block_strides(bad)


@pytest.mark.parametrize("position", ["learned", "shared", "sinusoidal", "rotary"])
def test_positions_keep_shapes(position):
    encoding = PositionEncoding(dataclasses.replace(CONFIG, position=position))
    tokens = seeded(3, 2, 512, 32)
    out = encoding(tokens)
    assert out.shape == tokens.shape
    assert (encoding.rotary_angles() is not None) == (position == "rotary")


def test_sinusoidal_codes_follow_the_place_in_the_patch():
    codes = PositionEncoding(dataclasses.replace(CONFIG, position="sinusoidal")).fixed  # (V, L, C)
    coordinates = view_coordinates(8, VIEWS)  # (V, L, 3)
    first, second = coordinates[0, 70], coordinates[1]
    same_place = (second == first).all(-1).nonzero().item()
    assert torch.equal(codes[0, 70], codes[1, same_place])
    assert not torch.equal(codes[0], codes[1])  # but the sequences differ per view


def test_rotary_scores_depend_only_on_the_offset():
    q, k = seeded(1, 1, 1, 12, seed=1), seeded(1, 1, 1, 12, seed=2)

    def score(qpos, kpos):
        qa = rotary_angles(torch.tensor([qpos], dtype=torch.float32), 12)
        ka = rotary_angles(torch.tensor([kpos], dtype=torch.float32), 12)
        return (apply_rotary(q, qa) * apply_rotary(k, ka)).sum()

    assert torch.allclose(score([1, 2, 3], [0, 0, 1]), score([4, 6, 5], [3, 4, 3]), atol=1e-5)
    assert not torch.allclose(score([1, 2, 3], [0, 0, 1]), score([1, 2, 3], [0, 0, 2]), atol=1e-3)


def test_fused_and_manual_attention_agree():
    q, k, v = seeded(2, 4, 10, 8, seed=1), seeded(2, 4, 12, 8, seed=2), seeded(2, 4, 12, 8, seed=3)
    fused, _ = attention(q, k, v)
    manual, weights = attention(q, k, v, return_weights=True)
    assert torch.allclose(fused, manual, atol=1e-5)
    assert weights.shape == (2, 4, 10, 12) and torch.allclose(weights.sum(-1), torch.ones(2, 4, 10))


def test_graph_guided_attention_is_self_attention_when_every_token_is_its_own_cluster():
    graph_attention = GraphGuidedAttention(CONFIG)
    normed = seeded(2, 20, 32)
    own_cluster = torch.arange(20).expand(2, 20)
    guided, _ = graph_attention(normed, nodes=normed, assignment=own_cluster)
    plain, _ = graph_attention.attn(normed, normed)  # MSA(Q = K = V = LN(I))
    assert torch.allclose(guided, plain, atol=1e-5)


def test_cluster_queries_then_gather_equals_one_query_per_token():
    graph_attention = GraphGuidedAttention(CONFIG)
    normed, nodes = seeded(2, 20, 32, seed=1), seeded(2, 4, 32, seed=2)
    assignment = torch.randint(4, (2, 20), generator=torch.Generator().manual_seed(3))
    cheap, maps = graph_attention(normed, nodes, assignment, return_weights=True)
    per_token_queries = torch.gather(nodes, 1, assignment.unsqueeze(-1).expand(-1, -1, 32))  # (B, L, C)
    direct, direct_maps = graph_attention.attn(per_token_queries, normed, return_weights=True)
    assert torch.allclose(cheap, direct, atol=1e-5) and torch.allclose(maps, direct_maps, atol=1e-6)


def test_token_plus_node_reading_differs_within_a_cluster():
    graph_attention = GraphGuidedAttention(dataclasses.replace(CONFIG, graph_query="token_plus_node"))
    out, _ = graph_attention(seeded(1, 6, 32), seeded(1, 1, 32), torch.zeros(1, 6, dtype=torch.long))
    assert not torch.allclose(out[0, 0], out[0, 1])
    with pytest.raises(ConfigError, match="graph_query"):
        GraphGuidedAttention(dataclasses.replace(CONFIG, graph_query="nodes_only"))
    with pytest.raises(ConfigError, match="num_heads"):
        MultiHeadAttention(30, 4)


@pytest.mark.parametrize("dilation", [1, 3, 6, 9, 20])
def test_valid_tap_convolution_equals_the_dense_one(dilation):
    x = seeded(1, 3, 10, 12, 8, seed=1).requires_grad_()
    weight = seeded(4, 3, 3, 3, 3, seed=2).requires_grad_()
    dense = F.conv3d(x, weight, padding=dilation, dilation=dilation)
    valid = valid_tap_conv3d(x, weight, dilation)
    assert torch.allclose(dense, valid, atol=1e-4)
    dense_grads = torch.autograd.grad(dense.square().sum(), (x, weight))
    valid_grads = torch.autograd.grad(valid.square().sum(), (x, weight))
    assert all(torch.allclose(a, b, atol=1e-3, rtol=1e-4) for a, b in zip(dense_grads, valid_grads))


@pytest.mark.parametrize("make", [lambda: DilatedConv3d(3, 4, 6, valid_taps=False),
                                  lambda: CpuChannelsLastConv3d(3, 4, 1, bias=True)])
def test_cpu_channels_last_convolution_is_the_same_convolution_in_the_same_layout(make):
    torch.manual_seed(0)
    conv = make()
    x = seeded(2, 3, 10, 12, 8, seed=1).requires_grad_()
    out = conv(x)
    reference = nn.Conv3d.forward(conv, x)
    assert out.is_contiguous() and torch.allclose(out, reference, atol=1e-5)  # channels-first again
    grads = torch.autograd.grad(out.square().sum(), (x, conv.weight))
    reference_grads = torch.autograd.grad(reference.square().sum(), (x, conv.weight))
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(grads, reference_grads))
    assert grads[1].shape == conv.weight.shape
    with CpuChannelsLastConv3d.as_on_gpu():  # the GPU path (what the memory estimate counts), then back
        assert not conv.enabled and torch.allclose(conv(x), reference, atol=1e-5)
    assert conv.enabled


def test_mf_reads_evenly_spaced_layers():
    assert mf_layer_indices(12, 4) == [2, 5, 8, 11]
    with pytest.raises(ConfigError, match="mf_levels"):
        mf_layer_indices(2, 3)


def test_fusions():
    logits = seeded(3, 2, 16, 4, 4, 4)
    assert torch.allclose(ViewFusion("sum", 3)(logits), logits.sum(0))  # eq. 8
    assert torch.allclose(ViewFusion("learned", 3)(logits), logits.sum(0), atol=1e-5)  # equal weights at init
    normed = ViewFusion("norm_sum", 3)(logits)
    assert torch.allclose(normed, logits.log_softmax(2).sum(0))
    with pytest.raises(ConfigError, match="fusion"):
        ViewFusion("max", 3)


def test_vsl_masks_half_of_one_view_and_realigns_tokens():
    vsl = ViewMaskedSSL(CONFIG)
    masked = vsl.choose_mask(3, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert masked.mask.shape == (3, 512) and (masked.mask.sum(1) == 256).all()
    tokens = seeded(3, 3, 512, 32)
    hidden = vsl.mask_tokens(tokens, masked)
    others = [v for v in range(3) if v != masked.view]
    assert torch.equal(hidden[others], tokens[others])
    assert torch.equal(hidden[masked.view][masked.mask], vsl.mask_token.expand(256 * 3, -1))
    view_tokens = seeded(2, 512, 5)
    assert torch.equal(realign_tokens(realign_tokens(view_tokens, "yz", "xz", 8), "xz", "yz", 8), view_tokens)
    loss = vsl.loss(seeded(3, 2, 512, 32), seeded(2, 1, 32, 32, 32), vsl.choose_mask(2, torch.device("cpu")))
    assert loss.ndim == 0 and loss > 0
    with pytest.raises(ConfigError, match="two views"):
        ViewMaskedSSL(dataclasses.replace(CONFIG, views=("xy",)))


def test_segmentation_loss_is_eq_9_and_plain_ce_for_baselines():
    target = torch.randint(16, (2, 4, 4, 4), generator=torch.Generator().manual_seed(0))
    fused, per_view = seeded(2, 16, 4, 4, 4, seed=1), {v: seeded(2, 16, 4, 4, 4, seed=i) for i, v in enumerate(VIEWS)}
    train = TrainConfig(lambda_views=0.5, lambda_recon=2.0)
    loss, parts = segmentation_loss({"logits": fused, "view_logits": per_view, "recon_loss": torch.tensor(0.25)},
                                    target, train)
    # Sec. 5.3.3: lambda1 balances *all* of CE (fused and per view) against lambda2 * MSE; eq. 9 at 1, 1
    expected = 0.5 * (F.cross_entropy(fused, target) + sum(F.cross_entropy(l, target) for l in per_view.values()))
    assert torch.allclose(loss, expected + 2.0 * 0.25)
    assert set(parts) == {"ce_fused", "ce_xy", "ce_yz", "ce_xz", "recon", "total"}
    plain, plain_parts = segmentation_loss({"logits": fused}, target, train)
    assert torch.allclose(plain, F.cross_entropy(fused, target)) and set(plain_parts) == {"ce_fused", "total"}
    with pytest.raises(DataError, match="target has shape"):
        segmentation_loss({"logits": fused}, target[:, :2], train)
    with pytest.raises(DataError, match="integer class labels"):
        segmentation_loss({"logits": fused}, target.float(), train)


def test_background_weight_scales_label_zero_only():
    target = torch.randint(16, (2, 4, 4, 4), generator=torch.Generator().manual_seed(0))
    target[0] = 0  # plenty of background
    logits = seeded(2, 16, 4, 4, 4, seed=3)
    weighted, _ = segmentation_loss({"logits": logits}, target, TrainConfig(background_weight=0.1))
    weight = torch.ones(16)
    weight[0] = 0.1
    assert torch.allclose(weighted, F.cross_entropy(logits, target, weight=weight))
    foreground_only = target.clone()
    foreground_only[foreground_only == 0] = 1
    same, _ = segmentation_loss({"logits": logits}, foreground_only, TrainConfig(background_weight=0.1))
    assert torch.allclose(same, F.cross_entropy(logits, foreground_only))  # no background: weight irrelevant


def test_table_9_loss_variants_add_their_term():
    target = torch.zeros(2, 8, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6, 2:6] = 3  # a cube: its surface is the boundary band
    logits = seeded(2, 16, 8, 8, 8, seed=4)
    plain, _ = segmentation_loss({"logits": logits}, target, TrainConfig())
    dice, parts = segmentation_loss({"logits": logits}, target, TrainConfig(loss="ce_boundary_dice", loss_weight=2.0))
    assert torch.allclose(dice, plain + 2.0 * parts["boundary_dice"]) and 0 < parts["boundary_dice"] <= 1
    perfect = F.one_hot(target, 16).movedim(-1, 1).float() * 50
    _, perfect_parts = segmentation_loss({"logits": perfect}, target, TrainConfig(loss="ce_boundary_dice"))
    assert perfect_parts["boundary_dice"] < 1e-3  # a perfect prediction has no boundary loss
    tokens = seeded(3, 2, 8, 32, seed=5)  # (V, B, L, C): 2^3 tokens of 4^3 cubes per view
    per_view = {v: logits for v in VIEWS}
    contrastive, parts = segmentation_loss({"logits": logits, "view_logits": per_view, "tokens": tokens}, target,
                                           TrainConfig(loss="ce_contrastive"))
    with_views, _ = segmentation_loss({"logits": logits, "view_logits": per_view}, target, TrainConfig())
    assert torch.allclose(contrastive, with_views + parts["contrastive"]) and parts["contrastive"] > 0
    with pytest.raises(ConfigError, match="loss"):
        segmentation_loss({"logits": logits}, target, TrainConfig(loss="focal"))


def test_contrastive_term_is_lower_when_tokens_cluster_by_class():
    from mvgtutor.model.regularizers import token_contrastive_loss

    labels = torch.arange(4).repeat_interleave(8)  # 4 classes x 8 tokens
    clustered = torch.eye(4)[labels] + 0.01 * seeded(32, 4, seed=1)
    assert token_contrastive_loss(clustered, labels) < token_contrastive_loss(seeded(32, 4, seed=2), labels)
