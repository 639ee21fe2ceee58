"""The runner's salr-* methods with variant="paper"/"released": the plain loop, epochs and eval mode, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from basinscope.checkpoint import load_weights_only
from basinscope.cli import main
from basinscope.optim import train
from basinscope.optim.batches import save_checkpoint

from .conftest import tiny_bn_net
from .test_cli import DATA, MODEL
from .test_optim_runner import _data, _Kill, _killer
from .test_optim_salr_variants import CASES, EPOCH, STEPS, _batches, _reference_run

RUNNER_CASES = [(n, c) for n, c in CASES if c["opt"] == "sgd" and n != "paper-sgd-walk-kept"]


@pytest.mark.parametrize("case", [c for _, c in RUNNER_CASES], ids=[n for n, _ in RUNNER_CASES])
def test_runner_equals_the_plain_loop(case):
    """A list of 4 batches is one epoch: the runner puts the model back in train mode at each epoch start."""
    batches = _batches()
    ours, ref = tiny_bn_net(seed=3, dropout=0.3), tiny_bn_net(seed=3, dropout=0.3)
    opts = dict(case)
    opts.pop("opt")
    probe = opts.pop("probe", None) or {}
    per_probe = probe.get("n_descent", 5) + probe.get("n_ascent", 5)
    res = train("salr-sgd", ours, batches, budget=STEPS + (STEPS // 2) * per_probe, seed=11, lr=0.2, **opts, **probe)
    assert res.iterations == STEPS
    torch.manual_seed(11)
    used = _reference_run(ref, batches, lr=0.2, **case)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)
    np.testing.assert_allclose(res.history["lr"].numpy(), used, rtol=1e-10, atol=0)


def test_probe_eval_mode_lasts_until_the_next_epoch():
    """40 examples in batches of 8: 5 per epoch. The probe (even iterations) leaves eval mode; the model is back
    in train mode at every epoch start, so after an odd epoch-start iteration (no probe) it is in train mode."""
    x, y = _data()
    seen = []
    model = tiny_bn_net(dropout=0.2)
    train(
        "salr-sgd",
        model,
        (x, y),
        budget=23 * 1 + 12 * 10,
        batch_size=8,
        variant="released",
        probe_eval_mode=True,
        callback=lambda it, info: seen.append(model.training),
        progress=False,
    )
    assert len(seen) == 23
    assert [i for i, t in enumerate(seen) if t] == [5, 15]
    assert model.training  # the runner restores the caller's mode at the end
    seen.clear()
    train(
        "salr-sgd",
        model,
        (x, y),
        budget=40,
        batch_size=8,
        variant="released",
        progress=False,
        callback=lambda *a: seen.append(model.training),
    )
    assert all(seen)  # the default restores the mode after every probe


RESUME = [
    ("paper", dict(n_descent=2, n_ascent=2, gamma=0.01)),
    ("paper-walk-kept-eval-mode", dict(n_descent=2, n_ascent=2, gamma=0.01, restore_walk=False, probe_eval_mode=True)),
    ("released", dict(variant="released", n_descent=2, n_ascent=2)),
    ("released-eval-mode", dict(variant="released", n_descent=2, n_ascent=2, probe_eval_mode=True)),
    ("released-adam-undone", dict(variant="released", n_descent=2, n_ascent=2, restore_walk=True, method="salr-adam")),
]


@pytest.mark.parametrize("opts", [o for _, o in RESUME], ids=[n for n, _ in RESUME])
def test_resume_is_bit_identical(tmp_path, opts):
    """Killed after a checkpoint taken mid-epoch (iteration 8 of 5-batch epochs: the model was in eval mode
    with probe_eval_mode), resumed: weights, buffers and history equal the uninterrupted run's."""
    opts = dict(opts)
    method = opts.pop("method", "salr-sgd")
    x, y = _data()
    args = dict(budget=100, batch_size=8, progress=False, seed=3, **opts)
    full = tiny_bn_net(dropout=0.2)
    ref = train(method, full, (x, y), **args)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):
        train(
            method, tiny_bn_net(dropout=0.2), (x, y), checkpoint=ckpt, checkpoint_every=8, callback=_killer(11), **args
        )
    if opts.get("probe_eval_mode"):
        assert load_weights_only(ckpt, what="checkpoint")["training"] is False
    torch.manual_seed(12345)
    fresh = tiny_bn_net(seed=9, dropout=0.2)
    res = train(method, fresh, (x, y), checkpoint=ckpt, **args)
    for (n, a), b in zip(full.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), n
    assert res.iterations == ref.iterations and res.grad_calls == ref.grad_calls
    for k in ref.history:
        assert torch.allclose(ref.history[k], res.history[k], equal_nan=True, rtol=0, atol=0), k


