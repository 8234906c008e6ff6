"""Every setting of the course in one place: the paper's defaults and the four profiles.

The paper (Li et al. 2025, Sec. 5.1.2) trains with C=256, Ln=12, 16 heads, patch 4^3, K=16 clusters,
mask rate 50%, Adam 1e-3, batch 72, 200 epochs, lr x0.1 every 100 epochs, on SHREC 2021 (ten 512^3
tomograms at 1 nm: the first nine for training, the tenth for testing, Sec. 5.1.1). Those numbers are the field
defaults of the dataclasses below; widths the paper leaves open are ours and say so where they are used.

A *profile* shrinks them to fit the reader's machine:

* ``test``: tiny, for CI on a 2-core CPU (every chapter in seconds; numbers mean nothing).
* ``cpu``: a 2-core laptop CPU; small data and model, about 10 minutes of training per run.
* ``colab``: one 16 GB GPU (Colab's free T4): every training chapter within 15 minutes on a T4, at most 13 GB of
  GPU memory; sized from FLOPs per sample (``python -m mvgtutor bench --profiles colab``, chapter 0).
* ``paper``: the paper's model and optimisation settings (plus a few switches of ours, see ``OUR_TRAIN_SETTINGS``),
  for a workstation or several GPUs through the CLI; no chapter runs it unless asked. ``gpu`` is its old name and
  still works, with a one-line notice.

The profile is chosen by the environment variable ``MVGTUTOR_PROFILE``; when it is unset the default is
``colab`` if CUDA is available, else ``cpu``.  A reader's own profile is a delta from a named one:
``profile_from("cpu", epochs=2)``.  Ablations are small deltas: ``dataclasses.replace(cfg, ...)``.

Profiles and devices are independent: a profile says *what* to train, ``choose_device`` (``mvgtutor.runtime``)
says *where* (CUDA when the hardware has it, whatever the profile; ``MVGTUTOR_DEVICE`` or an explicit ``device=``
overrides it).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field

from mvgtutor.errors import ConfigError, ProfileError
from mvgtutor.runtime import device as _device
from mvgtutor.runtime.device import DEVICE_ENV, choose_device

PROFILE_ENV = "MVGTUTOR_PROFILE"
PROFILE_NAMES = ("test", "cpu", "colab", "paper")
PROFILE_ALIASES = {"gpu": "paper"}  # old name -> profile; accepted with a one-line notice
GPU_DEFAULT_PROFILE = "colab"  # the automatic choice where a CUDA GPU is visible

# Training switches that are on in every profile, the paper one included, and that the paper does not describe
# (Sec. 5.1.2 lists optimiser, lr schedule, batch, epochs and the model sizes only): ours, with why.
OUR_TRAIN_SETTINGS: dict[str, str] = {
    "augment": "random flips and quarter turns in the y-x plane (chapter 2); the paper names no augmentation",
    "prior_bias": "classifier bias starts at the log class frequencies (chapter 7); the paper gives no init",
    "validate": "held-out Dice after every epoch (chapter 7); the paper reports the final test score only",
}


@dataclass(frozen=True)
class DataConfig:
    """The dataset: SHREC 2021 shape by default (ten 512^3 tomograms at 1 nm, the last one held out)."""

    tomogram_size: int = 512  # voxels per side of each cubic tomogram
    n_tomograms: int = 10  # SHREC 2021 has ten (model_0 .. model_9)
    n_test: int = 1  # the last n_test tomograms are held out (the paper tests on the tenth)
    voxel_size_nm: float = 1.0  # SHREC 2021 tomograms: 10 A voxels
    patch_size: int = 32  # non-overlapping training patches, 32^3 as in the paper
    snr: float | None = None  # None: the dose of the physical default sets the noise
    scene_preset: str = "shrec"  # simulate.scene.SCENE_PRESETS: "shrec" (SHREC 2021's counts) | "dense" (crowded)
    seed: int = 0
    drop_empty_patches: bool = False  # drop patches that hold background only
    num_classes: int = 16  # background + 13 proteins + vesicle + fiducial


@dataclass(frozen=True)
class ModelConfig:
    """MVGFormer's architecture. Field defaults are the paper's (Sec. 5.1.2); options are the ablations."""

    in_channels: int = 1
    num_classes: int = 16
    input_size: int = 32  # side of the cubic input patch
    token_patch: int = 4  # Hp = Wp = Dp: each token covers 4^3 voxels
    embed_dim: int = 256  # C
    depth: int = 12  # Ln
    num_heads: int = 16
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    views: tuple[str, ...] = ("xy", "yz", "xz")  # the multi-view perspectives (Sec. 4.2); repeats allowed (Table 13)
    encoder_sequence: str = "per_view"  # "per_view": one sequence per view (the paper) | "joint": one of all views
    xz_input_noise: float = 0.0  # Table 2's "permutation": Gaussian noise sigma on the XZ input in training (0.05)
    position: str = "learned"  # per-view learned | "sinusoidal" | "rotary" | "shared" (one 3D embedding)
    # context encoder and visual graph (Sec. 4.1)
    num_clusters: int = 16  # K
    kmeans_iters: int = 10
    graph_method: str = "kmeans"  # "kmeans" | "spectral" | "mincut" | "none" (plain self-attention)
    graph_query: str = "token_cluster"  # reading of eq. 7, see chapter 5: "token_cluster" | "token_plus_node"
    graph_seed: int = 0  # seeds the k-means++ / spectral initialisation when forward() gets no generator
    # decoders (Sec. 4.3)
    decoder: str = "p3da"  # "p3da" | "mf" | "mlp" | "swin_unetr" (Fig. 9(a)'s "Base")
    decoder_channels: int = 64
    p3da_dilations: tuple[int, ...] = (1, 6, 12, 18)
    p3da_upsample: str = "unpatchify"  # tokens -> H x W x D map: "unpatchify" (learned) | "trilinear"
    p3da_conv: str = "dense"  # dilated convs: "dense" | "valid_taps" (skips taps that read only padding)
    mf_levels: int = 4  # MF reads layers Ln/N, 2Ln/N, ..., Ln
    mf_channels: int = 0  # width of each MF level's conv block; 0: decoder_channels // 2 (ours: MF lighter than P3DA)
    fusion: str = "sum"  # "sum" | "norm_sum" | "learned" (Table 9)
    # view-masked self-supervised learning (Sec. 4.4)
    vsl: bool = True
    mask_ratio: float = 0.5  # eta
    vsl_decoder_depth: int = 1
    vsl_decoder_dim: int = 128
    vsl_reading: str = "cross_view"  # "cross_view" (ours: the mask matters) | "realigned" (literal, see ch. 9)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (Sec. 5.1.2) and the engine's housekeeping."""

    epochs: int = 200
    batch_size: int = 72
    lr: float = 1e-3
    lr_step_epochs: int = 100  # lr x lr_gamma every lr_step_epochs
    lr_gamma: float = 0.1
    lr_schedule: str = "step"  # "step": x lr_gamma every lr_step_epochs (the paper) | "warmup_cosine" (ours, short runs)
    warmup_fraction: float = 0.05  # "warmup_cosine": linear warm-up over this share of all steps, then cosine to 0
    patch_sampling: str = "grid"  # "grid": the paper's fixed non-overlapping patches | "foreground" (ours, nnU-Net)
    foreground_fraction: float = 1 / 3  # "foreground": share of random crops forced onto a foreground voxel
    weight_decay: float = 0.0
    lambda_views: float = 1.0  # lambda1 of Sec. 5.3.3: scales every CE term of eq. 9 (fused and per view)
    lambda_recon: float = 1.0  # lambda2 of Sec. 5.3.3: scales the VSL reconstruction term of eq. 9
    loss: str = "ce"  # Table 9: "ce" (the paper) | "ce_boundary_dice" | "ce_contrastive"
    loss_weight: float = 1.0  # weight of the extra term of "ce_boundary_dice" / "ce_contrastive"
    background_weight: float = 1.0  # CE weight of label 0 (the paper: 1, plain CE); < 1 for short runs
    seed: int = 0
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16"
    compile: bool = False
    memory_format: str = "auto"  # "auto" (channels-last on CUDA) | "channels_first" | "channels_last"
    checkpoint_every_epochs: int = 10
    augment: bool = True
    prior_bias: bool = True  # start the classifier's bias at the log class frequencies (mvgtutor.train.prior)
    validate: bool = True  # score the held-out patches after every epoch (history "val_dice", chapter 7)


