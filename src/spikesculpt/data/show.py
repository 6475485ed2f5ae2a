"""A picture of a dataset's samples (PNG), for ``spikesculpt show-data``.

One row per sample (the first sample of each class of the chosen split, then further ones until
``samples`` rows), labelled with its class:

- event frames ``[T, 2, H, W]``: one column per time bin; ON counts in orange, OFF counts in
  blue, brightness = count / the largest count of that sample (white where both are high);
- flat frames ``[T, F]`` (SHD): one raster per sample, channels against time bins;
- static images ``[C, H, W]``: the image (grey or RGB);
- static flat features ``[F]`` (``mnist1d``, ``npz`` vectors): the values as a line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spikesculpt.core.io import atomic_write

ON = np.array([1.0, 0.55, 0.0])
OFF = np.array([0.15, 0.55, 1.0])


def pick_samples(dataset, n: int) -> list[tuple[np.ndarray, int]]:
    """Up to ``n`` ``(sample, label)``: one per class first (in class order), then the rest."""
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        labels = tensors[1].numpy()
    elif hasattr(dataset, "targets"):      # lazy datasets: labels without reading samples
        labels = np.asarray(dataset.targets)
    else:
        labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    order = []
    for c in np.unique(labels):
        order.append(int(np.flatnonzero(labels == c)[0]))
    first = set(order)
    rest = [i for i in range(min(len(labels), n + len(order))) if i not in first]
    chosen = (order + rest)[:n]
    out = []
    for i in chosen:
        x, y = (tensors[0][i], tensors[1][i]) if tensors is not None else dataset[i]
        out.append((torch.as_tensor(x).numpy(), int(y)))
    return out


def event_rgb(frame: np.ndarray, scale: float) -> np.ndarray:
    """``[2, H, W]`` counts (OFF, ON) -> ``[H, W, 3]`` colours in [0, 1]."""
    off, on = frame[0] / scale, frame[1] / scale
    rgb = on[..., None] * ON + off[..., None] * OFF
    return np.clip(rgb, 0, 1)


SOFTWARE_TAG = "spikesculpt show-data"


def plot_samples(samples: list[tuple[np.ndarray, int]], info, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(samples)
    kind = info.kind
    flat = info.image_size is None
    cols = samples[0][0].shape[0] if (kind == "frames" and not flat) else 1
    cell = 1.25 if not flat else 3.2
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.2, cols * cell + 0.8), rows * 1.25 + 0.7),
                             squeeze=False)
    for r, (x, label) in enumerate(samples):
        if kind == "frames" and not flat:
            scale = max(float(x.max()), 1.0)
            for t in range(cols):
                frame = x[t]
                if frame.shape[0] == 2:
                    axes[r, t].imshow(event_rgb(frame, scale), interpolation="nearest")
                else:
                    axes[r, t].imshow(frame.sum(0) / scale, cmap="gray", vmin=0, vmax=1,
                                      interpolation="nearest")
                if r == 0:
                    axes[r, t].set_title(f"t{t}", fontsize=8)
        elif kind == "frames":
            axes[r, 0].imshow(x.reshape(x.shape[0], -1).T, aspect="auto", cmap="magma",
                              interpolation="nearest", origin="lower")
            axes[r, 0].set_xlabel("time bin", fontsize=7)
            axes[r, 0].set_ylabel("channel", fontsize=7)
        elif flat:  # flat features [F] (npz [N, F], mnist1d): the values as a line
            axes[r, 0].plot(x.reshape(-1), color="black", linewidth=1)
        else:
            img = x.transpose(1, 2, 0) if x.shape[0] == 3 else x[0]
            axes[r, 0].imshow(np.clip(img, 0, 1), cmap=None if x.shape[0] == 3 else "gray",
                              vmin=0, vmax=1, interpolation="nearest")
        axes[r, 0].text(-0.08, 0.5, f"class {label}", transform=axes[r, 0].transAxes,
                        rotation=90, ha="right", va="center", fontsize=8)
        for ax in axes[r]:
            if not (kind == "frames" and flat):
                ax.set_xticks([])
                ax.set_yticks([])
    legend = "  (orange: ON events, blue: OFF events)" if kind == "frames" and not flat else ""
    fig.suptitle(title + legend, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                               metadata={"Software": SOFTWARE_TAG}))
    plt.close(fig)
    return path


def written_by_show_data(path: Path) -> bool:
    """Whether ``path`` is a PNG that ``plot_samples`` wrote (its ``Software`` text chunk)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + SOFTWARE_TAG.encode() in head
