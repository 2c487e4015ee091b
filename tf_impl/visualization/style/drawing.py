"""Pictures of a texture synthesis or a style transfer next to its inputs."""

from __future__ import annotations

from ...result import Result


# -- pictures -----------------------------------------------------------------------------------
def draw_style_transfer(path, content, style, result, *, title: str = "") -> None:
    """content | style | result side by side (pixel-space images, (1, 3, H, W) or (3, H, W));
    ``result`` may be a :class:`~tf_impl.result.Result`."""
    from ...report import image_grid_figure

    image = result.image if isinstance(result, Result) else result
    image_grid_figure(path, [("content", content), ("style", style), ("result", image)],
                      title=title or "neural style transfer (Gatys et al. 2016)", size=3.2)


def draw_texture(path, source, synthesized, *, title: str = "") -> None:
    """texture source | synthesised texture side by side; ``synthesized`` may be a
    :class:`~tf_impl.result.Result`."""
    from ...report import image_grid_figure

    image = synthesized.image if isinstance(synthesized, Result) else synthesized
    image_grid_figure(path, [("source", source), ("synthesized", image)],
                      title=title or "texture synthesis (Gatys et al. 2015)", size=3.2)
