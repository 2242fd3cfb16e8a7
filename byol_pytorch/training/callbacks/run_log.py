"""What a training run shows and records as it goes: the progress bar, ``metrics.jsonl`` and trackers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...data import ImageFolderDataset
from ...metrics import append_metrics
from .base import TrainerCallback, TrainerControl, TrainerState


class RunLog(TrainerCallback):
    """Averages the loss and the representation's spread over each ``log_every`` steps and writes them.

    Reading a tensor's value makes the host wait for the device, so the
    figures are summed on the device batch by batch and read (averaged over
    processes) only on the steps that log. Every record logged, this one's and
    the monitors', goes to ``metrics.jsonl`` and the trackers (main process).

    Args:
        output_dir: the run folder.
        log_with: the Accelerate tracker(s), or ``None``.
        progress: show a progress bar (main process).
        config: the options given to the trackers (plain values only).
    """

    def __init__(self, output_dir: Path, log_with: str | None = None, progress: bool = True,
                 config: dict[str, Any] | None = None) -> None:
        self.output_dir, self.log_with, self.progress = Path(output_dir), log_with, progress
        self.config = config or {}
        self.bar: Any = None
        self.main = True
        self._reset()

    def _reset(self) -> None:
        self.loss_sum: torch.Tensor | float = 0.0
        self.std_sum: torch.Tensor | float = 0.0
        self.count = self.images = 0
        self.waited = 0.0
        self.started = time.perf_counter()

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        acc = trainer.accelerator
        self.main = acc.is_main_process
        if self.main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.log_with:
                acc.init_trackers("byol", config={k: v for k, v in self.config.items()
                                                  if isinstance(v, (int, float, str, bool))})
        self.bar = tqdm(total=state.max_steps, initial=state.step, disable=not (self.main and self.progress),
                        dynamic_ncols=True, desc="BYOL")
        self._reset()

    def on_batch_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        out = kwargs["output"]
        self.loss_sum = self.loss_sum + out.loss.detach()
        self.std_sum = self.std_sum + out.representation_std
        self.count += 1
        self.images += state.batch_images * trainer.accelerator.num_processes
        self.waited += state.batch_wait_s

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not (control.should_log and self.count):
            return
        acc = trainer.accelerator
        figures = torch.stack([torch.as_tensor(self.loss_sum, device=acc.device).float(),
                               torch.as_tensor(self.std_sum, device=acc.device).float()]) / self.count
        loss, rep_std = acc.reduce(figures, "mean").tolist()
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        images_per_second = self.images / elapsed
        trainer.log({"step": state.step, "loss": loss, "representation_std": rep_std, "lr": state.lr,
                     "tau": state.tau, "images": self.images, "images_per_second": images_per_second,
                     "data_wait_s": self.waited, "data_wait_fraction": min(1.0, self.waited / elapsed),
                     "time": time.time()})
        self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_second:.0f}", lr=f"{state.lr:.2e}",
                             tau=f"{state.tau:.4f}", refresh=False)
        self.bar.update(state.step - self.bar.n)
        self._reset()

    def on_log(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        logs = kwargs["logs"]
        if not self.main:
            return
        append_metrics(self.output_dir, logs)
        if self.log_with:
            trainer.accelerator.log({k: v for k, v in logs.items() if k not in ("step", "time")}, step=logs["step"])
        if self.bar is not None and "knn_top1" in logs:
            self.bar.write(f"step {logs['step']}: kNN top-1 {logs['knn_top1']:.4f}")
        if self.bar is not None and "probe_top1" in logs:
            self.bar.write(f"step {logs['step']}: online linear probe top-1 {logs['probe_top1']:.4f}")

    def on_train_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.step - self.bar.n)
            self.bar.close()
            self.bar = None
        if state.step >= state.max_steps:
            note = skipped_files_note(trainer.data, trainer.dataset)
            if note:
                trainer.accelerator.print(note)


def skipped_files_note(data: Any, dataset: Any) -> str | None:
    """How many images of a dataset with a length could not be read, if any (a stream names each as met).

    A folder counts the files its loader workers met too; with several
    processes this is the main process's share of the data.
    """
    skipped, length = getattr(data.dataset, "skipped_count", 0), data.length
    if not skipped or length is None:
        return None
    noun = "image files" if isinstance(dataset, ImageFolderDataset) else "images"
    return (f"{skipped} of the {length} {noun} could not be read and were skipped (each named above when "
            f"first met); training used the other {length - skipped}")
