"""What a training run shows and records: progress bar, metrics file, trackers, health checks."""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from .errors import DiskFullError, NonFiniteLossError, is_disk_full

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .model import BYOLOutput
    from .trainer import BYOLTrainer

# Healthy l2-normalised representations have a per-dimension std near 1/sqrt(d).
COLLAPSE_FRACTION = 0.2


class RunLogger:
    """Accumulates per-step figures on the device and reads them back only when logging.

    Reading a tensor's value forces the host to wait for the device, so the
    step itself never does it; the loss and the collapse monitor are summed on
    the device and averaged over processes every ``log_every`` steps.
    """

    def __init__(self, trainer: BYOLTrainer, accelerator: Accelerator, start_step: int) -> None:
        self.trainer, self.acc = trainer, accelerator
        self.config = trainer.config
        self.main = accelerator.is_main_process
        self.metrics_path = trainer.output_dir / "metrics.jsonl"
        if self.main:
            trainer.output_dir.mkdir(parents=True, exist_ok=True)
            if self.config.log_with:
                accelerator.init_trackers("byol", config={k: v for k, v in self.config.to_dict().items()
                                                          if isinstance(v, (int, float, str, bool))})
        self.bar = tqdm(total=self.config.num_train_steps, initial=start_step, disable=not (self.main and
                        self.config.progress), dynamic_ncols=True, desc="BYOL")
        self.healthy_std = None
        self.collapse_warned = False
        self.total_wait = 0.0
        self._reset()
        self.first_bad_step: int | None = None

    def _reset(self) -> None:
        self.loss_sum: torch.Tensor | float = 0.0
        self.std_sum: torch.Tensor | float = 0.0
        self.finite: torch.Tensor | bool = True
        self.count = 0
        self.images = 0
        self.waited = 0.0
        self.started = time.perf_counter()

    def record(self, out: BYOLOutput, batch: int) -> None:
        loss = out.loss.detach()
        self.loss_sum = self.loss_sum + loss
        self.std_sum = self.std_sum + out.representation_std
        self.finite = torch.isfinite(loss) & self.finite
        self.count += 1
        self.images += batch * self.acc.num_processes

    def record_wait(self, seconds: float) -> None:
        """Adds the time the loop waited for its next batch (this process's)."""
        self.waited += seconds
        self.total_wait += seconds

    def check_finite(self, step: int) -> None:
        """Raises before a checkpoint could store weights trained on a NaN/inf loss."""
        if self.count == 0:
            return
        finite = self.acc.reduce(torch.as_tensor(self.finite, device=self.acc.device).float(), "min")
        if finite.item() < 1:
            raise NonFiniteLossError(
                f"the loss became NaN or infinite by step {step} (after step {step - self.count} was finite); "
                f"training stopped and the last good checkpoint in {self.trainer.output_dir} was kept. "
                "Lower the learning rate, use mixed_precision='bf16' or 'no', or set max_grad_norm"
            )

    def log(self, step: int, lr: float, tau: float) -> None:
        if self.count == 0:
            return
        self.check_finite(step)
        figures = torch.stack([torch.as_tensor(self.loss_sum, device=self.acc.device).float(),
                               torch.as_tensor(self.std_sum, device=self.acc.device).float()]) / self.count
        loss, rep_std = self.acc.reduce(figures, "mean").tolist()
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        record = {"step": step, "loss": loss, "representation_std": rep_std, "lr": lr, "tau": tau,
                  "images_per_second": self.images / elapsed, "data_wait_s": self.waited,
                  "data_wait_fraction": min(1.0, self.waited / elapsed), "time": time.time()}
        self._write(record)
        self._check_collapse(step, rep_std)
        self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{record['images_per_second']:.0f}", lr=f"{lr:.2e}",
                             tau=f"{tau:.4f}", refresh=False)
        self.bar.update(step - self.bar.n)
        self._reset()

    def log_knn(self, step: int, accuracy: float) -> None:
        self._write({"step": step, "knn_top1": accuracy, "time": time.time()})
        self.bar.write(f"step {step}: kNN top-1 {accuracy:.4f}") if self.main else None

    def log_probe(self, step: int, accuracy: float, loss: float) -> None:
        """The online linear probe's top-1 on the evaluation set and its last training loss."""
        self._write({"step": step, "probe_top1": accuracy, "probe_loss": loss, "time": time.time()})
        self.bar.write(f"step {step}: online linear probe top-1 {accuracy:.4f}") if self.main else None

    def _check_collapse(self, step: int, rep_std: float) -> None:
        if self.healthy_std is None:
            dim = self.acc.unwrap_model(self.trainer._model).representation_dim
            self.healthy_std = 1 / math.sqrt(dim)
        if rep_std < COLLAPSE_FRACTION * self.healthy_std and not self.collapse_warned and self.main:
            self.collapse_warned = True
            warnings.warn(
                f"representation collapse suspected at step {step}: the std of the l2-normalised "
                f"representations is {rep_std:.2e}, healthy is near {self.healthy_std:.2e} (1/sqrt(d)); "
                "lower the learning rate or check the augmentations"
            )

    def _write(self, record: dict[str, Any]) -> None:
        self.trainer.history.append(record)
        if not self.main:
            return
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as err:
            if is_disk_full(err):
                raise DiskFullError.writing(self.metrics_path) from err
            raise
        if self.config.log_with:
            self.acc.log({k: v for k, v in record.items() if k not in ("step", "time")}, step=record["step"])

    def close(self) -> None:
        self.bar.update(self.trainer.step - self.bar.n)
        self.bar.close()
