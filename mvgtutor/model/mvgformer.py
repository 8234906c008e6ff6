"""MVGFormer (Li et al. 2025), assembled top to bottom as the paper's Fig. 2 draws it.

    x (B, 1, D, H, W) ── context encoder ──> f_c (B, C, g, g, g) ── k-means ──> nodes (B, K, C), assignment
      │                                                                                  │ (the visual graph)
      └─ views XY, YZ, XZ ─> patch embedding + per-view positions (eq. 6) ─> I (V, B, L, C)
                            ─> graph-guided transformer, shared by the views (eq. 7) ─> F_1 .. F_Ln
                            ─> decoder per view (MLP | MF | P3DA) ─> back to the canonical grid ─> fusion (eq. 8)
      (training with VSL: one view partly masked, its voxels reconstructed from the other two, Sec. 4.4)

Options beyond the paper's default: ``views`` may repeat a view (Table 13: each copy has its own position table;
the outputs are keyed ``"xy", "xy_2", "xy_3"``), ``encoder_sequence="joint"`` runs all views' tokens as one
sequence of V * L tokens through the same encoder (every token attends to every view), and ``xz_input_noise``
adds Gaussian noise to the XZ view's input in training (Table 2's "permutation", sigma 0.05).

``forward_features`` is the encoder (every layer's token features per view, the graph, the VSL mask);
``forward_head`` is the decoder and the view re-arrangement; ``forward`` returns the course's forward contract:
``{"logits", "view_logits", ["recon_loss"], ["graph_loss"]}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.attention import TransformerEncoder
from mvgtutor.model.context import ContextEncoder, frozen_running_stats
from mvgtutor.model.decoders import make_decoder
from mvgtutor.model.embed import PatchEmbed, PositionEncoding, token_grid
from mvgtutor.model.fusion import ViewFusion
from mvgtutor.model.graph import Graph, VisualGraph
from mvgtutor.model.views import VIEWS, stack_from_views, to_view, view_keys
from mvgtutor.model.vsl import MaskedView, ViewMaskedSSL


@dataclass
class EncoderOutput:
    """What the encoder produced for a batch of B patches seen from V views (N = V * B, view-major)."""

    hidden: list[torch.Tensor]  # every layer's output, each (N, L, C) (also with the joint sequence)
    graph: Graph | None  # nodes (B, K, C), assignment (B, g^3) in the canonical token grid
    assignments: torch.Tensor | None  # (N, L): each token's cluster, in its view's token order
    masked: MaskedView | None  # the VSL mask (training with vsl only)
    attention: list[torch.Tensor | None]  # per layer (N, h, L, L) when asked for (joint: (B, h, VL, VL)), else Nones
    batch_size: int  # B
    inputs: torch.Tensor | None = None  # (N, C_in, S, S, S), each view's patch, for a decoder that reads it

    def per_view(self, layer: int = -1) -> torch.Tensor:
        """Layer ``layer``'s tokens as ``(V, B, L, C)``."""
        tokens = self.hidden[layer]
        return tokens.view(-1, self.batch_size, *tokens.shape[1:])


ENCODER_SEQUENCES: tuple[str, ...] = ("per_view", "joint")