@dataclass(frozen=True)
class Profile:
    """A named bundle of data, model and training settings."""

    name: str
    description: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    requires_cuda: bool = False  # too large for a CPU: refused (with a hint) where no CUDA GPU is visible


# Each profile: a few overrides of the paper's defaults, nothing else.
_OVERRIDES: dict[str, dict[str, dict]] = {
    "test": dict(
        data=dict(tomogram_size=64, n_tomograms=3, n_test=1, scene_preset="dense"),
        model=dict(embed_dim=32, depth=2, num_heads=2, num_clusters=4, kmeans_iters=3,
                   decoder_channels=8, mf_levels=2, vsl_decoder_dim=32),
        train=dict(epochs=2, batch_size=8, lr_step_epochs=1, checkpoint_every_epochs=1),
    ),
    "cpu": dict(
        data=dict(tomogram_size=160, n_tomograms=4, n_test=1, scene_preset="dense"),
        # Sized by measurement on a 2-core CPU. The full-resolution P3DA decoder dominates the cost, so a wider,
        # deeper transformer (C=96, 4 layers: +10% per step over C=48, 2 layers) is nearly free and learns more per
        # step; lr 3e-3 reaches the vesicles in about half the steps of 1e-3 (data_scripts/learning_curve.py).
        # Training levers, each kept because its curve beat the last (mvgtutor/train/results/curves/,
        # chapter 7): a third of the crops forced onto foreground and a warm-up + cosine schedule (vesicle Dice
        # 0.11 after 750 samples and 0.24 after 1,500, against 0.10 and 0.11 with the paper's grid and step decay), then the background's CE
        # weight at 0.2 (vesicle 0.20 after 374 samples, 0.23 after 748). The step measured 2.0 samples/s on two
        # idle cores, so three epochs (1,125 samples) take about 10 minutes; six took 19 and ended no higher.
        model=dict(embed_dim=96, depth=4, num_heads=4, num_clusters=8, kmeans_iters=3, decoder_channels=8,
                   mf_levels=2, vsl_decoder_dim=32),
        train=dict(epochs=3, batch_size=2, lr=3e-3, lr_step_epochs=100, checkpoint_every_epochs=1,
                   patch_sampling="foreground", lr_schedule="warmup_cosine", background_weight=0.2),
    ),
    # One 16 GB GPU (Colab's T4), sized from counts, not tuned on learning curves (mvgtutor.train.estimate says how
    # the T4 figures are estimated; `python -m mvgtutor bench --profiles colab` recounts them, chapter 0 shows them):
    # * model between cpu and paper: C=192, Ln=8 (3/4 of the paper's width, 2/3 of its depth) and a 16-channel P3DA
    #   (the paper's 64 at full resolution is most of its 312 GFLOP per sample): 51 GFLOP per sample against 8.8
    #   (cpu) and 312 (paper); about 130 samples/s on a T4 at the paper step's measured 10% of peak;
    # * memory: about 126 MiB of saved 16-bit activations per sample, 5.5 GiB at batch 32 after calibration: far
    #   below the 13 GB budget, so a slower-than-estimated T4 cannot be rescued by a bigger batch, only by fewer
    #   epochs; the batch stays at 32 for fp16 stability and the paper's lr 1e-3 (its batch 72 is not needed);
    # * data: 6 tomograms of 256^3 (5 train, 2,560 patches of 32^3 per epoch; 8x the cpu profile's voxels), the dense
    #   preset as in cpu; one 256^3 tomogram took 21 s of CPU time (2 threads, all stages; the scene packing, which
    #   stays on the CPU on a GPU machine, about an eighth of it), so the set takes about 2 minutes on Colab's two
    #   CPU cores and less with the imaging on its GPU;
    # * 15 epochs: 38,400 samples, about 5 minutes of training on a T4 by the estimate, which leaves a factor of two
    #   for a small model reaching a lower fraction of the T4's peak than the paper's, and the rest of the 15 minutes
    #   for simulation, per-epoch validation and whole-tomogram inference.
    "colab": dict(
        data=dict(tomogram_size=256, n_tomograms=6, n_test=1, scene_preset="dense"),
        model=dict(embed_dim=192, depth=8, num_heads=8, num_clusters=16, kmeans_iters=5, decoder_channels=16,
                   mf_levels=4, vsl_decoder_dim=64),
        train=dict(epochs=15, batch_size=32, lr=1e-3, lr_step_epochs=100, checkpoint_every_epochs=1),
    ),
    "paper": dict(),
}

