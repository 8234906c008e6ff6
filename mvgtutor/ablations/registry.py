"""The ablation lab's registry: every experiment of the paper's Tables 8-13 and Fig. 9 as a named config delta.

An ``Ablation`` changes a few fields of a profile (``model`` / ``train`` deltas, applied with
``mvgtutor.config.profile_from``) and records what the paper reports for it, quoted from the paper with the table
or figure it comes from. ``default`` is the reference every other experiment is compared with.

Two readings are ours and say so in their entries:

* **Sizes relative to the profile.** Table 8 and Tables 9-10 vary C, Ln and K around the paper's C=256, Ln=12,
  K=16. A shrunk profile (cpu: C=96, Ln=4, K=8) cannot take C=1024 on a laptop, so ``scale`` deltas multiply the
  profile's own value by the paper's ratio (``c512`` is C x 2). In the paper profile (the paper's sizes) the ratio
  gives exactly the paper's number. The alternative, the paper's absolute numbers, is ``absolute_sizes=True`` in
  ``ablation_profile``.
* **MVP on another backbone (Table 11).** ``<baseline>_mvp`` wraps a baseline in the three views with one
  backbone shared by the views (``mvgtutor.baselines.mvp``); ``_unshared`` gives each view its own copy. Each is
  compared with its own backbone alone (``compare_with``), as Table 11 puts the value without MVP in parentheses.
* **What is not built.** Experiments whose parts the course does not have (Fig. 9a's decoders swapped between
  backbones, a 16^3 token) are registered with ``needs`` saying what is missing; they are listed and skipped,
  never faked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mvgtutor.config import Profile, get_profile, profile_from
from mvgtutor.errors import ConfigError


@dataclass(frozen=True)
class PaperResult:
    """What the paper reports for one experiment: where (``source``), the numbers (None where it gives none in its
    text, e.g. a bar of Fig. 9) and the quoted row or sentence."""

    source: str  # "Table 9", "Fig. 9(b)", ...
    miou: float | None
    dice: float | None
    quote: str


@dataclass(frozen=True)
class Ablation:
    """One named experiment: a delta from a profile, the question it answers and the paper's figure."""

    name: str
    family: str
    question: str
    paper: PaperResult
    model: dict = field(default_factory=dict)  # ModelConfig fields set to these values
    train: dict = field(default_factory=dict)  # TrainConfig fields set to these values
    scale: dict = field(default_factory=dict)  # ModelConfig fields multiplied by the paper's ratio (ours, above)
    absolute: dict = field(default_factory=dict)  # the paper's own value of each scaled field
    at_most: dict = field(default_factory=dict)  # ModelConfig fields capped at these values (after the above)
    model_name: str = "mvgformer"
    needs: str | None = None  # None: runnable; else what is missing, in one sentence
    compare_with: str = "default"  # the experiment the report's paired comparison subtracts

    @property
    def available(self) -> bool:
        """True when every part the experiment needs exists in the course."""
        return self.needs is None

    def delta(self) -> str:
        """The config delta as text, e.g. ``model.graph_method='spectral'`` or ``model.embed_dim x0.5``."""
        parts = [f"model.{k}={v!r}" for k, v in self.model.items()]
        parts += [f"model.{k} x{v:g}" for k, v in self.scale.items()]
        parts += [f"model.{k}<={v!r}" for k, v in self.at_most.items()]
        parts += [f"train.{k}={v!r}" for k, v in self.train.items()]
        if self.model_name != "mvgformer":
            parts.insert(0, f"model={self.model_name}")
        return ", ".join(parts) or "(none: the profile's defaults)"


def _t8(row: str) -> str:
    return f"Table 8 (C | Ln | Hp x Wp x Dp, mIoU Dice): {row}"


_REF = PaperResult("Table 8 / Tables 9, 12, 13", 86.9, 93.1,
                   "Table 12: 'MVGFormer(P3DA) 86.9 93.1' (C=256, Ln=12, 4x4x4, K=16, k-means, sum, CE)")

