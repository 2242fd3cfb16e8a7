"""The BYOL module: wraps any image network and returns the BYOL loss for a batch."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .augment import BYOLAugmentation, CropSpec, Normalize, as_size, default_augmentations
from .construction import build_predictor, check_arguments, clone_module
from .defaults import MODEL_DEFAULTS
from .ema import BufferMode, TargetEMAUpdater, copy_weights_, cosine_tau, ema_update_
from .encoder import HiddenLayer, SpatialPool, TokenPool, infer_channels
from .layout import after_load, upgrade_state_dict
from .loss import byol_loss
from .simplicial import SEM_DEFAULTS
from .wrapper import NetWrapper

Augment = Callable[[torch.Tensor], torch.Tensor]


class BYOLOutput(NamedTuple):
    """What ``BYOL.forward(..., return_details=True)`` returns.

    Attributes:
        loss: the scalar BYOL loss.
        representation_std: the standard deviation over the batch of the
            l2-normalised online representations of view 1, averaged over
            dimensions (detached). Near ``1/sqrt(D)`` when healthy, near 0
            when the representation has collapsed.
    """

    loss: torch.Tensor
    representation_std: torch.Tensor


def representation_std(features: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: mean per-dimension std of l2-normalised ``(B, D)`` features."""
    return F.normalize(features.detach().float(), dim=1).std(dim=0).mean()


