"""The GIF of chapters 04 and 06: one frame per batch of images, in order, looping."""

import io

import pytest
import torch
from PIL import Image, ImageSequence

from gan_helpers import GanError, viz


def _frames():
    # three grids of 4 images: all black, all grey, all white
    return [torch.full((4, 1, 28, 28), value) for value in (-1.0, 0.0, 1.0)]


def test_gif_has_one_frame_per_batch_in_order(tmp_path):
    path = tmp_path / "sub" / "train.gif"
    gif = viz.gif(_frames(), [f"step {s}" for s in (0, 100, 200)], path, nrow=2, scale=1)
    assert path.read_bytes() == gif
    img = Image.open(io.BytesIO(gif))
    frames = [f.convert("L") for f in ImageSequence.Iterator(img)]
    assert len(frames) == 3
    assert img.info["loop"] == 0
    # the grid sits below a 14-pixel caption; sample a pixel inside the first image
    inside = [f.getpixel((10, 14 + 10)) for f in frames]
    assert inside[0] < 20 and 110 < inside[1] < 145 and inside[2] > 235
    # the captions differ between frames
    captions = [f.crop((0, 0, f.width, 14)).tobytes() for f in frames]
    assert len(set(captions)) == 3


def test_last_frame_is_held():
    gif = viz.gif(_frames(), ms_per_frame=100, hold_last=5)
    durations = [f.info["duration"] for f in ImageSequence.Iterator(Image.open(io.BytesIO(gif)))]
    assert durations == [100, 100, 500]


def test_no_frames_is_one_clear_error():
    with pytest.raises(GanError, match="snapshot_every"):
        viz.gif([])