_REQUIRES_CUDA = {"paper"}  # the paper-sized profile: days on a CPU, so it is refused there

_DESCRIPTIONS = {
    "test": "tiny: CI on a 2-core CPU, seconds per chapter, numbers are not meaningful",
    "cpu": "laptop CPU: small data and model, about 10 minutes of training per run",
    "colab": "one 16 GB GPU (Colab's T4): mid-size data and model, under 15 minutes per training chapter",
    "paper": "the paper's model and optimiser (C=256, Ln=12, batch 72, 512^3 tomograms), for a workstation GPU",
}


_NOTICED: set[str] = set()


def canonical_name(name: str) -> str:
    """``name`` itself, or the profile an old alias stands for (``gpu`` -> ``paper``, with a one-line notice on
    stderr, once per process). ``ProfileError`` for a name that is neither."""
    if name in PROFILE_ALIASES:
        target = PROFILE_ALIASES[name]
        if name not in _NOTICED:
            _NOTICED.add(name)
            print(f"mvgtutor: profile {name!r} is now called {target!r}; for one GPU use 'colab'", file=sys.stderr)
        return target
    if name not in PROFILE_NAMES:
        raise ProfileError(
            f"unknown profile {name!r}: set {PROFILE_ENV} to one of {', '.join(PROFILE_NAMES)} "
            f"(or unset it to choose automatically)"
        )
    return name