_FIG9B = ("Fig. 9(b) (values only in the figure): 'these variants yield only marginal differences compared to our "
          "design'")
_FIG9C = ("Fig. 9(c) (values only in the figure): 'the model achieves the best performance when λ1=λ2=1.0, while "
          "maintaining stable results across a wide range of values'")
_TABLE11 = "Table 11: 'Swin UNETR + MVP 81.6 ↑ (79.4) 89.8 ↑ (88.5)'"
_TABLE11_MEDNEXT = "Table 11: 'MedNeXt + MVP 83.9 ↑ (82.7) 91.2 ↑ (90.5)'"
_UNSHARED = ("our alternative reading of MVP on a baseline: one backbone per view (3x the parameters) instead of "
             "one shared by the views; no experiment in the paper")
_UNET_MVP = ("not in the paper: Table 11's question asked of the course's cheapest baseline (DeepFinder-style "
             "U-Net), so that a 2-hour lab can run it")
_FIG9A = ("Fig. 9(a) (values only in the figure): 'Our proposed P3DA significantly improves all methods' "
          "performance'")


def _entries() -> list[Ablation]:
    q_c = "Does a wider transformer (hidden size C) segment better?"
    q_ln = "Does a deeper transformer (Ln layers) segment better?"
    q_p = "How large should each token's cube of voxels be?"
    q_k = "How many clusters K should the visual graph have?"
    q_g = "Does the way the visual graph is built matter (Sec. 4.1)?"
    q_f = "How should the three views' logits be fused?"
    q_l = "Do extra loss terms help cross-entropy?"
    q_v = ("Is one view enough, or do the three views add information (Sec. 4.2)? (VSL reconstructs a view from the "
           "others, so with one view it is off: ours; compare with vsl_off too.)")
    q_r = "Is the gain of MVP just more tokens? Repeat one view three times, each with its own positions."
    q_pos = "Which positional encoding do the views need (eq. 6)?"
    q_lam = "How sensitive is training to the weights of the terms of eq. 9?"
    q_vsl = "Does view-masked self-supervised learning help segmentation (Sec. 4.4)?"
    q_dec = "Which decoder (Sec. 4.3)?"
    q_fid = "Our readings of points the paper leaves open: do they change the result?"
    q_b = "The backbone alone, without MVP: Table 11's value in parentheses (compared with the default, as Table 2)."
    q_mvp = "Does MVP help a backbone that was not built for it? (compared with the same backbone alone)"
    return [
        Ablation("default", "reference", "The paper's design in the active profile: what every row is compared "
                 "with.", _REF),
        # Table 8: C, Ln, patch size
        Ablation("c128", "hidden size C (Table 8)", q_c, PaperResult("Table 8", 80.5, 89.2, _t8("C=128: 80.5 89.2")),
                 scale=dict(embed_dim=0.5), absolute=dict(embed_dim=128)),
        Ablation("c512", "hidden size C (Table 8)", q_c, PaperResult("Table 8", 82.3, 90.2, _t8("C=512: 82.3 90.2")),
                 scale=dict(embed_dim=2.0), absolute=dict(embed_dim=512)),
        Ablation("c1024", "hidden size C (Table 8)", q_c, PaperResult("Table 8", 84.1, 91.3,
                 _t8("C=1024: 84.1 91.3")), scale=dict(embed_dim=4.0), absolute=dict(embed_dim=1024)),
        Ablation("ln6", "depth Ln (Table 8)", q_ln, PaperResult("Table 8", 76.8, 86.9, _t8("Ln=6: 76.8 86.9")),
                 scale=dict(depth=0.5), absolute=dict(depth=6)),
        Ablation("ln18", "depth Ln (Table 8)", q_ln, PaperResult("Table 8", 78.7, 88.1, _t8("Ln=18: 78.7 88.1")),
                 scale=dict(depth=1.5), absolute=dict(depth=18)),
        Ablation("ln24", "depth Ln (Table 8)", q_ln, PaperResult("Table 8", 81.6, 89.9, _t8("Ln=24: 81.6 89.9")),
                 scale=dict(depth=2.0), absolute=dict(depth=24)),
        Ablation("patch2", "token patch size (Table 8)", q_p, PaperResult("Table 8", 82.3, 90.2,
                 _t8("2x2x2: 82.3 90.2")), model=dict(token_patch=2)),
        Ablation("patch8", "token patch size (Table 8)", q_p, PaperResult("Table 8", 71.5, 83.3,
                 _t8("8x8x8: 71.5 83.3")), model=dict(token_patch=8)),
        # 16^3 tokens leave 2^3 = 8 token cells in a 32^3 patch: K is capped at 8 (ours; the paper keeps K=16,
        # so its patch must have been larger, which Table 8 does not say)
        Ablation("patch16", "token patch size (Table 8)", q_p, PaperResult("Table 8", 54.8, 70.8,
                 _t8("16x16x16: 54.8 70.8")), model=dict(token_patch=16), at_most=dict(num_clusters=8)),
        # Tables 9-10: K
        Ablation("k8", "clusters K (Tables 9-10)", q_k, PaperResult("Table 10", 83.6, 91.2,
                 "Table 10, SHREC2021: 'K=8: 83.6 91.2' (Table 9: 83.6)"), scale=dict(num_clusters=0.5),
                 absolute=dict(num_clusters=8)),
        Ablation("k12", "clusters K (Tables 9-10)", q_k, PaperResult("Table 10", 84.7, 91.7,
                 "Table 10, SHREC2021: 'K=12: 84.7 91.7'"), scale=dict(num_clusters=0.75),
                 absolute=dict(num_clusters=12)),
        Ablation("k24", "clusters K (Tables 9-10)", q_k, PaperResult("Table 10", 85.3, 92.0,
                 "Table 10, SHREC2021: 'K=24: 85.3 92.0'"), scale=dict(num_clusters=1.5),
                 absolute=dict(num_clusters=24)),
        Ablation("k32", "clusters K (Tables 9-10)", q_k, PaperResult("Table 10", 84.7, 91.7,
                 "Table 10, SHREC2021: 'K=32: 84.7 91.7' (Table 9: 84.7)"), scale=dict(num_clusters=2.0),
                 absolute=dict(num_clusters=32)),
        # Table 9: graph construction, fusion, loss
        Ablation("graph_spectral", "graph construction (Table 9)", q_g, PaperResult("Table 9", 85.3, None,
                 "Table 9, G.C.M.: 'spectral 85.3'"), model=dict(graph_method="spectral")),
        Ablation("graph_mincut", "graph construction (Table 9)", q_g, PaperResult("Table 9", 83.9, None,
                 "Table 9, G.C.M.: 'MinCutPool 83.9'"), model=dict(graph_method="mincut")),
        Ablation("graph_none", "graph construction (Table 9)", "Without the graph: plain self-attention (Fig. 10(d) "
                 "shows this case as heatmaps only).", PaperResult("Fig. 10(d)", None, None,
                 "Sec. 5.3.3: 'removing the graph-guided attention (Fig. 10(d)) leads to weak and diffused "
                 "activations' (no score given)"), model=dict(graph_method="none")),
        Ablation("fusion_norm_sum", "view fusion (Table 9)", q_f, PaperResult("Table 9", 85.7, None,
                 "Table 9, Fusion Schemes: 'norm + sum 85.7'"), model=dict(fusion="norm_sum")),
        Ablation("fusion_learned", "view fusion (Table 9)", q_f, PaperResult("Table 9", 86.4, None,
                 "Table 9, Fusion Schemes: 'learnable-weight 86.4'"), model=dict(fusion="learned")),
        Ablation("loss_boundary", "loss (Table 9)", q_l, PaperResult("Table 9", 86.5, None,
                 "Table 9, Loss Function: 'CE+boundary 86.5'"), train=dict(loss="ce_boundary_dice")),
        Ablation("loss_contrastive", "loss (Table 9)", q_l, PaperResult("Table 9", 84.1, None,
                 "Table 9, Loss Function: 'CE+CL 84.1'"), train=dict(loss="ce_contrastive")),
        # Table 12: one view
        Ablation("view_xy", "single view vs MVP (Table 12)", q_v, PaperResult("Table 12", 82.2, 90.2,
                 "Table 12: 'MVGFormer(XY) 82.2 90.2'"), model=dict(views=("xy",), vsl=False)),
        Ablation("view_yz", "single view vs MVP (Table 12)", q_v, PaperResult("Table 12", 82.7, 90.8,
                 "Table 12: 'MVGFormer(YZ) 82.7 90.8'"), model=dict(views=("yz",), vsl=False)),
        Ablation("view_xz", "single view vs MVP (Table 12)", q_v, PaperResult("Table 12", 81.9, 90.0,
                 "Table 12: 'MVGFormer(XZ) 81.9 90.0'"), model=dict(views=("xz",), vsl=False)),
        # Table 13: one view three times
        Ablation("repeat_xy", "repeated single view (Table 13)", q_r, PaperResult("Table 13", 82.4, 90.3,
                 "Table 13: 'MVGFormer(XY*3) 82.4 90.3'"), model=dict(views=("xy", "xy", "xy"))),
        Ablation("repeat_yz", "repeated single view (Table 13)", q_r, PaperResult("Table 13", 83.1, 90.5,
                 "Table 13: 'MVGFormer(YZ*3) 83.1 90.5'"), model=dict(views=("yz", "yz", "yz"))),
        Ablation("repeat_xz", "repeated single view (Table 13)", q_r, PaperResult("Table 13", 82.6, 89.9,
                 "Table 13: 'MVGFormer(XZ*3) 82.6 89.9'"), model=dict(views=("xz", "xz", "xz"))),
        # Table 11: MVP on other backbones, each compared with the backbone alone
        Ablation("swin_unetr", "MVP on another backbone (Table 11)", q_b, PaperResult("Table 11", 79.4, 88.5,
                 _TABLE11 + " (in parentheses: without MVP)"), model_name="swin_unetr"),
        Ablation("swin_unetr_mvp", "MVP on another backbone (Table 11)", q_mvp, PaperResult("Table 11", 81.6, 89.8,
                 _TABLE11), model_name="swin_unetr_mvp", compare_with="swin_unetr"),
        Ablation("swin_unetr_mvp_unshared", "MVP on another backbone (Table 11)", q_mvp,
                 PaperResult("Table 11", None, None, _UNSHARED), model_name="swin_unetr_mvp_unshared",
                 compare_with="swin_unetr"),
        Ablation("mednext", "MVP on another backbone (Table 11)", q_b, PaperResult("Table 11", 82.7, 90.5,
                 _TABLE11_MEDNEXT + " (in parentheses: without MVP)"), model_name="mednext"),
        Ablation("mednext_mvp", "MVP on another backbone (Table 11)", q_mvp, PaperResult("Table 11", 83.9, 91.2,
                 _TABLE11_MEDNEXT), model_name="mednext_mvp", compare_with="mednext"),
        Ablation("unet3d", "MVP on another backbone (Table 11)", q_b, PaperResult("Table 11 (ours)", None, None,
                 _UNET_MVP), model_name="unet3d"),
        Ablation("unet3d_mvp", "MVP on another backbone (Table 11)", q_mvp, PaperResult("Table 11 (ours)", None,
                 None, _UNET_MVP), model_name="unet3d_mvp", compare_with="unet3d"),
        # Fig. 9(a): our decoders on other backbones
        # (the 'Base' is swin_unetr itself; compared with it, as the figure's dashed lines are)
        Ablation("swin_unetr_p3da", "our decoders on other backbones (Fig. 9(a))", "Does P3DA help another "
                 "transformer encoder? (Swin UNETR's encoder, its decoder replaced by P3DA; compared with Swin "
                 "UNETR as published)", PaperResult("Fig. 9(a)", None, None, _FIG9A), model_name="swin_unetr_p3da",
                 compare_with="swin_unetr"),
        Ablation("swin_unetr_p3da_deepest", "our decoders on other backbones (Fig. 9(a))", "Does our reading "
                 "matter? P3DA on Swin UNETR's last stage alone (1^3 at a 32^3 patch), the literal reading",
                 PaperResult("Fig. 9(a) (ours)", None, None, _FIG9A), model_name="swin_unetr_p3da_deepest",
                 compare_with="swin_unetr_p3da"),
        Ablation("swin_unetr_mf", "our decoders on other backbones (Fig. 9(a))", "Does MF help another transformer "
                 "encoder? (the paper: 'the improvement brought about is not significant')",
                 PaperResult("Fig. 9(a)", None, None, _FIG9A), model_name="swin_unetr_mf", compare_with="swin_unetr"),
        Ablation("base_decoder", "our decoders on other backbones (Fig. 9(a))", "Our encoder with Swin UNETR's "
                 "decoder (the 'Base' of Fig. 9(a)): how much of MVGFormer's score is P3DA's?",
                 PaperResult("Fig. 9(a)", None, None, _FIG9A), model=dict(decoder="swin_unetr")),
        # Fig. 9(b): positions
        Ablation("pos_shared", "positional encoding (Fig. 9(b))", q_pos, PaperResult("Fig. 9(b)", None, None,
                 _FIG9B), model=dict(position="shared")),
        Ablation("pos_sinusoidal", "positional encoding (Fig. 9(b))", q_pos, PaperResult("Fig. 9(b)", None, None,
                 _FIG9B), model=dict(position="sinusoidal")),
        Ablation("pos_rotary", "positional encoding (Fig. 9(b))", q_pos, PaperResult("Fig. 9(b)", None, None,
                 _FIG9B), model=dict(position="rotary")),
        # Fig. 9(c): lambda1, lambda2 (the figure's grid is not in the text: 0.5 and 2 are ours)
        Ablation("lambda1_0.5", "loss weights (Fig. 9(c))", q_lam, PaperResult("Fig. 9(c)", None, None, _FIG9C),
                 train=dict(lambda_views=0.5)),
        Ablation("lambda1_2", "loss weights (Fig. 9(c))", q_lam, PaperResult("Fig. 9(c)", None, None, _FIG9C),
                 train=dict(lambda_views=2.0)),
        Ablation("lambda2_0.5", "loss weights (Fig. 9(c))", q_lam, PaperResult("Fig. 9(c)", None, None, _FIG9C),
                 train=dict(lambda_recon=0.5)),
        Ablation("lambda2_2", "loss weights (Fig. 9(c))", q_lam, PaperResult("Fig. 9(c)", None, None, _FIG9C),
                 train=dict(lambda_recon=2.0)),
        # VSL (Sec. 4.4): no on/off figure in the paper
        Ablation("vsl_off", "VSL (Sec. 4.4)", q_vsl, PaperResult("Sec. 4.4", None, None,
                 "no VSL on/off experiment in the paper; eq. 9 always has the reconstruction term"),
                 model=dict(vsl=False)),
        Ablation("vsl_realigned", "VSL (Sec. 4.4)", q_vsl, PaperResult("Sec. 4.4", None, None,
                 "our reading (chapter 9): the literal 're-aligned' target instead of our cross-view one"),
                 model=dict(vsl_reading="realigned")),
        # Table 2: decoders and the permutation
        Ablation("decoder_mf", "decoder (Table 2)", q_dec, PaperResult("Table 2", 85.7, 92.6,
                 "Table 2: 'MVGFormer(MF) 85.7 ±0.1 92.6 ±0.2'"), model=dict(decoder="mf")),
        Ablation("decoder_mlp", "decoder (Table 2)", q_dec, PaperResult("Table 2", 84.6, 91.6,
                 "Table 2: 'MVGFormer(MLP) 84.6±0.3 91.6±0.2'"), model=dict(decoder="mlp")),
        Ablation("permutation", "decoder (Table 2)", "Does noise on the XZ input (breaking the views' voxel "
                 "correspondence) hurt?", PaperResult("Table 2", 86.8, 93.0,
                 "Table 2: 'MVGFormer(permutation) 86.8±0.1 93.0±0.3' (σ=0.05 on XZ)"),
                 model=dict(xz_input_noise=0.05)),
        # our readings of eq. 7 and of P3DA's upsampling
        Ablation("graph_query_plus_node", "fidelity readings (ours)", q_fid, PaperResult("eq. 7", None, None,
                 "our reading (chapter 5): 'token_plus_node' instead of 'token_cluster'; no experiment in the "
                 "paper"), model=dict(graph_query="token_plus_node")),
        Ablation("p3da_trilinear", "fidelity readings (ours)", q_fid, PaperResult("Sec. 4.3", None, None,
                 "our reading (chapter 6): P3DA upsamples by trilinear interpolation instead of a learned "
                 "unpatchify; no experiment in the paper"), model=dict(p3da_upsample="trilinear")),
    ]


