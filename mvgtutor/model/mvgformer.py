"""MVGFormer (Li et al. 2025), assembled top to bottom as the paper's Fig. 2 draws it.

    x (B, 1, D, H, W) ── context encoder ──> f_c (B, C, g, g, g) ── k-means ──> nodes (B, K, C), assignment
      │                                                                                  │ (the visual graph)
      └─ views XY, YZ, XZ ─> patch embedding + per-view positions (eq. 6) ─> I (V, B, L, C)
                            ─> graph-guided transformer, shared by the views (eq. 7) ─> F_1 .. F_Ln
                            ─> decoder per view (MLP | MF | P3DA) ─> back to the canonical grid ─> fusion (eq. 8)
      (training with VSL: one view partly masked, its voxels reconstructed from the other two, Sec. 4.4)

``forward_features`` is the encoder (every layer's token features per view, the graph, the VSL mask);
``forward_head`` is the decoder and the view re-arrangement; ``forward`` returns the course's forward contract:
``{"logits", "view_logits", ["recon_loss"], ["graph_loss"]}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError
from mvgtutor.model.attention import TransformerEncoder
from mvgtutor.model.context import ContextEncoder
from mvgtutor.model.decoders import make_decoder
from mvgtutor.model.embed import PatchEmbed, PositionEncoding, token_grid
from mvgtutor.model.fusion import ViewFusion
from mvgtutor.model.graph import Graph, VisualGraph
from mvgtutor.model.views import VIEWS, from_view, to_view
from mvgtutor.model.vsl import MaskedView, ViewMaskedSSL


@dataclass
class EncoderOutput:
    """What the encoder produced for a batch of B patches seen from V views (N = V * B, view-major)."""

    hidden: list[torch.Tensor]  # every layer's output, each (N, L, C)
    graph: Graph | None  # nodes (B, K, C), assignment (B, g^3) in the canonical token grid
    assignments: torch.Tensor | None  # (N, L): each token's cluster, in its view's token order
    masked: MaskedView | None  # the VSL mask (training with vsl only)
    attention: list[torch.Tensor | None]  # per layer (N, h, L, L) when asked for, else Nones
    batch_size: int  # B

    def per_view(self, layer: int = -1) -> torch.Tensor:
        """Layer ``layer``'s tokens as ``(V, B, L, C)``."""
        tokens = self.hidden[layer]
        return tokens.view(-1, self.batch_size, *tokens.shape[1:])


class MVGFormer(nn.Module):
    """The whole model, driven by one ``ModelConfig``: ``x (B, 1, S, S, S) -> dict`` (see the module docstring)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        unknown = [v for v in config.views if v not in VIEWS]
        if not config.views or unknown or len(set(config.views)) != len(config.views):
            raise ConfigError(f"views={config.views}: use distinct views among {', '.join(VIEWS)}")
        self.config = config
        self.views = tuple(config.views)
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

    def forward_features(self, x: torch.Tensor, generator: torch.Generator | None = None,
                         return_attention: bool = False) -> EncoderOutput:
        """The encoder: ``x (B, 1, S, S, S)`` -> ``EncoderOutput`` (every layer's tokens, graph, VSL mask)."""
        self._check_input(x)
        batch, num_views = x.shape[0], len(self.views)
        graph_generator = generator or torch.Generator(device=x.device).manual_seed(self.config.graph_seed)
        # Sec. 4.1: the visual graph of the context features
        context = self.context(x)  # (B, C, g, g, g)
        graph = self.graph(context.flatten(2).transpose(1, 2), graph_generator)  # eqs. 2-5 on (B, g^3, C)
        # Sec. 4.2: tokens of every view, eq. 6
        tokens = torch.stack([self.patch_embed(to_view(x, view)) for view in self.views])  # (V, B, L, C)
        masked = None
        if self.vsl is not None and self.training:
            masked = self.vsl.choose_mask(batch, x.device, generator)
            tokens = self.vsl.mask_tokens(tokens, masked)
        tokens = self.positions(tokens)  # eq. 6: I = x + p, per view
        nodes = assignments = None
        if graph is not None:
            nodes = graph.nodes.repeat(num_views, 1, 1)  # (V*B, K, C): each view reads the same nodes
            assignments = torch.cat([self.view_assignment(graph.assignment, v) for v in self.views])  # (V*B, L)
        angles = self.positions.rotary_angles()  # (V, L, d/2) or None
        if angles is not None:
            angles = angles.repeat_interleave(batch, dim=0).unsqueeze(1)  # (V*B, 1, L, d/2)
        hidden, maps = self.encoder(tokens.flatten(0, 1), nodes, assignments, angles, return_attention)  # eq. 7
        return EncoderOutput(hidden=hidden, graph=graph, assignments=assignments, masked=masked, attention=maps,
                             batch_size=batch)

    def forward_head(self, features: EncoderOutput) -> torch.Tensor:
        """The decoder: per-view logits re-arranged to the canonical grid, ``(V, B, num_classes, D, H, W)``."""
        logits = self.decoder(features.hidden)  # (V*B, K, S, S, S), each in its view's axis order
        logits = logits.view(len(self.views), -1, *logits.shape[1:])  # (V, B, K, S, S, S)
        return torch.stack([from_view(logits[i], view) for i, view in enumerate(self.views)])  # canonical grid

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """``x (B, 1, D, H, W)`` -> ``{"logits": (B, K, D, H, W), "view_logits": {view: (B, K, D, H, W)},
        "recon_loss": scalar (training with VSL), "graph_loss": scalar (MinCutPool)}``.

        ``generator`` (on ``x``'s device) draws the graph's seeding and the VSL mask; without one the graph is
        seeded with ``config.graph_seed`` (the same result for the same input) and the mask uses torch's global RNG.
        """
        features = self.forward_features(x, generator)
        view_logits = self.forward_head(features)  # (V, B, K, D, H, W)
        outputs = {
            "logits": self.fusion(view_logits),  # eq. 8
            "view_logits": {view: view_logits[i] for i, view in enumerate(self.views)},
        }
        if features.masked is not None:
            outputs["recon_loss"] = self.vsl.loss(features.per_view(), x, features.masked)
        if features.graph is not None and features.graph.aux_loss is not None:
            outputs["graph_loss"] = features.graph.aux_loss
        return outputs
