"""What the machine offers a run: bf16 only where the GPU computes it natively, loader workers."""

from __future__ import annotations

import pytest
import torch

from byol_pytorch import devices


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, *, emulates: bool, capability: tuple[int, int],
              knows_emulation: bool = True) -> None:
    """A CUDA device that emulates bf16 (V100, T4) or computes it (A100 and later), as torch reports it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    if knows_emulation:  # torch 2.4 and later
        def is_bf16_supported(including_emulation: bool = True) -> bool:
            return including_emulation or not emulates
    else:  # older torch: emulation counts as support
        def is_bf16_supported() -> bool:  # type: ignore[misc]
            return True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


@pytest.mark.parametrize("knows_emulation", [True, False])
def test_auto_precision_is_no_on_a_gpu_that_only_emulates_bf16(monkeypatch: pytest.MonkeyPatch,
                                                               knows_emulation: bool) -> None:
    _fake_gpu(monkeypatch, emulates=True, capability=(7, 0), knows_emulation=knows_emulation)
    assert torch.cuda.is_bf16_supported()  # what the old check believed
    assert not devices.cuda_computes_bf16()
    assert devices.resolve_mixed_precision("auto", "cuda") == "no"
    assert devices.resolve_mixed_precision("bf16", "cuda") == "bf16"  # asked for: given


@pytest.mark.parametrize("knows_emulation", [True, False])
def test_auto_precision_is_bf16_on_a_gpu_that_computes_it(monkeypatch: pytest.MonkeyPatch,
                                                          knows_emulation: bool) -> None:
    _fake_gpu(monkeypatch, emulates=False, capability=(8, 0), knows_emulation=knows_emulation)
    assert devices.cuda_computes_bf16()
    assert devices.resolve_mixed_precision("auto", "cuda") == "bf16"


def test_no_gpu_computes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not devices.cuda_computes_bf16()


@pytest.mark.parametrize(("device", "processes", "cores", "expected"),
                         [("cpu", 1, 2, 0), ("cpu", 1, 16, 4), ("cuda", 1, 16, 15), ("cuda", 8, 16, 1),
                          ("cuda", 1, 64, 16)])
def test_default_num_workers(device: str, processes: int, cores: int, expected: int) -> None:
    assert devices.default_num_workers(device, processes, cores) == expected