ABLATIONS: dict[str, Ablation] = {a.name: a for a in _entries()}
DEFAULT = "default"


def get_ablation(name: str) -> Ablation:
    """The registered experiment ``name``; ``ConfigError`` naming the list command if there is none."""
    if name not in ABLATIONS:
        raise ConfigError(f"unknown ablation {name!r}: see `python -m mvgtutor ablate --list` for the "
                          f"{len(ABLATIONS)} registered names")
    return ABLATIONS[name]


def families() -> dict[str, list[Ablation]]:
    """The registry grouped by family, in registry order."""
    grouped: dict[str, list[Ablation]] = {}
    for ablation in ABLATIONS.values():
        grouped.setdefault(ablation.family, []).append(ablation)
    return grouped


def ablation_profile(ablation: Ablation | str, profile: Profile | str | None = None, *,
                     absolute_sizes: bool = False) -> Profile:
    """``profile`` (default: the active one) with the experiment's delta applied.

    Scaled sizes (C, Ln, K) are the profile's value times the paper's ratio, at least 1 (C also a multiple of
    ``num_heads``); with ``absolute_sizes`` they are the paper's numbers. ``ConfigError`` for an experiment that
    is not available (``needs``).
    """
    ablation = get_ablation(ablation) if isinstance(ablation, str) else ablation
    base = profile if isinstance(profile, Profile) else get_profile(profile)
    if not ablation.available:
        raise ConfigError(f"ablation {ablation.name!r} is not available: it needs {ablation.needs}")
    model = dict(ablation.model)
    for key, factor in ablation.scale.items():
        value = ablation.absolute[key] if absolute_sizes else max(1, round(getattr(base.model, key) * factor))
        if key == "embed_dim":
            value = max(base.model.num_heads, value - value % base.model.num_heads)
        model[key] = value
    for key, cap in ablation.at_most.items():
        model[key] = min(cap, model.get(key, getattr(base.model, key)))
    return profile_from(base, model=model, train=dict(ablation.train))


def describe(ablation: Ablation) -> dict:
    """One JSON-ready row for ``--list``: name, family, delta, the paper's source and numbers ("" where the paper
    gives none in its text), availability, and the experiment it is compared with."""
    return dict(name=ablation.name, family=ablation.family, delta=ablation.delta(), source=ablation.paper.source,
                paper_miou="" if ablation.paper.miou is None else ablation.paper.miou,
                paper_dice="" if ablation.paper.dice is None else ablation.paper.dice,
                available="yes" if ablation.available else f"no: needs {ablation.needs}",
                compare_with=ablation.compare_with)


