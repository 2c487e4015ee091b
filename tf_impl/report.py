"""Files a run leaves behind: PNGs, side-by-side figures, loss histories (CSV and plot), JSON.

Every file is written to a temporary name and renamed into place, so an interrupted or failed
run never leaves a half-written file and never spoils one written before. :class:`OutputDir`
checks up front that the folder can be written, with a clear message when it cannot.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class OutputError(OSError):
    """The output folder cannot be used; the message says why and what to do."""


def missing_folders(path) -> list[Path]:
    """The folders on the way to ``path`` (itself first) that do not exist yet."""
    missing, p = [], Path(path)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def remove_empty(folders) -> None:
    """Remove ``folders`` (innermost first, as :func:`missing_folders` lists them) while they
    are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def unwritable(path, err: OSError) -> OutputError:
    """The one-line error for an output folder that cannot be written."""
    return OutputError(f"cannot write to the output folder {path} ({err.strerror or err}); "
                       "choose another with --out (or fix its permissions)")


class OutputDir:
    """A folder for a run's files, checked for writing when created.

    Example:
        >>> out = OutputDir(tempfile.mkdtemp())
        >>> out.write_json("result.json", {"psnr": 30.0}).name
        'result.json'
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        # the folders this check creates are removed again: a run refused later (bad input)
        # leaves nothing behind; the first write makes them
        missing = missing_folders(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.path, prefix=".write-test-", delete=True)
            probe.close()
        except OSError as err:
            raise unwritable(self.path, err) from err
        finally:
            remove_empty(missing)

    @property
    def target(self) -> Path:
        """Where the files end up (this folder; a staged run's ``--out``, see
        :class:`tf_impl.run_folder.RunFolder`)."""
        return self.path

    def file(self, name: str) -> Path:
        return self.path / name

    def _atomic(self, name: str, write) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def write_png(self, name: str, pixels) -> Path:
        return self._atomic(name, lambda p: save_png(p, pixels))

    def write_json(self, name: str, obj) -> Path:
        return self._atomic(name, lambda p: Path(p).write_text(json.dumps(obj, indent=2)))

    def write_history_csv(self, name: str, histories: Mapping[str, Mapping[str, Sequence]]):
        return self._atomic(name, lambda p: history_csv(p, histories))

    def write_figure(self, name: str, draw) -> Path:
        """``draw(path)`` makes a matplotlib figure and saves it to ``path``."""
        return self._atomic(name, draw)

    def write_history(self, histories: Mapping[str, Mapping[str, Sequence]], title: str = "",
                      *, plotted: Mapping[str, Mapping[str, Sequence]] | None = None,
                      linear: bool = False) -> tuple[Path, Path]:
        """``history.csv`` (every term of every run, :func:`history_csv`) and ``history.png``.

        The plot shows ``plotted`` (default: ``histories``) on a log scale
        (:func:`history_figure`), or with ``linear=True`` the one run's terms on a linear scale
        (:func:`linear_history_figure`, for gradient ascent's negative scores).
        """
        shown = histories if plotted is None else plotted
        csv_path = self.write_history_csv("history.csv", histories)
        if linear:
            if len(shown) != 1:
                raise ValueError(f"a linear history plot shows one run; got {len(shown)}")
            (hist,) = shown.values()
            png = self.write_figure("history.png",
                                    lambda p: linear_history_figure(p, hist, title))
        else:
            png = self.write_figure("history.png",
                                    lambda p: history_figure(p, shown, title=title))
        return csv_path, png


def to_uint8(pixels) -> np.ndarray:
    """(H, W, 3) uint8 from a pixel-space image (3, H, W) / (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(pixels, np.float32)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"one image expected; got a batch of {arr.shape[0]}")
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) image; got shape {arr.shape}")
    arr = np.repeat(arr, 3, axis=0) if arr.shape[0] == 1 else arr
    return (np.clip(arr, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def save_png(path, pixels) -> None:
    from PIL import Image

    Image.fromarray(to_uint8(pixels)).save(path, format="PNG")


def history_csv(path, histories: Mapping[str, Mapping[str, Sequence]]) -> None:
    """One row per (run, step) with every loss term as a column."""
    columns: list[str] = []
    for hist in histories.values():
        columns += [k for k in hist if k not in columns]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "step", *columns])
        for run, hist in histories.items():
            n = max((len(v) for v in hist.values()), default=0)
            for step in range(n):
                w.writerow([run, step + 1] + [
                    f"{hist[c][step]:.8g}" if c in hist and step < len(hist[c]) else ""
                    for c in columns
                ])


def headless_pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def history_figure(path, histories: Mapping[str, Mapping[str, Sequence]], title: str = "") -> None:
    """Loss per step (log scale) for each run, and each run's terms, in one figure."""
    plt = headless_pyplot()
    n = len(histories)
    fig, axes = plt.subplots(1, n + (n > 1), figsize=(4.2 * (n + (n > 1)), 3.4), squeeze=False)
    axes = axes[0]
    for ax, (run, hist) in zip(axes, histories.items()):
        for key, values in hist.items():
            if key == "lr" or not values:
                continue
            vals = np.asarray(values, float)
            ax.plot(np.arange(1, len(vals) + 1), np.where(vals > 0, vals, np.nan), label=key,
                    lw=2 if key == "loss" else 1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(run, fontsize=9)
        ax.legend(fontsize=7)
    if n > 1:
        ax = axes[-1]
        for run, hist in histories.items():
            ax.plot(np.arange(1, len(hist["loss"]) + 1), hist["loss"], label=run)
        ax.set_yscale("log")
        ax.set_title("total loss", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def linear_history_figure(path, history: Mapping[str, Sequence], title: str = "") -> None:
    """Each term of one run per step on a linear scale, one panel per term (gradient ascent
    records negative scores, which the log-scale :func:`history_figure` cannot show)."""
    plt = headless_pyplot()
    keys = [k for k, v in history.items() if k != "lr" and v]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = np.asarray(history[key], float)
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.5)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def image_grid_figure(path, panels: Sequence[tuple[str, np.ndarray]], *, ncols: int | None = None,
                      title: str = "", size: float = 2.6) -> None:
    """Images side by side with a caption each (e.g. original, reconstructions + metrics)."""
    plt = headless_pyplot()
    n = len(panels)
    ncols = ncols or min(n, 5)
    nrows = -(-n // ncols)
    lines = max(1 + caption.count("\n") for caption, _ in panels)  # caption lines per row
    fig, axes = plt.subplots(nrows, ncols, figsize=(
        max(size * ncols, 4.0), (size + 0.15 * lines) * nrows + 0.4 * (1 + title.count("\n"))),
        squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (caption, pixels) in zip(axes.ravel(), panels):
        ax.imshow(to_uint8(pixels))
        ax.set_title(caption, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def caption(name: str, metrics: Mapping[str, float]) -> str:
    """``"conv3_1\\nPSNR 15.7 dB, LPIPS 0.41"`` from a metrics dict."""
    bits = []
    if "psnr" in metrics:
        bits.append(f"PSNR {metrics['psnr']:.1f} dB")
    if "ssim" in metrics:
        bits.append(f"SSIM {metrics['ssim']:.2f}")
    for k, v in metrics.items():
        if k.startswith("lpips"):
            bits.append(f"LPIPS {v:.3f}")
            break
    return name + ("\n" + ", ".join(bits) if bits else "")
