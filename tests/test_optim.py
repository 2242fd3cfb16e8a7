"""Behaviour of the LARS optimiser, parameter grouping and schedules in byol_pytorch.optim."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch import nn

from byol_pytorch.optim import LARS, build_optimizer, lars_param_groups, scaled_learning_rate, warmup_cosine

from .conftest import tiny_cnn


def _param(values: list[float]) -> nn.Parameter:
    # float64 so the hand-computed expectations match to the last bit that matters.
    return nn.Parameter(torch.tensor(values, dtype=torch.float64))


# --- LARS step ----------------------------------------------------------------


def test_lars_first_step_matches_hand_computation() -> None:
    p = _param([3.0, 4.0])  # ||p|| = 5
    p.grad = torch.tensor([0.3, 0.4], dtype=torch.float64)
    opt = LARS([p], lr=0.1, momentum=0.9, weight_decay=0.1, trust_coefficient=0.01, eps=0.0)
    opt.step()
    # d = g + 0.1 p = [0.6, 0.8], ||d|| = 1; trust = 0.01 * 5 / 1 = 0.05; v = 0.1 * 0.05 * d
    torch.testing.assert_close(p.detach(), torch.tensor([2.997, 3.996], dtype=torch.float64))
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.tensor([0.003, 0.004], dtype=torch.float64))


def test_lars_two_steps_follow_the_formula() -> None:
    lr, m, wd, tc, eps = 0.5, 0.9, 0.01, 1e-3, 1e-8
    p = _param([1.0, -2.0, 0.5])
    grads = [torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64), torch.tensor([-0.4, 0.05, 0.1], dtype=torch.float64)]
    opt = LARS([p], lr=lr, momentum=m, weight_decay=wd, trust_coefficient=tc, eps=eps)

    ref = p.detach().clone()
    v = torch.zeros_like(ref)
    for g in grads:
        d = g + wd * ref
        trust = tc * ref.norm() / (d.norm() + eps)
        v = m * v + lr * trust * d
        ref = ref - v
        p.grad = g.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), ref)


def test_lars_nesterov_follows_the_formula() -> None:
    lr, m, wd, tc = 0.5, 0.9, 0.0, 1e-2
    p = _param([1.0, 2.0])
    opt = LARS([p], lr=lr, momentum=m, weight_decay=wd, trust_coefficient=tc, eps=0.0, nesterov=True)
    ref = p.detach().clone()
    v = torch.zeros_like(ref)
    for g in (torch.tensor([0.3, -0.1], dtype=torch.float64), torch.tensor([0.2, 0.2], dtype=torch.float64)):
        step = lr * tc * ref.norm() / g.norm() * g
        v = m * v + step
        ref = ref - (step + m * v)
        p.grad = g.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), ref)


def test_lars_does_not_modify_the_gradient() -> None:
    p = _param([1.0, 2.0])
    grad = torch.tensor([0.1, 0.2], dtype=torch.float64)
    for wd in (0.0, 0.5):
        p.grad = grad.clone()
        LARS([p], lr=0.1, weight_decay=wd).step()
        torch.testing.assert_close(p.grad, grad)


def test_excluded_group_is_plain_momentum_sgd_without_decay() -> None:
    start = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    grads = [torch.randn(3, dtype=torch.float64) for _ in range(3)]
    a, b = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    lars = LARS([{"params": [a], "lars_exclude": True}], lr=0.1, momentum=0.9, weight_decay=0.5)
    sgd = torch.optim.SGD([b], lr=0.1, momentum=0.9)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        lars.step()
        sgd.step()
        torch.testing.assert_close(a.detach(), b.detach())


def test_trust_ratio_is_one_for_zero_grad_and_zero_param() -> None:
    # Zero gradient and no decay: the update is zero and must not be NaN.
    p = _param([1.0, 2.0])
    p.grad = torch.zeros(2, dtype=torch.float64)
    opt = LARS([p], lr=0.1, weight_decay=0.0)
    opt.step()
    assert torch.isfinite(opt.state[p]["momentum_buffer"]).all()
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, 2.0], dtype=torch.float64))

    # Zero parameter: trust falls back to 1, so the step is exactly lr * g.
    q = _param([0.0, 0.0])
    q.grad = torch.tensor([0.1, -0.2], dtype=torch.float64)
    LARS([q], lr=0.1, weight_decay=0.0, eps=0.0).step()
    torch.testing.assert_close(q.detach(), torch.tensor([-0.01, 0.02], dtype=torch.float64))


def test_params_without_grad_are_skipped() -> None:
    p, q = _param([1.0]), _param([2.0, 3.0])
    q.grad = torch.ones(2, dtype=torch.float64)
    opt = LARS([p, q], lr=0.1)
    opt.step()
    assert p.item() == 1.0
    assert p not in opt.state
    assert not torch.equal(q.detach(), torch.tensor([2.0, 3.0], dtype=torch.float64))


def test_zero_momentum_keeps_no_state() -> None:
    p = _param([3.0, 4.0])
    p.grad = torch.tensor([0.6, 0.8], dtype=torch.float64)
    opt = LARS([p], lr=1.0, momentum=0.0, weight_decay=0.0, trust_coefficient=0.1, eps=0.0)
    opt.step()
    # trust = 0.1 * 5 / 1 = 0.5
    torch.testing.assert_close(p.detach(), torch.tensor([2.7, 3.6], dtype=torch.float64))
    assert "momentum_buffer" not in opt.state[p]


def test_closure_loss_is_returned() -> None:
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = LARS([p], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss is not None and loss.item() == pytest.approx(5.0)
    assert p.grad is not None


def test_lars_trains_linear_regression() -> None:
    x = torch.randn(64, 5)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0]) + 0.3
    model = nn.Linear(5, 1)
    # A large trust coefficient so that a few dozen steps make visible progress.
    opt = LARS(lars_param_groups(model), lr=1.0, trust_coefficient=0.05)

    def loss_fn() -> torch.Tensor:
        return nn.functional.mse_loss(model(x).squeeze(-1), y)

    first = loss_fn().item()
    for _ in range(100):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    last = loss_fn().item()
    assert math.isfinite(last)
    assert last < 0.1 * first


def test_state_dict_round_trip_gives_identical_next_step() -> None:
    model = tiny_cnn()
    images = torch.rand(4, 3, 8, 8)
    opt = LARS(lars_param_groups(model), lr=0.3, trust_coefficient=0.02)
    for _ in range(2):
        opt.zero_grad()
        model(images).square().mean().backward()
        opt.step()

    clone = copy.deepcopy(model)
    restored = LARS(lars_param_groups(clone), lr=99.0)  # hyperparameters come back from the state dict
    # Through bytes like a real checkpoint: an in-memory state dict shares its buffers with `opt`.
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert restored.param_groups[0]["lr"] == 0.3
    assert restored.param_groups[1]["lars_exclude"] is True

    for m, o in ((model, opt), (clone, restored)):
        o.zero_grad()
        m(images).square().mean().backward()
        o.step()
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -0.1}, r"lr must be >= 0, got -0\.1"),
        ({"lr": float("nan")}, r"lr must be >= 0, got nan"),
        ({"lr": 0.1, "momentum": 1.0}, r"momentum must be in \[0, 1\), got 1\.0"),
        ({"lr": 0.1, "momentum": -0.5}, r"momentum must be in \[0, 1\), got -0\.5"),
        ({"lr": 0.1, "weight_decay": -1e-6}, r"weight_decay must be >= 0, got -1e-06"),
        ({"lr": 0.1, "trust_coefficient": 0.0}, r"trust_coefficient must be > 0, got 0\.0"),
        ({"lr": 0.1, "eps": -1.0}, r"eps must be >= 0, got -1\.0"),
        ({"lr": 0.1, "momentum": 0.0, "nesterov": True}, r"nesterov=True needs momentum > 0"),
    ],
)
def test_lars_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LARS([_param([1.0])], **kwargs)


def test_lars_validates_per_group_overrides() -> None:
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1\.5"):
        LARS([{"params": [_param([1.0])], "momentum": 1.5}], lr=0.1)


# --- lars_param_groups --------------------------------------------------------


def test_lars_param_groups_split_weights_from_biases_and_norms() -> None:
    model = nn.Sequential(tiny_cnn(), nn.LayerNorm(10), nn.Linear(10, 4, bias=False))
    groups = lars_param_groups(model, weight_decay=1e-4)
    assert len(groups) == 2
    decayed, excluded = groups
    assert decayed["weight_decay"] == 1e-4 and decayed["lars_exclude"] is False
    assert excluded["weight_decay"] == 0.0 and excluded["lars_exclude"] is True

    cnn = model[0]
    expect_decayed = {id(cnn.conv.weight), id(cnn.fc.weight), id(model[2].weight)}
    expect_excluded = {
        id(cnn.conv.bias),
        id(cnn.fc.bias),
        id(cnn.bn.weight),
        id(cnn.bn.bias),
        id(model[1].weight),
        id(model[1].bias),
    }
    assert {id(p) for p in decayed["params"]} == expect_decayed
    assert {id(p) for p in excluded["params"]} == expect_excluded
    assert len(decayed["params"]) + len(excluded["params"]) == len(list(model.parameters()))


def test_lars_param_groups_skip_frozen_and_deduplicate_shared() -> None:
    model = tiny_cnn()
    model.conv.weight.requires_grad_(False)
    model.bn.bias.requires_grad_(False)
    shared = nn.Linear(10, 10)
    wrapper = nn.ModuleDict({"net": model, "a": shared, "b": shared})
    groups = lars_param_groups(wrapper)
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert len(all_ids) == len(set(all_ids))
    assert id(model.conv.weight) not in all_ids and id(model.bn.bias) not in all_ids
    trainable = {id(p) for p in wrapper.parameters() if p.requires_grad}
    assert set(all_ids) == trainable
    assert groups[0]["weight_decay"] == 1.5e-6


def test_lars_param_groups_omit_empty_group_and_validate() -> None:
    groups = lars_param_groups(nn.Linear(3, 2, bias=False))
    assert len(groups) == 1 and groups[0]["lars_exclude"] is False
    with pytest.raises(ValueError, match=r"weight_decay must be >= 0, got -0\.1"):
        lars_param_groups(nn.Linear(3, 2), weight_decay=-0.1)


# --- warmup_cosine and scaled_learning_rate -----------------------------------


def test_warmup_cosine_values() -> None:
    total, warmup = 110, 10
    assert warmup_cosine(0, total, warmup) == pytest.approx(0.1)
    assert warmup_cosine(4, total, warmup) == pytest.approx(0.5)
    assert warmup_cosine(warmup - 1, total, warmup) == pytest.approx(1.0)
    assert warmup_cosine(warmup, total, warmup) == pytest.approx(1.0)
    assert warmup_cosine(60, total, warmup) == pytest.approx(0.5)  # half-way through the decay
    assert warmup_cosine(total, total, warmup) == pytest.approx(0.0)
    assert warmup_cosine(total + 50, total, warmup) == pytest.approx(0.0)


def test_warmup_cosine_final_fraction_and_no_warmup() -> None:
    assert warmup_cosine(0, 100) == pytest.approx(1.0)
    assert warmup_cosine(50, 100, final_fraction=0.2) == pytest.approx(0.6)
    assert warmup_cosine(100, 100, final_fraction=0.2) == pytest.approx(0.2)
    assert warmup_cosine(1000, 100, final_fraction=0.2) == pytest.approx(0.2)
    # Warm-up spanning the whole schedule: reach 1 at the last step, final_fraction after.
    assert warmup_cosine(9, 10, 10, final_fraction=0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 10, final_fraction=0.1) == pytest.approx(0.1)


def test_warmup_cosine_is_monotone_after_warmup() -> None:
    values = [warmup_cosine(s, 50, 5) for s in range(5, 51)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 0), r"total_steps must be > 0, got 0"),
        ((0, 10, -1), r"warmup_steps must be in \[0, total_steps=10\], got -1"),
        ((0, 10, 11), r"warmup_steps must be in \[0, total_steps=10\], got 11"),
        ((-1, 10), r"step must be >= 0, got -1"),
        ((0, 10, 0, 1.5), r"final_fraction must be in \[0, 1\], got 1\.5"),
    ],
)
def test_warmup_cosine_validation(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        warmup_cosine(*args)


def test_warmup_cosine_drives_lambda_lr() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = LARS([p], lr=2.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, 20, 4))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0)


def test_scaled_learning_rate() -> None:
    assert scaled_learning_rate(0.2, 256) == pytest.approx(0.2)
    assert scaled_learning_rate(0.2, 4096) == pytest.approx(3.2)
    assert scaled_learning_rate(0.3, 64) == pytest.approx(0.075)
    with pytest.raises(ValueError, match=r"batch_size must be > 0, got 0"):
        scaled_learning_rate(0.2, 0)
    with pytest.raises(ValueError, match=r"base_lr must be >= 0, got -0\.2"):
        scaled_learning_rate(-0.2, 256)


# --- build_optimizer ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "default_wd"),
    [
        ("adam", torch.optim.Adam, 0.0),
        ("AdamW", torch.optim.AdamW, 0.01),
        ("sgd", torch.optim.SGD, 0.0),
        ("LARS", LARS, 1.5e-6),
    ],
)
def test_build_optimizer_by_name(name: str, cls: type, default_wd: float) -> None:
    model = tiny_cnn()
    model.fc.bias.requires_grad_(False)
    opt = build_optimizer(model, name, lr=0.01)
    assert type(opt) is cls
    params = [p for g in opt.param_groups for p in g["params"]]
    assert len(params) == sum(1 for p in model.parameters() if p.requires_grad)
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    assert opt.param_groups[0]["weight_decay"] == default_wd

    opt = build_optimizer(model, name, lr=0.01, weight_decay=0.25)
    assert opt.param_groups[0]["weight_decay"] == 0.25


def test_build_optimizer_lars_uses_param_groups() -> None:
    opt = build_optimizer(tiny_cnn(), "lars", lr=0.1, weight_decay=1e-5, trust_coefficient=2e-3)
    assert [g["lars_exclude"] for g in opt.param_groups] == [False, True]
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-5, 0.0]
    assert all(g["trust_coefficient"] == 2e-3 for g in opt.param_groups)
    by_class = build_optimizer(tiny_cnn(), LARS, lr=0.1)
    assert [g["lars_exclude"] for g in by_class.param_groups] == [False, True]


def test_build_optimizer_with_class_and_param_list() -> None:
    model = tiny_cnn()
    opt = build_optimizer(model, torch.optim.RMSprop, lr=0.01, momentum=0.5)
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.param_groups[0]["momentum"] == 0.5
    opt = build_optimizer(list(model.parameters()), "sgd", lr=0.1, momentum=0.9, nesterov=True)
    assert opt.param_groups[0]["nesterov"] is True


def test_build_optimizer_rejects_unknown_names_and_types() -> None:
    accepted = r"\['adam', 'adamw', 'lars', 'sgd'\]"
    with pytest.raises(ValueError, match=rf"unknown optimizer 'rmsprop'; expected one of {accepted}"):
        build_optimizer(tiny_cnn(), "rmsprop", lr=0.1)
    with pytest.raises(TypeError, match=r"Optimizer subclass, got <class 'torch.nn.modules.linear.Linear'>"):
        build_optimizer(tiny_cnn(), nn.Linear, lr=0.1)  # type: ignore[arg-type]


def _reference_lars_step(params: list[nn.Parameter], buffers: dict[int, torch.Tensor], group: dict) -> None:
    """LARS as its docstring writes it, one parameter at a time (the implementation before foreach)."""
    with torch.no_grad():
        for p in params:
            if group["lars_exclude"]:
                update, scale = p.grad, torch.tensor(group["lr"], dtype=p.dtype)
            else:
                update = p.grad + group["weight_decay"] * p
                p_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                trust = group["trust_coefficient"] * p_norm / (u_norm + group["eps"])
                scale = group["lr"] * (trust if p_norm > 0 and u_norm > 0 else torch.ones_like(p_norm))
            if group["momentum"] == 0.0:
                p.sub_(scale * update)
                continue
            buf = buffers.setdefault(id(p), torch.zeros_like(p))
            buf.mul_(group["momentum"]).add_(scale * update)
            p.sub_(scale * update + group["momentum"] * buf if group["nesterov"] else buf)


@pytest.mark.parametrize(("momentum", "nesterov", "weight_decay"), [(0.9, False, 1.5e-6), (0.9, True, 1e-2),
                                                                    (0.0, False, 1e-2)])
def test_lars_equals_a_loop_over_parameters(momentum: float, nesterov: bool, weight_decay: float) -> None:
    torch.manual_seed(0)
    model = tiny_cnn().double()  # float64: the comparison sees the algorithm, not float32's rounding order
    with torch.no_grad():
        model.conv.weight[0].zero_()  # a zero parameter row is fine; a zero tensor takes trust 1
        model.fc.bias.zero_()
    reference, initial = copy.deepcopy(model), copy.deepcopy(model)
    groups = lars_param_groups(model, weight_decay)
    opt = LARS(groups, lr=0.3, momentum=momentum, nesterov=nesterov)
    reference_groups = [{**g, "params": list(g2["params"])} for g, g2 in zip(opt.param_groups,
                                                                              lars_param_groups(reference, weight_decay))]
    buffers: dict[int, torch.Tensor] = {}
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    for _ in range(4):
        for net in (model, reference):
            net.zero_grad()
            net(x).square().mean().backward()
        model.bn.weight.grad.zero_()  # a zero gradient takes trust 1 too
        reference.bn.weight.grad.zero_()
        opt.step()
        for group in reference_groups:
            _reference_lars_step(group["params"], buffers, group)
    # The steps themselves agree (the weights move by about 1e-3 of their size, so compare the moves).
    for (name, p), q, start in zip(model.named_parameters(), reference.parameters(), initial.parameters()):
        torch.testing.assert_close(p - start, q - start, rtol=1e-7, atol=1e-12, msg=name)
        # Only the zero-gradient one stood still. conv.bias may stand still or not: the batch norm after the conv
        # cancels any constant, so its gradient is zero but for rounding, which differs from CPU to CPU.
        if name != "conv.bias":
            assert torch.equal(p, start) == (name == "bn.weight"), name


def test_lars_steps_parameters_of_several_dtypes() -> None:
    low, high = _param([3.0, 4.0]).float(), _param([3.0, 4.0])
    low, high = nn.Parameter(low.detach()), nn.Parameter(high.detach())
    low.grad, high.grad = torch.tensor([0.6, 0.8]), torch.tensor([0.6, 0.8], dtype=torch.float64)
    LARS([low, high], lr=1.0, momentum=0.0, weight_decay=0.0, trust_coefficient=0.1, eps=0.0).step()
    torch.testing.assert_close(low.detach().double(), high.detach())
    assert low.dtype == torch.float32


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_is_fused_on_cpu_and_cuda_unless_told_otherwise(name: str) -> None:
    model = tiny_cnn()
    assert build_optimizer(model, name, 1e-3).defaults["fused"] is True
    assert build_optimizer(model, name, 1e-3, foreach=False).defaults["fused"] is None
    assert build_optimizer(model, name, 1e-3, fused=False).defaults["fused"] is False
    assert build_optimizer(model.double(), name, 1e-3).defaults["fused"] is True
    integer = [nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)]
    assert build_optimizer(integer, name, 1e-3).defaults["fused"] is None
    groups = [{"params": (p for p in model.parameters())}]  # a generator: still all there after the check
    assert len(build_optimizer(groups, name, 1e-3).param_groups[0]["params"]) == len(list(model.parameters()))
    if torch.cuda.is_available():
        assert build_optimizer(model, name, 1e-3, device="cuda").defaults["fused"] is True
        assert build_optimizer(model.cuda(), name, 1e-3).defaults["fused"] is True