def test_checkpoint_from_before_the_variants_resumes(tmp_path):
    """Settings written without the variant keys are the paper variant's: the run resumes from them."""
    x, y = _data()
    args = dict(budget=60, batch_size=8, progress=False, seed=3, n_descent=1, n_ascent=1)
    ref = train("salr-sgd", tiny_bn_net(), (x, y), **args)
    ckpt = tmp_path / "old.pt"
    with pytest.raises(_Kill):
        train("salr-sgd", tiny_bn_net(), (x, y), checkpoint=ckpt, checkpoint_every=4, callback=_killer(6), **args)
    state = load_weights_only(ckpt, what="checkpoint")
    for key in ("variant", "walk_lr", "walk_clamp", "band", "restore_walk", "probe_eval_mode"):
        del state["settings"][key]
    for key in ("training", "mode_epoch"):
        del state[key]
    del state["stream"]["epoch"]
    del state["optimizer"]["variant"]
    save_checkpoint(ckpt, state)
    model = tiny_bn_net(seed=9)
    res = train("salr-sgd", model, (x, y), checkpoint=ckpt, **args)
    assert res.iterations == ref.iterations
    assert torch.equal(res.history["lr"], ref.history["lr"])


def test_runner_settings_show_the_variants_values():
    x, y = _data()
    res = train("salr-sgd", tiny_bn_net(), (x, y), budget=30, batch_size=8, progress=False, variant="released")
    s = res.settings
    assert (s["walk_lr"], s["walk_clamp"], s["band"], s["max_ratio"], s["min_ratio"]) == (
        1e-3,
        5e-4,
        (49.0, 51.0),
        5.0,
        -math.inf,
    )
    assert s["restore_walk"] is False and s["gamma"] is None and s["normalize"] is None and s["c"] == 2
    paper = train("salr-sgd", tiny_bn_net(), (x, y), budget=30, batch_size=8, progress=False).settings
    assert (paper["gamma"], paper["normalize"], paper["restore_walk"], paper["walk_lr"]) == (
        0.005,
        "per_example",
        True,
        None,
    )


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        (dict(variant="released", gamma=0.01), r"^gamma: expected None with variant='released'"),
        (dict(walk_clamp=1e-3), r"^walk_clamp: expected None with variant='paper'"),
        (dict(variant="sam"), r"^variant: expected one of 'paper', 'released', got 'sam'$"),
        (dict(variant="released", band=(10, 20)), r"^band: expected two percentiles"),
    ],
    ids=["gamma-released", "clamp-paper", "variant", "band"],
)
def test_runner_rejects_bad_variant_options(opts, match):
    with pytest.raises(ValueError, match=match):
        train("salr-sgd", tiny_bn_net(), _data(), budget=20, batch_size=8, progress=False, **opts)


def test_cli_variant_released_flows_through_opt(capsys, tmp_path):
    cli = ["--model", MODEL, "--data", DATA, "--budget", "30", "--batch-size", "16", "--no-progress"]
    code = main(
        [
            "train",
            "salr-sgd",
            *cli,
            "--out",
            str(tmp_path),
            "--json",
            "--opt",
            "variant=released,n_descent=1,n_ascent=1",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    settings = json.loads(out)["settings"]
    assert settings["variant"] == "released" and settings["walk_clamp"] == 5e-4 and settings["max_ratio"] == 5.0
    assert EPOCH == 4  # the shared fixture's epoch length the plain-loop cases above assume
