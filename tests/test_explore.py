"""The explorer without a browser: widgets driven from Python change what is drawn, the
interpolations behave as their docstrings say, and the shipped generators load safely and
draw what they are asked for.

The class of a generated digit is judged by the metrics' MNIST classifier
(`metrics.classify`, about 98.5% right on held-out real digits).
"""

import io
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import assert_one_sentence
from gan_helpers import GanError, checkpoint, data, explore, metrics, models, recipes, toy
from gan_helpers.checkpoint import load_generator
from gan_helpers.explore import LatentExplorer
from gan_helpers.models import generate
from gan_helpers.train import Trainer

SHIPPED = ("dcgan", "cgan", "infogan")

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def dcgan():
    return load_generator("dcgan")


@pytest.fixture(scope="module")
def cgan():
    return load_generator("cgan")


def shown_digit(explorer) -> torch.Tensor:
    """The 28x28 digit the explorer's widget shows, decoded from its PNG bytes, in [-1, 1]."""
    from PIL import Image

    screen = torch.from_numpy(np.array(Image.open(io.BytesIO(explorer.image.value))))
    pixels = screen[:: explorer.scale, :: explorer.scale].float()  # undo the scaling up
    m = (len(pixels) - 28) // 2  # a grid border, if any
    return (pixels[m : m + 28, m : m + 28] / 127.5 - 1)[None, None]


# --- the sliders ---------------------------------------------------------------------------


def test_moving_a_slider_changes_the_picture_and_only_its_coordinate(dcgan):
    ex = LatentExplorer(dcgan, n_sliders=3, seed=0)
    before, z_before = ex.image.value, ex.z.clone()
    slider = ex.sliders[1]
    slider.value = 2.0 if slider.value < 0 else -2.0
    assert ex.image.value != before
    changed = (ex.z != z_before).nonzero().flatten().tolist()
    assert changed == [ex.dims.value[1]] and ex.z[changed[0]] == slider.value
    assert ex.render_ms > 0 and "ms" in ex.status.value


def test_seed_box_and_button_draw_a_new_z(dcgan):
    ex = LatentExplorer(dcgan, seed=3)
    first = ex.image.value
    ex.new_z.click()
    assert ex.seed.value == 4 and ex.image.value != first
    ex.seed.value = 3  # the same seed gives the same picture back
    assert ex.image.value == first


def test_dimension_picker_rebinds_the_sliders(dcgan):
    ex = LatentExplorer(dcgan, n_sliders=3, seed=0)
    ex.dims.value = (10, 20)
    assert [s.description for s in ex.sliders] == ["z[10]", "z[20]", "-"]
    assert ex.sliders[2].disabled and not ex.sliders[0].disabled
    assert ex.sliders[0].value == pytest.approx(float(ex.z[10].clamp(-3, 3)))
    before = ex.image.value
    ex.sliders[0].value = 2.5
    assert ex.z[10] == 2.5 and ex.image.value != before


def test_the_widget_shows_what_the_generator_draws(dcgan):
    ex = LatentExplorer(dcgan, seed=0)
    expected = models.crop_to_28(generate(dcgan, z=ex.z[None]))  # the widget shows 28x28
    assert (shown_digit(ex) - expected).abs().max() < 2 / 255 + 1e-6  # PNG rounding only


# --- the digit dropdown of a conditional generator ----------------------------------------


def test_digit_dropdown_changes_the_class_drawn(cgan):
    """For ten seeds, the picture the widget shows after choosing digit k is judged a k.
    A dropdown that changed nothing would score about 10%."""
    ex = LatentExplorer(cgan, seed=0)
    shown = []
    for seed in range(10):
        ex.seed.value = seed
        for k in range(10):
            ex.digit.value = k
            shown.append(shown_digit(ex))
    judged = metrics.classify(torch.cat(shown)).view(10, 10)
    right = (judged == torch.arange(10)).float().mean()
    assert right >= 0.75, f"judged digits, one row per seed, asked 0-9:\n{judged}"


def test_unconditional_generator_has_no_dropdown(dcgan):
    assert LatentExplorer(dcgan).digit is None


def test_a_generator_of_points_is_refused_in_one_sentence():
    with pytest.raises(GanError) as e:
        LatentExplorer(toy.ToyGenerator())
    assert_one_sentence(str(e.value))


def test_sample_command_draws_sevens_from_the_shipped_cgan(tmp_path):
    """The issue's own acceptance command, through the real command line."""
    out = tmp_path / "x.pt"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gan_helpers",
            "sample",
            "cgan",
            "--label",
            "7",
            "--n",
            "100",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    x = torch.load(out, weights_only=True)
    assert x.shape == (100, 1, 32, 32)  # as drawn; the classifier crops to 28x28
    sevens = (metrics.classify(x) == 7).float().mean()
    assert sevens >= 0.9, f"the classifier calls only {sevens:.0%} of the samples a 7"