class BYOL(nn.Module):
    """Bootstrap Your Own Latent (Grill et al., 2020) around any image network.

    Calling the module on a batch of unlabelled images draws two augmented
    views of every image, runs the online network (encoder, projector,
    predictor) and the target network (an exponential moving average of the
    online encoder and projector) on them, and returns the symmetric BYOL loss.
    After each optimiser step call :meth:`update_moving_average`.

    Views cropped elsewhere (by a ``DataLoader``, from the whole photo: see
    :class:`byol_pytorch.data.LoaderCrops`) are passed as
    ``learner(views=(view_1, view_2))``; the module then draws only the
    photometric part of the paper's two pipelines (colour jitter, grayscale,
    blur, solarize), per image, on the views' device. :attr:`crop_spec` is the
    geometric part such a loader should draw.

    Args:
        net: any image network taking ``(B, C, H, W)`` images. Its parameters
            are trained in place; its state is otherwise left as it was.
        image_size: side of the augmented views, int or ``(height, width)``.
        hidden_layer: the layer whose output is the representation: a dotted
            module name, an index into ``net.children()``, or -1 for the
            network's output. The default -2 is the layer before the last
            child (``avgpool`` for torchvision ResNets). ``"pre_logits"``
            takes a timm model's pooled features through its own API; on a
            Hugging Face transformers model a field name of its output
            (``"pooler_output"``, ``"last_hidden_state"``) picks that field.
        projection_size: output width of projector and predictor (256).
        projection_hidden_size: hidden width of projector and predictor (4096).
        augment_fn: replaces view 1's augmentation (any callable on a batch).
        augment_fn2: replaces view 2's; defaults to ``augment_fn`` when only
            that is given, else to the paper's second pipeline.
        moving_average_decay: the base EMA decay tau (``DEFAULT_TAU``, 0.99).
        use_momentum: ``False`` gives SimSiam: no target copy, the target is
            the online projection under stop-gradient, SimSiam's heads.
        use_simplicial_embeddings: a simplicial embedding (Lavoie et al. 2022)
            between the representation and the projector: a linear layer and
            batch norm to ``sem_num_simplices * sem_simplex_dim`` features and a
            softmax over each group of ``sem_simplex_dim`` at ``sem_temperature``.
            Off by default (byol-pytorch 0.9 had it on).
        sem_num_simplices: number of simplices L (32).
        sem_simplex_dim: size of each simplex V (8).
        sem_temperature: the softmax temperature (0.1).
        sync_batchnorm: synchronise the batch norm of the projector and
            predictor across processes. ``None`` (default): when
            ``torch.distributed`` runs more than one process on CUDA, decided
            at each forward; ``True``: whenever it runs more than one process
            (on CPU, where torch's SyncBatchNorm cannot run, it warns once and
            stays per process); ``False``: never. Only the heads: convert your
            network's own batch norm with ``nn.SyncBatchNorm.convert_sync_batchnorm``
            if you want it synchronised too. While training, every process
            must call the learner, as with any synchronised batch norm.
        ema_total_steps: when set, tau follows the paper's cosine schedule
            from ``moving_average_decay`` to 1 over this many calls of
            :meth:`update_moving_average`; when ``None`` tau stays constant.
        ema_buffers: ``"average"`` (default) averages batch-norm running
            statistics like the weights, so a target run in eval mode uses
            statistics that match its averaged weights; ``"copy"`` copies them.
        concat_views: run both views through the networks in one concatenated
            batch (faster on small batches; batch-norm statistics then mix the
            views) instead of one pass per view as in the paper.
        normalize: normalise views (and :meth:`forward` inputs with
            ``return_embedding=True``) after augmentation. Defaults to ``True``
            with the built-in augmentation and ``False`` with ``augment_fn``,
            whose pipeline is taken to be complete.
        mean: per-channel means for the normalisation (default: ImageNet's
            for RGB, 0.449 per channel otherwise).
        std: per-channel standard deviations, given with ``mean``.
        channels: input channels of the network; inferred from its first
            convolution (3 if it has none).
        spatial_pool: ``"avg"`` or ``"flatten"`` for a ``(B, C, H, W)`` hidden output.
        token_pool: ``"cls"`` or ``"mean"`` for a ``(B, N, D)`` hidden output.
        crop_scale: area range of the default random resized crop (see
            :func:`byol_pytorch.model.augment.default_crop_scale`).
        channels_last: give the network its views in channels-last memory
            format. ``None`` (default): on a CPU, where oneDNN's convolutions
            then run channels-last even with the weights as they are, and
            measured faster so in float32 and bf16; elsewhere the views stay
            contiguous (on a GPU make the weights channels-last too).
        trace: cut the network after the hidden layer with torchvision's FX
            feature extraction where possible (else a temporary hook).

    Attributes:
        net: the network given, a submodule (as ``online_encoder.net``):
            ``.to()``, ``.cuda()``, ``.half()`` move all of it, classifier
            included. ``state_dict()`` keys follow byol-pytorch 0.9's layout
            (see :mod:`byol_pytorch.model.layout`).
        online_encoder: a :class:`~byol_pytorch.model.wrapper.NetWrapper`:
            ``online_encoder(x)`` is ``(projection, representation)``.
        target_encoder: its moving-average copy (``None`` without momentum).
        online_predictor: the predictor.
        target_ema_updater: ``target_ema_updater.beta`` reads or fixes tau.
        representation_dim: D, the width of the hidden layer's features.
    """

    def __init__(
        self,
        net: nn.Module,
        image_size: int | Sequence[int],
        hidden_layer: HiddenLayer = MODEL_DEFAULTS.hidden_layer,
        projection_size: int = MODEL_DEFAULTS.projection_size,
        projection_hidden_size: int = MODEL_DEFAULTS.projection_hidden_size,
        augment_fn: Augment | None = None,
        augment_fn2: Augment | None = None,
        moving_average_decay: float = MODEL_DEFAULTS.moving_average_decay,
        use_momentum: bool = MODEL_DEFAULTS.use_momentum,
        sync_batchnorm: bool | None = None,
        use_simplicial_embeddings: bool = False,
        sem_num_simplices: int = SEM_DEFAULTS["sem_num_simplices"],
        sem_simplex_dim: int = SEM_DEFAULTS["sem_simplex_dim"],
        sem_temperature: float = SEM_DEFAULTS["sem_temperature"],
        *,
        ema_total_steps: int | None = None,
        ema_buffers: BufferMode = MODEL_DEFAULTS.ema_buffers,  # type: ignore[assignment]
        concat_views: bool = MODEL_DEFAULTS.concat_views,
        normalize: bool | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channels: int | None = None,
        spatial_pool: SpatialPool = "avg",
        token_pool: TokenPool = "cls",
        crop_scale: tuple[float, float] | None = None,
        channels_last: bool | None = MODEL_DEFAULTS.channels_last,
        trace: bool = True,
    ) -> None:
        super().__init__()
        check_arguments(
            net, moving_average_decay, ema_total_steps, ema_buffers, sync_batchnorm, augment_fn, augment_fn2
        )
        self.image_size = as_size(image_size)
        # Registered, as in 0.9: moving the learner moves the whole network, and state_dict() has net.*.
        self.net = net
        self.hidden_layer, self.projection_size = hidden_layer, projection_size
        self.projection_hidden_size = projection_hidden_size
        self.use_momentum = use_momentum
        self.sync_batchnorm = sync_batchnorm
        self.moving_average_decay = float(moving_average_decay)
        self.ema_total_steps = ema_total_steps
        self.ema_buffers = ema_buffers
        self.concat_views = concat_views
        self.channels_last = channels_last
        self.channels = channels if channels is not None else infer_channels(net)
        self._track_ema_steps()
        self._set_augmentations(augment_fn, augment_fn2, crop_scale, normalize, mean, std)

        self._build_networks(NetWrapper(
            net, projection_size, projection_hidden_size, hidden_layer, not use_momentum, sync_batchnorm,
            use_simplicial_embeddings, sem_num_simplices, sem_simplex_dim, sem_temperature,
            image_size=self.image_size, channels=self.channels, spatial_pool=spatial_pool, token_pool=token_pool,
            trace=trace,
        ))
        self._checked_range = False
        self._warned_no_momentum = False

    def _build_networks(self, online_encoder: NetWrapper) -> None:
        """The online encoder given, the predictor, the target copy, and what DDP should leave out."""
        self.online_encoder = online_encoder
        self.representation_dim = online_encoder.representation_dim
        self.online_predictor = build_predictor(self.projection_size, self.projection_hidden_size,
                                                 self.use_momentum, self.sync_batchnorm, self.net)
        self.target_encoder: NetWrapper | None = None
        if self.use_momentum:
            self.target_encoder = clone_module(online_encoder).requires_grad_(False)
        # DDP all-reduces no gradient for the layers after the hidden one (they get none): it would wait for them.
        self._ddp_params_and_buffers_to_ignore = [
            prefix + name for name in online_encoder.unused_names() for prefix in ("net.", "online_encoder.net.")
        ]

    def _track_ema_steps(self) -> None:
        """The ``ema_steps`` buffer, its Python copy, and the hooks that keep them together across loads."""
        # The EMA step is saved as a tensor (state_dict() then holds tensors only, as
        # safetensors and `{k: v.cpu()}` need); a Python copy gives tau without a
        # device sync at every update.
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))
        self._ema_step = 0
        self._tau_override: float | None = None
        self.register_load_state_dict_pre_hook(upgrade_state_dict)
        self.register_load_state_dict_post_hook(after_load)

    def _set_augmentations(
        self,
        augment_fn: Augment | None,
        augment_fn2: Augment | None,
        crop_scale: tuple[float, float] | None,
        normalize: bool | None,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
    ) -> None:
        """The two view pipelines (the user's, else the paper's), the loader's crop and the normalisation."""
        default_1, default_2 = default_augmentations(self.image_size, crop_scale)
        self.crop_spec: CropSpec = default_1.crop
        self.takes_views = augment_fn is None and augment_fn2 is None
        self.augment1: Augment = augment_fn if augment_fn is not None else default_1
        self.augment2: Augment = augment_fn2 or augment_fn or default_2
        if normalize is None:
            normalize = augment_fn is None and augment_fn2 is None
        self.normalize = Normalize(mean, std) if normalize else None

    # -- the EMA target -------------------------------------------------------

    @property
    def ema_step(self) -> int:
        """How many times :meth:`update_moving_average` has run (saved as the ``ema_steps`` buffer)."""
        return self._ema_step

    @property
    def current_tau(self) -> float:
        """The decay the next :meth:`update_moving_average` uses."""
        if self._tau_override is not None:
            return self._tau_override
        if self.ema_total_steps is None:
            return self.moving_average_decay
        return cosine_tau(self._ema_step, self.ema_total_steps, self.moving_average_decay)

    def set_tau(self, tau: float) -> None:
        """Fixes the decay of every following :meth:`update_moving_average`, schedule or not.

        What writing ``target_ema_updater.beta`` does. It replaces
        ``moving_average_decay`` and the cosine schedule (``ema_total_steps``)
        from the next update on; it is not saved in the state dict.
        """
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0.0 <= tau <= 1.0:
            raise ValueError(f"target_ema_updater.beta (tau) must be a number in [0, 1], got {tau!r}")
        self._tau_override = float(tau)

    @property
    def target_ema_updater(self) -> TargetEMAUpdater:
        """byol-pytorch 0.9's handle on tau: ``.beta`` reads :attr:`current_tau` and writes :meth:`set_tau`."""
        return TargetEMAUpdater(self)

    @property
    def online_projector(self) -> nn.Module:
        """The online projector, ``online_encoder.projector``."""
        return self.online_encoder.projector

    @property
    def target_projector(self) -> nn.Module | None:
        """The target projector, ``target_encoder.projector`` (``None`` without momentum)."""
        return self.target_encoder.projector if self.target_encoder is not None else None

    def _get_target_encoder(self) -> NetWrapper:
        """The target encoder (byol-pytorch 0.9's private accessor; :attr:`target_encoder` is the same)."""
        if self.target_encoder is None:
            raise ValueError("there is no target encoder with use_momentum=False; use learner.online_encoder")
        return self.target_encoder

    def trained_parameters(self) -> list[nn.Parameter]:
        """The parameters the loss trains, in a fixed order: the network's up to the hidden layer, the
        projector's, the predictor's. The layers after the hidden one are left out (they get no gradient)."""
        return [*self.online_encoder.trained_tensors(), *self.online_predictor.parameters()]

    def update_moving_average(self) -> None:
        """One EMA step of the target towards the online encoder and projector.

        Call it after each optimiser step. With ``use_momentum=False`` there is
        no target and the call does nothing (it warns once).
        """
        if not self.use_momentum:
            if not self._warned_no_momentum:
                warnings.warn(
                    "update_moving_average() does nothing with use_momentum=False (SimSiam has no "
                    "moving-average target); the call can be removed",
                    stacklevel=2,
                )
                self._warned_no_momentum = True
            return
        tau = self.current_tau
        online, target = self.online_encoder, self.target_encoder
        ema_update_(target.hidden_encoder, online.hidden_encoder, tau, self.ema_buffers)
        ema_update_(target.projector, online.projector, tau, self.ema_buffers)
        self._ema_step += 1
        self.ema_steps.fill_(self._ema_step)  # no read-back: the Python count is the source

    def reset_moving_average(self) -> None:
        """Makes the target an exact copy of the online encoder and projector again."""
        if not self.use_momentum:
            return
        copy_weights_(self.target_encoder.hidden_encoder, self.online_encoder.hidden_encoder)
        copy_weights_(self.target_encoder.projector, self.online_encoder.projector)

    # -- forward --------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor of images (B, C, H, W), got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.channels:
            raise ValueError(f"the network takes {self.channels} channels, got images with {x.shape[1]}")
        if x.dtype == torch.uint8:
            return x.float().div_(255.0)
        if not x.is_floating_point():
            raise TypeError(f"expected float images in [0, 1] or uint8 images, got dtype {x.dtype}")
        if not self._checked_range and not torch.compiler.is_compiling():
            # Checked once, in eager mode only: reading the values back forces a
            # device sync, and under torch.compile a graph break.
            self._checked_range = True
            low, high = torch.aminmax(x.detach())
            if low.item() < -0.1 or high.item() > 1.1:
                warnings.warn(
                    f"images should be floats in [0, 1] (the augmentation and normalisation expect that), "
                    f"got values in [{low.item():.3g}, {high.item():.3g}]; already-normalised input "
                    "is normalised twice",
                    stacklevel=3,
                )
        return x

    def _check_batch(self, batch: int) -> None:
        if self.training and batch < 2:
            raise ValueError(
                f"a training batch needs at least 2 images (the heads use batch norm), got {batch}; "
                "drop the last incomplete batch (DataLoader(drop_last=True))"
            )

    def _photometric_views(self, views: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The colour part of both built-in pipelines on views a loader has cropped."""
        if not self.takes_views:
            raise ValueError("views= draws the built-in photometric augmentation, but augment_fn/augment_fn2 "
                             "replaced the pipelines; pass images x so that your augmentation runs")
        if not isinstance(views, Sequence) or len(views) != 2:
            raise TypeError(f"views must be a pair (view_1, view_2) of image batches, got {type(views).__name__}")
        owned = [v.dtype == torch.uint8 for v in views]  # made into floats here: the colour may work in them
        first, second = (self._check_input(v) for v in views)
        expected = (*first.shape[:2], *self.image_size)
        if tuple(first.shape) != expected or tuple(second.shape) != expected:
            raise ValueError(f"both views must have shape (B, C, {self.image_size[0]}, {self.image_size[1]}) "
                             f"(image_size), got {tuple(first.shape)} and {tuple(second.shape)}")
        self._check_batch(first.shape[0])
        augment1, augment2 = self.augment1, self.augment2
        assert isinstance(augment1, BYOLAugmentation) and isinstance(augment2, BYOLAugmentation)
        with torch.autocast(device_type=first.device.type, enabled=False):
            return (self._prepare(augment1.photometric(first, inplace=owned[0])),
                    self._prepare(augment2.photometric(second, inplace=owned[1])))

    def _prepare(self, views: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            views = self.normalize(views)
        if self.channels_last or (self.channels_last is None and views.device.type == "cpu"):
            views = views.contiguous(memory_format=torch.channels_last)
        return views

    def _online(self, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        projection, representation = self.online_encoder(view)
        return representation, projection, self.online_predictor(projection)

    def _target(self, view: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.target_encoder(view)[0]

    def forward(
        self,
        x: torch.Tensor | None = None,
        return_embedding: bool = False,
        return_projection: bool = True,
        return_details: bool = False,
        *,
        views: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | BYOLOutput:
        """The BYOL loss of a batch, or its embeddings.

        Args:
            x: ``(B, C, H, W)`` images, float in [0, 1] (uint8 is scaled).
                Both views are drawn from it on its device.
            return_embedding: return ``(projection, embedding)`` of the
                un-augmented images (normalised as the training views are)
                instead of the loss.
            return_projection: with ``return_embedding``, ``False`` returns
                the embedding ``(B, D)`` alone.
            return_details: return a :class:`BYOLOutput` with a collapse
                monitor beside the loss.
            views: instead of ``x``: ``(view_1, view_2)``, each ``(B, C, *image_size)``
                (uint8 or float in [0, 1]), already cropped and flipped; only
                the photometric part of the built-in pipelines is drawn.

        Returns:
            The scalar loss; or ``(projection (B, P), embedding (B, D))``; or
            the embedding; or a :class:`BYOLOutput`.
        """
        if views is not None:
            if x is not None or return_embedding:
                raise ValueError("pass either images x or views=(view_1, view_2), not both; "
                                 "embeddings are taken from images x")
            view_1, view_2 = self._photometric_views(views)
        else:
            if x is None:
                raise TypeError("expected images x (B, C, H, W) or views=(view_1, view_2), got neither")
            x = self._check_input(x)
            if return_embedding:
                # Normalised only: the views' memory format speeds up training steps; embeddings
                # stay those of the images as given, as FrozenEncoder's are.
                images = self.normalize(x) if self.normalize is not None else x
                return self.online_encoder(images, return_projection=return_projection)
            view_1, view_2 = self._augmented_views(x)
        loss, rep_1 = self._loss(view_1, view_2)
        return BYOLOutput(loss, representation_std(rep_1)) if return_details else loss

    def _augmented_views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both prepared views of checked images ``x``, one per pipeline."""
        self._check_batch(x.shape[0])
        # Augment in full precision: autocast would run the crop's resize and the colour and blur arithmetic in bf16/fp16.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._prepare(self.augment1(x)), self._prepare(self.augment2(x))

    def _loss(self, view_1: torch.Tensor, view_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The symmetric loss of two prepared views, and view 1's online representation (for the monitor).

        Each view's prediction regresses the other view's target (see :func:`byol_loss`).
        """
        if self.concat_views:
            rep, proj, pred = self._online(torch.cat([view_1, view_2]))
            (rep_1, _), (proj_1, proj_2), (pred_1, pred_2) = rep.chunk(2), proj.chunk(2), pred.chunk(2)
        else:
            rep_1, proj_1, pred_1 = self._online(view_1)
            _, proj_2, pred_2 = self._online(view_2)

        if not self.use_momentum:
            target_1, target_2 = proj_1.detach(), proj_2.detach()
        elif self.concat_views:
            target_1, target_2 = self._target(torch.cat([view_1, view_2])).chunk(2)
        else:
            target_1, target_2 = self._target(view_1), self._target(view_2)

        return byol_loss(pred_1, pred_2, target_1, target_2), rep_1
