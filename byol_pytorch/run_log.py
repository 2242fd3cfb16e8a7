"""What a training run shows and records as it goes: the progress bar, ``metrics.jsonl`` and trackers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from .health import CollapseMonitor, check_loss_finite
from .metrics import append_metrics

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .config import TrainerConfig
    from .model import BYOLOutput


class RunLogger:
    """Accumulates per-step figures on the device and reads them back only when logging.

    Reading a tensor's value forces the host to wait for the device, so the
    step itself never does it; the loss and the collapse monitor are summed on
    the device and averaged over processes every ``log_every`` steps.

    Args:
        accelerator: the run's accelerator (processes, device, trackers).
        config: the run's options (``num_train_steps``, ``progress``, ``log_with``).
        output_dir: the run folder; ``metrics.jsonl`` is appended there (main process).
        representation_dim: D, for the collapse monitor.
        history: every record written is also appended here, on every process.
        start_step: the step the run starts (or resumes) from.
    """

    def __init__(self, accelerator: Accelerator, config: TrainerConfig, output_dir: Path, representation_dim: int,
                 history: list[dict[str, Any]], start_step: int) -> None:
        self.acc, self.config, self.output_dir, self.history = accelerator, config, output_dir, history
        self.main = accelerator.is_main_process
        if self.main:
            output_dir.mkdir(parents=True, exist_ok=True)
            if config.log_with:
                accelerator.init_trackers("byol", config={k: v for k, v in config.to_dict().items()
                                                          if isinstance(v, (int, float, str, bool))})
        self.bar = tqdm(total=config.num_train_steps, initial=start_step, disable=not (self.main and config.progress),
                        dynamic_ncols=True, desc="BYOL")
        self.collapse = CollapseMonitor(representation_dim)
        self.total_wait = 0.0
        self._reset()

    def _reset(self) -> None:
        self.loss_sum: torch.Tensor | float = 0.0
        self.std_sum: torch.Tensor | float = 0.0
        self.finite: torch.Tensor | bool = True
        self.count = 0
        self.images = 0
        self.waited = 0.0
        self.started = time.perf_counter()

    def record(self, out: BYOLOutput, batch: int) -> None:
        """Adds one forward pass of ``batch`` images per process (every accumulated batch counts)."""
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
        if self.count:
            check_loss_finite(self.finite, step, self.count, self.output_dir, self.acc)

    def log(self, step: int, lr: float, tau: float) -> None:
        """Writes the averages since the last line (over batches and processes) and advances the bar."""
        if self.count == 0:
            return
        self.check_finite(step)
        device = self.acc.device
        figures = torch.stack([torch.as_tensor(self.loss_sum, device=device).float(),
                               torch.as_tensor(self.std_sum, device=device).float()]) / self.count
        loss, rep_std = self.acc.reduce(figures, "mean").tolist()
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        record = {"step": step, "loss": loss, "representation_std": rep_std, "lr": lr, "tau": tau,
                  "images": self.images, "images_per_second": self.images / elapsed, "data_wait_s": self.waited,
                  "data_wait_fraction": min(1.0, self.waited / elapsed), "time": time.time()}
        self._write(record)
        if self.main:
            self.collapse.check(step, rep_std)
        self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{record['images_per_second']:.0f}", lr=f"{lr:.2e}",
                             tau=f"{tau:.4f}", refresh=False)
        self.bar.update(step - self.bar.n)
        self._reset()

    def log_knn(self, step: int, accuracy: float) -> None:
        """The kNN monitor's top-1 on the evaluation set."""
        self._write({"step": step, "knn_top1": accuracy, "time": time.time()})
        if self.main:
            self.bar.write(f"step {step}: kNN top-1 {accuracy:.4f}")

    def log_probe(self, step: int, accuracy: float, loss: float) -> None:
        """The online linear probe's top-1 on the evaluation set and its last training loss."""
        self._write({"step": step, "probe_top1": accuracy, "probe_loss": loss, "time": time.time()})
        if self.main:
            self.bar.write(f"step {step}: online linear probe top-1 {accuracy:.4f}")

    def _write(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if not self.main:
            return
        append_metrics(self.output_dir, record)
        if self.config.log_with:
            self.acc.log({k: v for k, v in record.items() if k not in ("step", "time")}, step=record["step"])

    def close(self, step: int) -> None:
        """Brings the bar to ``step`` and closes it."""
        self.bar.update(step - self.bar.n)
        self.bar.close()