# --- walks and style ---------------------------------------------------------------


def test_latent_walk_shapes_and_labels(dcgan, cgan):
    z = torch.randn(64)
    walk = explore.latent_walk(dcgan, z, dims=[0, 5], span=2.0, steps=4)
    assert walk.shape == (8, 1, 32, 32)
    row = z.repeat(4, 1)
    row[:, 5] = torch.linspace(-2.0, 2.0, 4)
    assert torch.allclose(walk[4:], generate(dcgan, row), atol=1e-6)  # row 1 drives z[5]
    assert explore.latent_walk(cgan, z, dims=[0], steps=3, label=3).shape == (3, 1, 32, 32)
    with pytest.raises(GanError, match="pass label="):
        explore.latent_walk(cgan, z, dims=[0])


def test_style_measures_slant_and_ink():
    upright = -torch.ones(1, 1, 28, 28)
    upright[..., 4:24, 13:15] = 1  # a vertical bar
    leaning = -torch.ones(1, 1, 28, 28)
    for row in range(4, 24):  # the bar leaning right
        col = 14 + (14 - row) // 2
        leaning[..., row, col : col + 2] = 1
    s_up, s_lean = explore.style(upright), explore.style(leaning)
    assert abs(s_up["slant"].item()) < 1e-6 and s_lean["slant"].item() > 0.3
    assert s_up["ink"].item() == pytest.approx(40 / 784)


# --- shipped weights: safe to load, small, with their provenance ----------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_are_small_and_say_where_they_came_from(name):
    path = checkpoint.WEIGHTS / f"{name}_generator.pt"
    assert path.stat().st_size < 5e6
    p = load_generator(name).provenance
    assert p["command"] == f"OMP_NUM_THREADS=1 python tools/ship.py {name}"
    assert p["trains"].startswith(f"python -m gan_helpers train {name} ")
    assert f"--steps {p['steps']} " in p["trains"] and p["steps"] >= recipes.STEPS[name]
    assert "mnist" in p["data"] and p["date"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_were_trained_with_the_current_recipe(name):
    """recipes.py may be tuned after the weights were made. A new width fails to load; a new
    learning rate or batch size would load silently, so it is caught here."""
    tiny = data.Images(torch.zeros(128, 1, 32, 32), torch.arange(128) % 10, "tiny")
    now = Trainer(images=tiny, **recipes.get(name)()).settings
    then = load_generator(name).provenance["settings"]
    changed = {
        k: (then.get(k), v)
        for k, v in now.items()
        if then.get(k) != v and k not in ("data", "smoke")  # the tests' data, in smoke mode
    }
    assert not changed, (
        f"recipes.py changed {name} since its shipped weights were trained "
        f"(trained, now): {changed}; make them again with "
        f"`OMP_NUM_THREADS=1 python tools/ship.py {name}`"
    )


def test_load_generator_uses_weights_only(monkeypatch):
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real_load(*a, **kw))
    load_generator("dcgan")
    assert calls and all(kw.get("weights_only") is True for kw in calls)


def test_a_file_holding_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "model": "dcgan", "G": {}, "x": GanError("hi")}, path)
    with pytest.raises(GanError, match="refused unopened"):
        load_generator(path)


def test_weights_from_another_recipe_get_a_clear_error(monkeypatch):
    """What a user meets when recipes.py changed the width after the weights were made."""
    narrower = lambda seed=0: {**recipes.dcgan(seed), "G": models.DCGANGenerator(hidden=8)}
    monkeypatch.setitem(recipes.RECIPES, "dcgan", narrower)
    again = "train it again with `OMP_NUM_THREADS=1 python tools/ship.py dcgan`"
    with pytest.raises(GanError, match=f"recipe changed since it was trained; {again}"):
        load_generator("dcgan")


def test_a_training_checkpoint_loads_as_its_ema_generator(tmp_path):
    """A run's samples come from its EMA copy, so a generator loaded from the run is that."""
    t = Trainer(images=data.load(size=32), **{**recipes.cgan(seed=0), "ema": 0.9})
    t.train(3)
    t.save(tmp_path / "checkpoint.pt")
    G = load_generator(tmp_path / "checkpoint.pt")
    z, y = torch.randn(6, 64), torch.arange(6)
    assert torch.equal(generate(G, z, y), t.sample(z=z, labels=y))
    assert not torch.equal(generate(G, z, y), t.sample(z=z, labels=y, ema=False))


