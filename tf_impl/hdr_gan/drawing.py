"""The HDR-GAN figure: per held-out photo, its exposures, each run's tonemapped estimate and
the tonemapped ground truth."""

from __future__ import annotations

from ..result import Result


def draw_hdr_gan(path, results: dict[str, Result] | Result, *, title: str = "") -> None:
    """One row per held-out photo: the K exposures | each run's tonemapped estimate (with its
    PSNR-mu) | the tonemapped ground truth."""
    from ..report import headless_pyplot, to_uint8

    if isinstance(results, Result):
        results = {"prediction": results}
    first = next(iter(results.values()))
    ldr, gt = first.extra["exposures"], first.original
    n, k = ldr.shape[:2]
    cols = k + len(results) + 1
    plt = headless_pyplot()
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 2.2 * n + 0.5), squeeze=False)
    times = first.config.get("exposures", [None] * k)
    for i in range(n):
        panels = [(f"LDR t={t:g}" if t else f"LDR {j + 1}", ldr[i, j]) for j, t in
                  enumerate(times)]
        for name, r in results.items():
            per = r.extra.get("psnr_mu_per_image", {}).get("after")
            cap = f"{name}\n{per[i]:.1f} dB" if per else name
            panels.append((cap, r.image[i]))
        panels.append(("ground truth", gt[i]))
        for ax, (cap, px) in zip(axes[i], panels):
            ax.imshow(to_uint8(px))
            ax.set_title(cap, fontsize=7)
            ax.axis("off")
    fig.suptitle(title or "HDR merge, mu-law tonemapped (mu = 5000)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