class MVGFormer(nn.Module):
    """The whole model, driven by one ``ModelConfig``: ``x (B, 1, S, S, S) -> dict`` (see the module docstring)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        unknown = [v for v in config.views if v not in VIEWS]
        if not config.views or unknown:
            raise ConfigError(f"views={config.views}: use views among {', '.join(VIEWS)} (repeats allowed)")
        check_choice("encoder_sequence", config.encoder_sequence, ENCODER_SEQUENCES)
        if config.xz_input_noise < 0:
            raise ConfigError(f"xz_input_noise={config.xz_input_noise} must be >= 0 (Table 2's permutation: 0.05)")
        self.config = config
        self.views = tuple(config.views)
        self.view_keys = view_keys(self.views)  # distinct output names, e.g. ("xy", "xy_2", "xy_3")
        self.grid = token_grid(config)
        # Sec. 4.1: context encoder and visual graph
        self.context = ContextEncoder(config)
        self.graph = VisualGraph(config.graph_method, config.embed_dim, config.num_clusters, config.kmeans_iters,
                                 self.grid)
        # Sec. 4.2: multi-view tokens, positions, the graph-guided transformer shared by the views
        self.patch_embed = PatchEmbed(config)
        self.positions = PositionEncoding(config)
        self.encoder = TransformerEncoder(config, graph_guided=config.graph_method != "none")
        # Sec. 4.3: decoder (one, shared by the views) and view fusion
        self.decoder = make_decoder(config)
        self.fusion = ViewFusion(config.fusion, len(self.views))
        # Sec. 4.4: view-masked self-supervised learning
        self.vsl = ViewMaskedSSL(config) if config.vsl else None
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """ViT-style init: truncated-normal linears and position tables, He-normal convs, unit norms, and a small
        classifier so that the untrained model predicts nearly uniform class probabilities (loss ~ ln 16; training
        then starts the classifier's bias at the class prior, see ``init_class_prior``)."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm3d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, PositionEncoding) and module.table is not None:
            nn.init.trunc_normal_(module.table, std=0.02)
        elif isinstance(module, ViewMaskedSSL):
            nn.init.trunc_normal_(module.mask_token, std=0.02)
            nn.init.trunc_normal_(module.position, std=0.02)
            if hasattr(module, "decoder_mask_token"):
                nn.init.trunc_normal_(module.decoder_mask_token, std=0.02)
        elif hasattr(module, "classifier"):  # a decoder; apply() reaches it after its layers
            nn.init.trunc_normal_(module.classifier.weight, std=0.02)
            nn.init.zeros_(module.classifier.bias)

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start the decoder's classifier bias at ``log_prior (num_classes,)``: every view's untrained logits then
        predict the class frequencies of the training labels (``mvgtutor.train.prior``). The MLP decoder's bias
        has one entry per class and voxel of a token, class-major (``unpatchify``'s order)."""
        bias = self.decoder.classifier.bias  # (K,) or (K * p^3,)
        bias.copy_(log_prior.to(bias).repeat_interleave(bias.numel() // log_prior.numel()))

    def num_parameters(self, trainable_only: bool = True) -> int:
        """The number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _check_input(self, x: torch.Tensor) -> None:
        size, channels = self.config.input_size, self.config.in_channels
        if x.ndim != 5 or x.shape[1] != channels or tuple(x.shape[2:]) != (size, size, size):
            raise ConfigError(f"MVGFormer expects a batch (B, {channels}, {size}, {size}, {size}), got "
                              f"{tuple(x.shape)}: cut patches of input_size={size} (or change ModelConfig.input_size)")

    def view_assignment(self, assignment: torch.Tensor, view: str) -> torch.Tensor:
        """The canonical cluster grid re-ordered as ``view``'s tokens: ``(B, g^3) -> (B, L)``."""
        cells = assignment.view(-1, self.grid, self.grid, self.grid)  # (B, g, g, g)
        return to_view(cells, view).reshape(assignment.shape[0], -1)

    def view_inputs(self, x: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Each view of ``x (B, 1, S, S, S)``, ``V x (B, 1, S, S, S)`` in the view's axis order; in training with
        ``xz_input_noise > 0`` the XZ view gets Gaussian noise of that sigma (Table 2's "permutation")."""
        inputs = [to_view(x, view) for view in self.views]
        if self.training and self.config.xz_input_noise > 0:
            inputs = [v + self.config.xz_input_noise * torch.randn(v.shape, generator=generator, device=v.device,
                                                                   dtype=v.dtype) if view == "xz" else v
                      for v, view in zip(inputs, self.views)]
        return inputs

    def decoder_inputs(self, inputs: list[torch.Tensor], masked: MaskedView | None) -> torch.Tensor | None:
        """The patch as a decoder that reads it sees it, ``(V*B, C_in, S, S, S)`` (None for a decoder that does
        not): each view's input, with the voxels under VSL's masked tokens set to zero in the masked view, so the
        decoder cannot see what the encoder was not shown."""
        if not getattr(self.decoder, "reads_input", False):
            return None
        if masked is not None:
            hidden = self.vsl.voxel_mask(masked)  # (B, 1, S, S, S), canonical grid
            chosen = masked.is_view(len(self.views))  # (V,)
            inputs = [torch.where(chosen[i] & to_view(hidden, view), 0.0, v)
                      for i, (v, view) in enumerate(zip(inputs, self.views))]
        return torch.cat(inputs)

    def masked_view_graph(self, x: torch.Tensor, masked: MaskedView, generator: torch.Generator) -> Graph:
        """The visual graph of the masked view's stream, built from ``x`` with the hidden voxels set to zero, so
        that this stream cannot see them (the batch norms' running statistics are left as they are)."""
        hidden = self.vsl.voxel_mask(masked)  # (B, 1, S, S, S)
        with frozen_running_stats(self.context):
            context = self.context(x.masked_fill(hidden, 0.0))  # (B, C, g, g, g)
        return self.graph(context.flatten(2).transpose(1, 2), generator)

    def forward_features(self, x: torch.Tensor, generator: torch.Generator | None = None,
                         return_attention: bool = False) -> EncoderOutput:
        """The encoder: ``x (B, 1, S, S, S)`` -> ``EncoderOutput`` (every layer's tokens, graph, VSL mask)."""
        self._check_input(x)
        batch, num_views = x.shape[0], len(self.views)
        graph_generator = generator or torch.Generator(device=x.device).manual_seed(self.config.graph_seed)
        # Sec. 4.1: the visual graph of the context features
        context = self.context(x)  # (B, C, g, g, g)
        graph = self.graph(context.flatten(2).transpose(1, 2), graph_generator)  # eqs. 2-5 on (B, g^3, C)
        masked = None
        if self.vsl is not None and self.training:
            masked = self.vsl.choose_mask(batch, x.device, generator)
        # Sec. 4.2: tokens of every view, eq. 6
        inputs = self.view_inputs(x, generator)  # V x (B, C_in, S, S, S)
        tokens = torch.stack([self.patch_embed(v) for v in inputs])  # (V, B, L, C)
        if masked is not None:
            tokens = self.vsl.mask_tokens(tokens, masked)
        tokens = self.positions(tokens)  # eq. 6: I = x + p, per view
        node_list = assignment_list = None
        if graph is not None:
            node_list = [graph.nodes] * num_views  # V x (B, K, C): each view reads the same nodes
            assignment_list = [self.view_assignment(graph.assignment, v) for v in self.views]  # V x (B, L)
            if masked is not None and self.vsl.reading == "cross_view":
                blind = self.masked_view_graph(x, masked, graph_generator)
                chosen = masked.is_view(num_views)  # (V,) selected by tensors: one compiled graph for every view
                node_list = [torch.where(chosen[i], blind.nodes, nodes) for i, nodes in enumerate(node_list)]
                assignment_list = [torch.where(chosen[i], self.view_assignment(blind.assignment, view), assigned)
                                   for i, (view, assigned) in enumerate(zip(self.views, assignment_list))]
        angles = self.positions.rotary_angles()  # (V, L, d/2) or None
        if self.config.encoder_sequence == "joint":
            hidden, maps = self._encode_joint(tokens, node_list, assignment_list, angles, return_attention)
        else:
            nodes = None if node_list is None else torch.cat(node_list)  # (V*B, K, C)
            assignments = None if assignment_list is None else torch.cat(assignment_list)  # (V*B, L)
            if angles is not None:
                angles = angles.repeat_interleave(batch, dim=0).unsqueeze(1)  # (V*B, 1, L, d/2)
            hidden, maps = self.encoder(tokens.flatten(0, 1), nodes, assignments, angles, return_attention)  # eq. 7
        return EncoderOutput(hidden=hidden, graph=graph,
                             assignments=None if assignment_list is None else torch.cat(assignment_list),
                             masked=masked, attention=maps, batch_size=batch,
                             inputs=self.decoder_inputs(inputs, masked))

    def _encode_joint(self, tokens: torch.Tensor, node_list, assignment_list, angles, return_attention):
        """All views as one sequence per patch: ``tokens (V, B, L, C)`` -> (B, V*L, C) through the encoder, every
        layer's output given back as ``(V*B, L, C)``. The graph-guided layer's keys are then every view's tokens,
        and a token's query is still its cluster's node: the V node sets are stacked to ``(B, V*K, C)`` and view
        ``i``'s assignment shifted by ``i*K`` (identical node sets give identical rows: the same result as one set,
        and the masked view's own graph under VSL keeps its own nodes)."""
        num_views, batch, length, channels = tokens.shape
        sequence = tokens.transpose(0, 1).reshape(batch, num_views * length, channels)  # (B, V*L, C)
        nodes = assignments = None
        if node_list is not None:
            clusters = node_list[0].shape[1]
            nodes = torch.cat(node_list, dim=1)  # (B, V*K, C)
            assignments = torch.cat([a + i * clusters for i, a in enumerate(assignment_list)], dim=1)  # (B, V*L)
        if angles is not None:
            angles = angles.reshape(1, 1, num_views * length, -1).expand(batch, -1, -1, -1)  # (B, 1, V*L, d/2)
        hidden, maps = self.encoder(sequence, nodes, assignments, angles, return_attention)
        hidden = [h.view(batch, num_views, length, channels).transpose(0, 1).reshape(-1, length, channels)
                  for h in hidden]  # each (V*B, L, C), view-major like the per-view encoder
        return hidden, maps

    def forward_head(self, features: EncoderOutput) -> torch.Tensor:
        """The decoder: per-view logits re-arranged to the canonical grid, ``(V, B, num_classes, D, H, W)``."""
        if getattr(self.decoder, "reads_input", False):  # Swin UNETR's decoder (Fig. 9(a)'s "Base")
            logits = self.decoder(features.hidden, features.inputs)
        else:
            logits = self.decoder(features.hidden)  # (V*B, K, S, S, S), each in its view's axis order
        logits = logits.view(len(self.views), -1, *logits.shape[1:])  # (V, B, K, S, S, S)
        return stack_from_views(logits.unbind(0), self.views)  # canonical grid

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """``x (B, 1, D, H, W)`` -> ``{"logits": (B, K, D, H, W), "view_logits": {view: (B, K, D, H, W)},
        "recon_loss": scalar (training with VSL), "graph_loss": scalar (MinCutPool),
        "tokens": (V, B, L, C) (training only: the last layer's tokens, in each view's order, the views in the
        order of "view_logits")}``.

        ``generator`` (on ``x``'s device) draws the graph's seeding and the VSL mask; without one the graph is
        seeded with ``config.graph_seed`` (the same result for the same input) and the mask uses torch's global RNG.
        """
        features = self.forward_features(x, generator)
        view_logits = self.forward_head(features)  # (V, B, K, D, H, W)
        outputs = self.fusion.outputs(view_logits, self.view_keys)  # eq. 8
        if self.training:  # the last layer's tokens (a view, no copy), for Table 9's contrastive term
            outputs["tokens"] = features.per_view()  # (V, B, L, C), each in its view's order
        if features.masked is not None:
            outputs["recon_loss"] = self.vsl.loss(features.per_view(), x, features.masked)
        if features.graph is not None and features.graph.aux_loss is not None:
            outputs["graph_loss"] = features.graph.aux_loss
        return outputs