def make_profile(name: str) -> Profile:
    """The profile called ``name`` (one of ``PROFILE_NAMES``, or an alias), built from the paper's defaults."""
    name = canonical_name(name)
    over = _OVERRIDES[name]
    return Profile(
        name=name,
        description=_DESCRIPTIONS[name],
        data=dataclasses.replace(DataConfig(), **over.get("data", {})),
        model=dataclasses.replace(ModelConfig(), **over.get("model", {})),
        train=dataclasses.replace(TrainConfig(), **over.get("train", {})),
        requires_cuda=name in _REQUIRES_CUDA,
    )


def _field_owner(key: str) -> str:
    """Which part (``data``, ``model``, ``train``) has a field ``key``; ``ConfigError`` if none or several."""
    owners = [part for part, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
              if key in {f.name for f in dataclasses.fields(cls)}]
    if len(owners) != 1:
        where = "no part of a profile" if not owners else f"{' and '.join(owners)}"
        raise ConfigError(f"setting {key!r} belongs to {where}: pass it inside data={{...}}, model={{...}} or "
                          f"train={{...}} with a field name of DataConfig, ModelConfig or TrainConfig")
    return owners[0]


def profile_from(base: str | Profile, name: str | None = None, description: str | None = None,
                 data: dict | None = None, model: dict | None = None, train: dict | None = None,
                 requires_cuda: bool | None = None, **settings) -> Profile:
    """A profile of your own: ``base`` (a name or a ``Profile``) with some settings changed.

    ``settings`` are field names of any one part, routed to it (``epochs=2`` changes ``train.epochs``); a name
    that two parts share (``seed``, ``num_classes``) goes in ``data=``/``model=``/``train=`` dicts instead.
    The name stays the base's unless the data change (then ``<base>-custom``, so the dataset folder, which
    ``default_dataset`` names after the profile, is not shared by two different datasets) or ``name`` is given.
    Example: ``profile_from("cpu", epochs=2, embed_dim=64)``.
    """
    base = base if isinstance(base, Profile) else make_profile(base)
    parts = {"data": dict(data or {}), "model": dict(model or {}), "train": dict(train or {})}
    for key, value in settings.items():
        parts[_field_owner(key)][key] = value
    try:
        new = {part: dataclasses.replace(getattr(base, part), **changes) for part, changes in parts.items()}
    except TypeError as error:  # a field name that the part does not have
        raise ConfigError(f"profile_from: {error}; see DataConfig, ModelConfig and TrainConfig in "
                          f"mvgtutor/config.py for the field names") from None
    changed = [f"{part}.{key}={value!r}" for part, changes in parts.items() for key, value in changes.items()]
    if name is None:
        name = f"{base.name}-custom" if parts["data"] and new["data"] != base.data else base.name
    return Profile(name=name, description=description or (f"{base.description}; changed: {', '.join(changed)}"
                                                           if changed else base.description),
                   data=new["data"], model=new["model"], train=new["train"],
                   requires_cuda=base.requires_cuda if requires_cuda is None else requires_cuda)


