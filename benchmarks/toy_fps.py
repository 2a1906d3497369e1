"""How fast chapter 00's steerable toy draws: frames per second with training (what play
shows), and the drawing alone, on one thread.

    python benchmarks/toy_fps.py [--frames 200] [--save toy-fps]
"""

import argparse
import sys
import time

import torch
from common import hardware, save

from gan_helpers.toy import ToyPlayground


def frame_rate(toy, frames) -> float:
    """Frames per second over `frames` ticks, training and drawing, as play runs them."""
    start = time.perf_counter()
    for _ in range(frames):
        toy.tick()
    return frames / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--save", metavar="NAME")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    toy = ToyPlayground()
    frame_rate(toy, 10)  # warm-up
    rows = {}
    for loss in ("non-saturating", "WGAN-GP"):
        toy.loss.value = loss
        training = frame_rate(toy, args.frames)
        start = time.perf_counter()
        for _ in range(args.frames):
            toy.render()
        drawing = args.frames / (time.perf_counter() - start)
        rows[loss] = {
            "frames_per_s": training,
            "drawing_only_per_s": drawing,
            "steps_per_frame": toy.steps_per_frame,
        }
        print(
            f"{loss}: {training:.0f} frames/s with {toy.steps_per_frame} training steps "
            f"each, {drawing:.0f} frames/s drawing alone"
        )
    print(hardware())
    if args.save:
        save(args.save, {"frames": args.frames, "rows": rows}, "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