def test_a_file_from_another_model_is_refused_in_one_sentence():
    """The classifier's weights are a torch file, but no generator."""
    with pytest.raises(GanError, match="is a PyTorch file but not a checkpoint of this") as e:
        load_generator(metrics.WEIGHTS)
    assert_one_sentence(str(e.value))


def test_a_missing_shipped_file_says_how_to_make_it(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint, "WEIGHTS", tmp_path)
    with pytest.raises(GanError, match="python tools/ship.py dcgan"):
        load_generator("dcgan")


def test_the_code_dropdown_of_an_infogan_generator_sets_its_category():
    torch.manual_seed(0)
    ex = LatentExplorer(models.InfoGenerator(), seed=0)
    assert ex.digit.description == "code" and ex._driven() == [10, 11, 12, 13, 14, 15]
    pictures = set()
    for k in range(10):
        ex.digit.value = k
        assert int(ex.z[:10].argmax()) == k
        pictures.add(ex.image.value)
    assert len(pictures) == 10


# --- chapter 00's steerable toy ------------------------------------------------------------


def test_the_playground_trains_when_it_ticks_and_redraws(one_thread):
    from gan_helpers.toy import ToyPlayground

    toy = ToyPlayground(steps_per_frame=3)
    first, weights = toy.image.value, [p.clone() for p in toy.trainer.G.parameters()]
    toy.play.value += 1  # what a tick of the browser's Play widget does
    assert toy.trainer.step == 3 and toy.image.value != first
    assert not all(torch.equal(a, b) for a, b in zip(weights, toy.trainer.G.parameters()))
    assert toy.status.value.startswith("step 3 ·")


def test_a_zero_learning_rate_freezes_g_while_d_learns(one_thread):
    from gan_helpers.toy import ToyPlayground

    toy = ToyPlayground(steps_per_frame=2)
    toy.lr_g.value = 0.0
    g, d = ([p.clone() for p in m.parameters()] for m in (toy.trainer.G, toy.trainer.D))
    for _ in range(3):
        toy.one_step.click()
    assert all(torch.equal(a, b) for a, b in zip(g, toy.trainer.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d, toy.trainer.D.parameters()))
    toy.lr_g.value = 1e-3  # and it moves again
    toy.one_step.click()
    assert not all(torch.equal(a, b) for a, b in zip(g, toy.trainer.G.parameters()))


def test_the_game_noise_and_modes_controls_start_a_fresh_run(one_thread):
    from gan_helpers import losses
    from gan_helpers.toy import ToyPlayground

    toy = ToyPlayground(steps_per_frame=2)
    toy.one_step.click()
    toy.loss.value = "WGAN-GP"
    assert isinstance(toy.trainer.loss, losses.WassersteinGP) and toy.trainer.n_critic == 5
    assert toy.trainer.step == 0
    toy.z_dim.value = 16
    assert toy.trainer.G.z_dim == 16
    toy.modes.value = 12
    assert int(toy.ring.y.max()) + 1 == 12 and "/12 modes" in toy.status.value


# --- InfoGAN's codes ------------------------------------------------------------------------


def test_matched_purity_finds_the_best_one_to_one_matching():
    codes = torch.arange(10).repeat_interleave(4)
    shifted = (codes + 3) % 10  # every code means one digit, under another name
    assert explore.matched_purity(codes, shifted) == (1.0, [(k + 3) % 10 for k in range(10)])
    assert explore.matched_purity(codes, torch.zeros(40, dtype=torch.long))[0] == 0.1
    half = shifted.clone()
    half[::2] = 0  # half of each code's samples are 0s: only one code may claim the digit 0
    assert explore.matched_purity(codes, half)[0] == pytest.approx((20 + 2) / 40)


def test_the_shipped_infogan_code_purity_through_the_command_line(tmp_path):
    """Ten runs of the real command line, one per code; the classifier judges the digits."""
    digits = []
    for code in range(10):
        out = tmp_path / f"code{code}.pt"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "gan_helpers",
                "sample",
                "infogan",
                "--code",
                str(code),
                "--n",
                "100",
                "--seed",
                str(code),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        digits.append(metrics.classify(torch.load(out, weights_only=True)))
    codes = torch.arange(10).repeat_interleave(100)
    purity, _ = explore.matched_purity(codes, torch.cat(digits))
    print(f"the shipped InfoGAN's code purity through the command line: {purity:.0%}")
    assert purity >= 0.85  # chance is 10%; tools/ship.py trains it past the chapter


def test_code_needs_an_infogan_model(tmp_path, capsys):
    from gan_helpers.__main__ import main

    assert (
        main(["sample", "dcgan", "--n", "2", "--code", "3", "--out", str(tmp_path / "x.pt")]) == 2
    )
    assert "--code needs an InfoGAN model" in capsys.readouterr().err