def cuda_available() -> bool:
    """True when a CUDA GPU is visible to torch (``mvgtutor.runtime.device.cuda_available``)."""
    return _device.cuda_available()


def profile_name(name: str | None = None) -> str:
    """Resolve the profile name: ``name`` if given, else ``$MVGTUTOR_PROFILE``, else colab/cpu by hardware.

    An alias resolves to its profile (``gpu`` -> ``paper``). Raises ``ProfileError`` (one line, says what to do)
    for an unknown name or for a profile that needs CUDA (the paper one) where none is visible.
    """
    chosen = name or os.environ.get(PROFILE_ENV, "").strip().lower() or None
    if chosen is None:
        return GPU_DEFAULT_PROFILE if cuda_available() else "cpu"
    profile = make_profile(chosen)  # an unknown name raises the friendly error
    check_runnable(profile)
    return profile.name


def check_runnable(profile: Profile) -> Profile:
    """``profile`` itself, or ``ProfileError`` when it needs a CUDA GPU (``requires_cuda``) and none is visible."""
    if profile.requires_cuda and not cuda_available():
        raise ProfileError(
            f"profile {profile.name!r} needs a GPU and no CUDA GPU is visible: switch to a GPU runtime "
            f"(Colab: Runtime > Change runtime type > GPU) or set {PROFILE_ENV}=cpu"
        )
    return profile


def get_profile(name: str | Profile | None = None) -> Profile:
    """The active profile: a ``Profile`` as given, else chosen by name as ``profile_name`` says."""
    if isinstance(name, Profile):
        return check_runnable(name)
    return make_profile(profile_name(name))


def paper_config() -> Profile:
    """The paper's settings, whatever the hardware (for parameter counts and FLOP estimates)."""
    return make_profile("paper")


def to_dict(obj) -> dict:
    """A plain, JSON-ready dict of a config dataclass (nested ones included)."""
    return dataclasses.asdict(obj)


def profile_differences(profile: str | Profile) -> dict[str, tuple[object, object]]:
    """What ``profile`` (a name or a ``Profile``) changes from the paper: ``{"model.embed_dim": (256, 96), ...}``."""
    paper = make_profile("paper")
    profile = profile if isinstance(profile, Profile) else make_profile(profile)
    changes = {}
    for part in ("data", "model", "train"):
        for key, paper_value in dataclasses.asdict(getattr(paper, part)).items():
            value = getattr(getattr(profile, part), key)
            if value != paper_value:
                changes[f"{part}.{key}"] = (paper_value, value)
    return changes
