from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from byol_pytorch import BYOL, BYOLOutput
from byol_pytorch.model import representation_std
from byol_pytorch.model.heads import SimSiamProjector

from .conftest import assert_same_state, state_copy, tiny_cnn


def _learner(net: nn.Module | None = None, **kwargs) -> BYOL:
    return BYOL(net or tiny_cnn(), image_size=16, projection_size=8, projection_hidden_size=16, **kwargs)


def _train_step(learner: BYOL, x: torch.Tensor, lr: float = 0.1) -> torch.Tensor:
    opt = torch.optim.SGD([p for p in learner.parameters() if p.requires_grad], lr=lr)
    loss = learner(x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize("train_mode", [True, False])
def test_building_changes_nothing_in_the_users_network(train_mode: bool) -> None:
    net = models.resnet18().train(train_mode)
    net.layer2.train(not train_mode)
    before, modes = state_copy(net), [m.training for m in net.modules()]
    device = net.conv1.weight.device
    BYOL(net, image_size=32, hidden_layer="avgpool", projection_hidden_size=32)
    assert_same_state(before, state_copy(net))  # running stats and num_batches_tracked included
    assert modes == [m.training for m in net.modules()]
    assert net.conv1.weight.device == device


@pytest.mark.parametrize("trace", [True, False])
def test_no_state_left_on_the_network_after_forward(trace: bool) -> None:
    net = tiny_cnn()
    attributes = {name: set(vars(m)) for name, m in net.named_modules()}
    learner = _learner(net, trace=trace)
    learner(torch.rand(4, 3, 16, 16)).backward()
    learner(torch.rand(4, 3, 16, 16), return_embedding=True)
    for name, module in net.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, name
        assert set(vars(module)) == attributes[name], name


def test_default_hidden_layer_and_representation_width() -> None:
    learner = BYOL(models.resnet18(), image_size=32, projection_hidden_size=32)
    assert learner.online_encoder.layer == "avgpool" and learner.representation_dim == 512
    # The classifier is not part of the trained graph: DDP needs no unused-parameter search.
    loss = learner(torch.rand(2, 3, 32, 32))
    loss.backward()
    assert all(p.grad is not None for p in learner.trained_parameters())
    # The classifier gets no gradient, and it is exactly what DDP is told to leave out.
    no_grad = {n for n, p in learner.named_parameters() if p.requires_grad and p.grad is None}
    assert no_grad == {"net.fc.weight", "net.fc.bias"}
    assert no_grad <= set(learner._ddp_params_and_buffers_to_ignore)


def _assert_distinct_equal_copy(target: nn.Module, online: nn.Module) -> None:
    """``target`` holds ``online``'s values in tensors of its own, none of them trained."""
    assert_same_state(state_copy(target), state_copy(online))
    pairs = list(zip(target.parameters(), online.parameters(), strict=True))
    assert pairs
    for t, o in pairs:
        assert not t.requires_grad and o.requires_grad
        assert t.data_ptr() != o.data_ptr()


def test_target_is_a_frozen_copy_outside_the_gradient() -> None:
    learner = _learner()
    _assert_distinct_equal_copy(learner.target_encoder, learner.online_encoder)
    _assert_distinct_equal_copy(learner.target_projector, learner.online_projector)
    target_params = list(learner.target_encoder.parameters()) + list(learner.target_projector.parameters())
    learner(torch.rand(4, 3, 16, 16)).backward()
    assert all(p.grad is None for p in target_params)
    trainable = [p for p in learner.parameters() if p.requires_grad]
    assert not {id(p) for p in trainable} & {id(p) for p in target_params}


def test_moving_average_with_tau_one_and_zero() -> None:
    learner = _learner(moving_average_decay=1.0)
    x = torch.rand(4, 3, 16, 16)
    before = state_copy(learner.target_encoder)
    _train_step(learner, x)
    learner.update_moving_average()
    after = state_copy(learner.target_encoder)
    for key in before:
        if key.endswith("weight") or key.endswith("bias"):
            assert torch.equal(before[key], after[key]), key

    learner.moving_average_decay = 0.0
    learner.update_moving_average()
    for t, o in zip(learner.target_encoder.parameters(), learner.online_encoder.parameters()):
        assert torch.equal(t, o)
    for t, o in zip(learner.target_projector.parameters(), learner.online_projector.parameters()):
        assert torch.equal(t, o)


def test_cosine_schedule_advances_with_each_update_and_is_saved() -> None:
    learner = _learner(moving_average_decay=0.9, ema_total_steps=4)
    taus = []
    for _ in range(5):
        taus.append(learner.current_tau)
        learner.update_moving_average()
    assert taus[0] == pytest.approx(0.9) and taus[2] == pytest.approx(0.95) and taus[4] == pytest.approx(1.0)
    assert learner.ema_step == 5
    state = learner.state_dict()
    fresh = _learner(moving_average_decay=0.9, ema_total_steps=4)
    fresh.load_state_dict(state)
    assert fresh.ema_step == 5
    assert_same_state(state_copy(fresh), state_copy(learner))


def test_state_dict_holds_tensors_only_and_saves_with_safetensors(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    learner = _learner(ema_total_steps=10)
    _train_step(learner, torch.rand(4, 3, 16, 16))
    for _ in range(3):
        learner.update_moving_average()
    state = learner.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["ema_steps"].dtype == torch.long and int(state["ema_steps"]) == 3
    # net.* and online_encoder.net.* are one tensor under two names (0.9's layout): save_file wants
    # tensors of their own, which {k: v.clone()} (or .cpu() from a GPU) gives; the load is strict.
    assert state["net.conv.weight"].data_ptr() == state["online_encoder.net.conv.weight"].data_ptr()
    save_file({k: v.clone() for k, v in state.items()}, tmp_path / "learner.safetensors")
    fresh = _learner(ema_total_steps=10)
    fresh.load_state_dict(load_file(tmp_path / "learner.safetensors"))
    assert fresh.ema_step == 3 and fresh.current_tau == learner.current_tau
    assert_same_state(state_copy(fresh), state_copy(learner))


def test_state_dict_of_the_earlier_format_still_loads() -> None:
    # Before ema_steps became a buffer, the step travelled as `_extra_state`.
    learner = _learner(ema_total_steps=10)
    old = {k: v for k, v in learner.state_dict().items() if k != "ema_steps"}
    old["_extra_state"] = {"ema_step": 7}
    fresh = _learner(ema_total_steps=10)
    fresh.load_state_dict(old)  # strict: the old key is understood, not unexpected
    assert fresh.ema_step == 7 and int(fresh.ema_steps) == 7
    wrapped = nn.Sequential(_learner(ema_total_steps=10))  # the key under a prefix, as in a wrapper
    wrapped.load_state_dict({f"0.{k}": v for k, v in old.items()})
    assert wrapped[0].ema_step == 7


def test_state_dict_round_trip_restores_online_target_and_heads() -> None:
    learner = _learner()
    _train_step(learner, torch.rand(4, 3, 16, 16))
    learner.update_moving_average()
    fresh = _learner()
    fresh.load_state_dict(learner.state_dict())
    for part in ("online_encoder", "online_projector", "online_predictor", "target_encoder", "target_projector"):
        assert_same_state(state_copy(getattr(fresh, part)), state_copy(getattr(learner, part)))


def test_reset_moving_average_recopies_the_online_network() -> None:
    learner = _learner()
    _train_step(learner, torch.rand(4, 3, 16, 16))
    learner.reset_moving_average()
    assert_same_state(state_copy(learner.target_encoder), state_copy(learner.online_encoder))


def test_simsiam_has_no_target_and_a_harmless_update() -> None:
    learner = _learner(use_momentum=False, augment_fn=nn.Identity(), augment_fn2=_flipped)
    assert learner.target_encoder is None and isinstance(learner.online_projector, SimSiamProjector)
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():  # training-mode batch norm: the outputs use batch statistics only
        (_, proj_1, pred_1), (_, proj_2, pred_2) = _online_pieces(learner, x), _online_pieces(learner, _flipped(x))
    # The target of the other view is its own online projection, under stop-gradient.
    expected = (_regression(pred_1, proj_2) + _regression(pred_2, proj_1)).mean()
    torch.testing.assert_close(_train_step(learner, x).detach(), expected)
    before = state_copy(learner)
    with pytest.warns(UserWarning, match="does nothing with use_momentum=False"):
        learner.update_moving_average()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.update_moving_average()  # warned once only
    assert_same_state(before, state_copy(learner))


def test_loss_equals_the_formula_on_the_views() -> None:
    learner = _learner().eval()  # eval: batch norm is deterministic, so passes can be recomputed
    identity = nn.Identity()
    learner.augment1 = learner.augment2 = identity
    x = torch.rand(4, 3, 16, 16)
    view = learner.normalize(x)
    prediction = learner.online_predictor(learner.online_encoder(view)[0])
    target = learner.target_encoder(view)[0]
    expected = 2 * (2 - 2 * nn.functional.cosine_similarity(prediction, target)).mean()
    torch.testing.assert_close(learner(x), expected)


def _flipped(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _online_pieces(learner: BYOL, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Representation, projection and prediction of a view, from the learner's modules."""
    projection, representation = learner.online_encoder(view)
    return representation, projection, learner.online_predictor(projection)


def _regression(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's per-sample loss, written from its definition: 2 - 2 cos(p, z)."""
    return 2 - 2 * nn.functional.cosine_similarity(prediction, target)


def test_each_view_predicts_the_target_of_the_other() -> None:
    # Training mode, one pass per view: batch norm uses each view's own batch
    # statistics, so the passes below recompute the learner's exactly.
    learner = _learner(augment_fn=nn.Identity(), augment_fn2=_flipped)
    x = torch.rand(4, 3, 16, 16)
    view_1, view_2 = x, _flipped(x)  # two different views; no normalisation with a user's augmentation

    def crossed_and_same_view() -> tuple[torch.Tensor, torch.Tensor]:
        prediction_1, prediction_2 = _online_pieces(learner, view_1)[2], _online_pieces(learner, view_2)[2]
        target_1, target_2 = (learner.target_encoder(v)[0] for v in (view_1, view_2))
        crossed = (_regression(prediction_1, target_2) + _regression(prediction_2, target_1)).mean()
        return crossed, (_regression(prediction_1, target_1) + _regression(prediction_2, target_2)).mean()

    crossed, _ = crossed_and_same_view()
    torch.testing.assert_close(learner(x), crossed)
    # With a predictor that passes the projection through and a target that is
    # still a copy of the online network, same-view pairs would give a loss of 0.
    learner.online_predictor = nn.Identity()
    crossed, same_view = crossed_and_same_view()
    assert same_view.abs() < 1e-5
    loss = learner(x)
    torch.testing.assert_close(loss, crossed)
    assert loss > 0.1


def test_concatenated_views_equal_separate_passes_without_batch_statistics() -> None:
    x = torch.rand(4, 3, 16, 16)
    separate = _learner().eval()
    joint = _learner(concat_views=True).eval()
    joint.load_state_dict(separate.state_dict())
    torch.manual_seed(3)
    a = separate(x)
    torch.manual_seed(3)
    b = joint(x)
    torch.testing.assert_close(a, b)


def test_batch_of_one_is_refused_in_training() -> None:
    with pytest.raises(ValueError, match="at least 2 images.*got 1.*drop_last"):
        _learner()(torch.rand(1, 3, 16, 16))


def test_uint8_input_is_scaled() -> None:
    learner = _learner().eval()
    x = (torch.rand(4, 3, 16, 16) * 255).round().to(torch.uint8)
    torch.manual_seed(1)
    a = learner(x)
    torch.manual_seed(1)
    b = learner(x.float() / 255)
    torch.testing.assert_close(a, b)


def test_out_of_range_input_warns_once() -> None:
    learner = _learner()
    with pytest.warns(UserWarning, match=r"floats in \[0, 1\].*got values in \[-2"):
        learner(torch.rand(4, 3, 16, 16) * 4 - 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner(torch.rand(4, 3, 16, 16) * 4 - 2)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (torch.rand(3, 16, 16), ValueError, r"shape \(B, C, H, W\), got shape \(3, 16, 16\)"),
        (torch.rand(2, 1, 16, 16), ValueError, "takes 3 channels, got images with 1"),
        (torch.ones(2, 3, 16, 16, dtype=torch.int64), TypeError, "got dtype torch.int64"),
    ],
)
def test_bad_inputs_are_named(x: torch.Tensor, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _learner()(x)


def test_custom_augmentations_are_used_and_second_defaults_to_first() -> None:
    calls = []

    def augment(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape)
        return x.flip(-1)

    learner = _learner(augment_fn=augment)
    assert learner.augment2 is augment and learner.normalize is None
    learner(torch.rand(4, 3, 16, 16))
    assert len(calls) == 2
    other = _learner(augment_fn=augment, augment_fn2=torch.nn.Identity())
    assert isinstance(other.augment2, torch.nn.Identity)
    with pytest.raises(TypeError, match="augment_fn must be callable"):
        _learner(augment_fn=3)


def test_embeddings_use_the_training_normalisation() -> None:
    learner = _learner().eval()
    x = torch.rand(5, 3, 16, 16)
    projection, embedding = learner(x, return_embedding=True)
    assert projection.shape == (5, 8) and embedding.shape == (5, 8)
    torch.testing.assert_close(embedding, learner.online_encoder.get_representation(learner.normalize(x)))
    alone = learner(x, return_embedding=True, return_projection=False)
    torch.testing.assert_close(alone, embedding)


def test_details_report_the_collapse_monitor() -> None:
    learner = _learner(augment_fn=nn.Identity(), augment_fn2=_flipped).eval()
    x = torch.rand(8, 3, 16, 16)
    out = learner(x, return_details=True)
    assert isinstance(out, BYOLOutput) and out.loss.requires_grad
    torch.testing.assert_close(out.loss, learner(x))
    # The monitor reads view 1's online representation: the mean per-dimension
    # std of the l2-normalised rows.
    representation = nn.functional.normalize(learner.online_encoder(x, return_projection=False).detach(), dim=1)
    torch.testing.assert_close(out.representation_std, representation.std(dim=0).mean())
    collapsed = torch.ones(8, 5)
    assert representation_std(collapsed).item() == 0.0


@pytest.mark.parametrize("size", [(16, 24), (24, 16)])
def test_rectangular_image_size(size: tuple[int, int]) -> None:
    learner = BYOL(tiny_cnn(), image_size=size, projection_hidden_size=16)
    assert learner.image_size == size
    assert learner(torch.rand(3, 3, 30, 30)).ndim == 0


@pytest.mark.parametrize("channels", [1, 4])
def test_networks_with_other_channel_counts(channels: int) -> None:
    learner = _learner(tiny_cnn(channels=channels))
    assert learner.channels == channels
    assert torch.isfinite(learner(torch.rand(3, channels, 16, 16)))


def test_weight_norm_network_gets_a_target() -> None:
    net = tiny_cnn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net.conv = nn.utils.weight_norm(net.conv)
    learner = _learner(net)
    _assert_distinct_equal_copy(learner.target_encoder, learner.online_encoder)
    initial = state_copy(learner.target_encoder)
    _train_step(learner, torch.rand(4, 3, 16, 16))
    learner.moving_average_decay = 0.0  # the target becomes the trained online encoder
    learner.update_moving_average()
    assert any(not torch.equal(initial[key], value) for key, value in state_copy(learner.target_encoder).items())
    _assert_distinct_equal_copy(learner.target_encoder, learner.online_encoder)


def test_bfloat16_autocast_and_channels_last_follow_float32() -> None:
    # ResNet-18 at 16 px ends on 1x1 maps, where 3x3 convolutions in bf16 once gave garbage gradients.
    torch.manual_seed(0)
    learner = _learner(models.resnet18(), channels_last=True)
    learner.to(memory_format=torch.channels_last)
    x = torch.rand(8, 3, 16, 16)
    results = []
    for autocast in (False, True):
        learner.zero_grad()
        torch.manual_seed(1)  # the same views both times
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = learner(x)
        loss.backward()
        results.append((loss, {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}))
    (full, full_grads), (half, half_grads) = results
    assert half.dtype == torch.float32 and abs(half.item() - full.item()) < 0.03 * abs(full.item())
    assert full_grads.keys() == half_grads.keys()
    cosines = {}
    for name, grad in full_grads.items():
        assert torch.isfinite(half_grads[name]).all() and half_grads[name].abs().max() < 1e3, name
        if grad.norm() > 1e-6:
            cosines[name] = float(F.cosine_similarity(grad.flatten(), half_grads[name].flatten(), dim=0))
    # bf16 rounding at initialisation leaves each gradient's direction at a cosine of 0.65-0.95 with float32's
    # (median 0.79, on an Intel Xeon); without the 1x1-map guard, layer4's first conv got a cosine of 0 and
    # values of 1e33 (the margins leave room for another CPU's rounding, none for that).
    assert min(cosines.values()) > 0.3, min(cosines.items(), key=lambda item: item[1])
    assert sorted(cosines.values())[len(cosines) // 2] > 0.6


def test_vision_transformer_learner() -> None:
    vit = models.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16)
    learner = BYOL(vit, image_size=16, hidden_layer="encoder", projection_hidden_size=16)
    assert learner.representation_dim == 8
    assert torch.isfinite(learner(torch.rand(3, 3, 16, 16)))


def test_learner_follows_the_network_dtype() -> None:
    learner = _learner(tiny_cnn().double())
    assert learner.online_projector[0].weight.dtype == torch.float64
    assert learner(torch.rand(3, 3, 16, 16, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda() -> None:
    learner = _learner(tiny_cnn().cuda())
    assert learner.online_projector[0].weight.is_cuda
    assert torch.isfinite(learner(torch.rand(4, 3, 16, 16, device="cuda")))


def test_torch_compile_traces_the_learner() -> None:
    # aot_eager runs dynamo and AOTAutograd like inductor does, without the minutes of C++ compilation.
    learner = _learner().eval()
    learner.augment1 = learner.augment2 = nn.Identity()
    x = torch.rand(4, 3, 16, 16)
    expected = learner(x)
    learner._checked_range = False  # as if never called eagerly: the one-time range check must not break the graph
    compiled = torch.compile(learner, backend="aot_eager", fullgraph=True)
    loss = compiled(x)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert learner.online_predictor[0].weight.grad is not None
