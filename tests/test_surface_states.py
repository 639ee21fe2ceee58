"""Lines and planes through full state_dicts: BatchNorm buffers interpolated with the weights, checked against a
plain loop that builds each interpolated state_dict, loads it with ``load_state_dict`` and evaluates (float64)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.surface import line, plane, random_line

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _states(n: int = 3):
    """A BatchNorm model, its objective and ``n`` full state_dicts differing in weights *and* statistics."""
    model = tiny_bn_net()
    x, y = tiny_data(16)
    obj = Objective(model, F.cross_entropy, [(x[:8], y[:8]), (x[8:], y[8:])])
    g = torch.Generator().manual_seed(5)
    out = []
    for i in range(n):
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        for k, v in sd.items():
            if k.endswith("running_var"):
                sd[k] = v * (0.5 + torch.rand(v.shape, generator=g, dtype=v.dtype))
            elif k.endswith("num_batches_tracked"):
                sd[k] = v + 10 * (i + 1)
            else:  # parameters and running_mean
                sd[k] = v + 0.4 * torch.randn(v.shape, generator=g, dtype=v.dtype)
        out.append(sd)
    return model, obj, (x, y), out


def _loss_of_state_dict(model, sd, data) -> float:
    """The plain reference: a copy of the model loaded with ``sd``, evaluated in eval mode."""
    ref = copy.deepcopy(model)
    ref.load_state_dict(sd)
    ref.eval()
    x, y = data
    with torch.no_grad():
        return F.cross_entropy(ref(x), y).item()


def _combine(states, coeffs):
    """Σ coeffs[j]·states[j] for floating entries; integer entries from the first state."""
    return {
        k: sum(c * s[k] for c, s in zip(coeffs, states)) if v.is_floating_point() else v.clone()
        for k, v in states[0].items()
    }


def test_line_through_state_dicts_matches_load_state_dict_loop():
    model, obj, data, (a, b) = _states(2)
    before = snapshot(model)
    ts = [-0.5, 0.0, 0.3, 1.0, 1.5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = line(obj, a, b, ts=ts, progress=False)
    assert_same_state(before, snapshot(model))
    expected = [_loss_of_state_dict(model, _combine([a, b], [1 - t, t]), data) for t in ts]
    np.testing.assert_allclose(s.train_loss, expected, rtol=1e-12)
    assert s.settings["buffers"] == "interpolated"
    # the buffers matter: the same weights with the model's own statistics give other values
    # (no BatchNorm warning for the full state_dicts above; one for these parameter-only points)
    with pytest.warns(UserWarning, match=r"bn_data: the model has BatchNorm"):
        params_only = line(obj, *({n: sd[n] for n in obj.names} for sd in (a, b)), ts=ts, progress=False)
    assert params_only.settings["buffers"] == "model"
    assert not np.allclose(params_only.train_loss, expected, rtol=1e-6)


def test_plane_through_state_dicts_matches_load_state_dict_loop():
    model, obj, data, (s1, s2, s3) = _states(3)
    before = snapshot(model)
    surf = plane(obj, s1, s2, s3, resolution=4, margin=0.3, progress=False)
    assert_same_state(before, snapshot(model))
    names = obj.names

    def flat(sd):
        return torch.cat([sd[n].reshape(-1) for n in names])

    w1, w2, w3 = flat(s1), flat(s2), flat(s3)
    # independent basis (numpy Gram-Schmidt) and, per node, the affine coefficients by least squares
    d2, d3 = (w2 - w1).numpy(), (w3 - w1).numpy()
    u = d2 / np.linalg.norm(d2)
    r = d3 - np.dot(d3, u) * u
    v = r / np.linalg.norm(r)
    basis = np.stack([d2, d3], axis=1)
    checked = 0
    for j, beta in enumerate(surf.betas):
        for i, alpha in enumerate(surf.alphas):
            offset = alpha * u + beta * v
            (c2, c3), *_ = np.linalg.lstsq(basis, offset, rcond=None)
            sd = _combine([s1, s2, s3], [1 - c2 - c3, c2, c3])
            # the reference's weights are w1 + α·u + β·v themselves, not the affine combination
            theta = w1.numpy() + offset
            start = 0
            for n in names:
                size = sd[n].numel()
                sd[n] = torch.from_numpy(theta[start : start + size].reshape(sd[n].shape).copy())
                start += size
            assert surf.train_loss[j, i] == pytest.approx(_loss_of_state_dict(model, sd, data), rel=1e-10)
            checked += 1
    assert checked == surf.train_loss.size
    for label, sd in zip(("w1", "w2", "w3"), (s1, s2, s3)):
        # the defining points use their own full state (up to the order of the two batches' sum)
        assert surf.at_point(label) == pytest.approx(_loss_of_state_dict(model, sd, data), rel=1e-14)


def test_state_dicts_with_bn_recompute_equal_parameter_points_with_bn_recompute():
    _, obj, _, (a, b) = _states(2)
    ts = [0.0, 0.4, 1.2]
    full = line(obj, a, b, ts=ts, bn_data=True, progress=False)
    params = line(obj, *({n: sd[n] for n in obj.names} for sd in (a, b)), ts=ts, bn_data=True, progress=False)
    np.testing.assert_array_equal(full.train_loss, params.train_loss)  # every buffer is recomputed


def test_random_line_around_a_state_dict_uses_its_buffers():
    model, obj, data, (a,) = _states(1)
    s = random_line(obj, seed=0, center=a, ts=[0.0], progress=False)
    assert s.train_loss[0] == pytest.approx(_loss_of_state_dict(model, a, data), rel=1e-14)
    own_stats = obj.loss({n: a[n] for n in obj.names}).item()  # the same weights, the model's statistics
    assert s.train_loss[0] != pytest.approx(own_stats, rel=1e-6)


def test_state_dict_points_resume_from_a_store(tmp_path):
    _, obj, _, (a, b) = _states(2)
    ts = np.linspace(-0.5, 1.5, 7)
    first = line(obj, a, b, ts=ts, store=tmp_path / "s", progress=False)
    again = line(obj, a, b, ts=ts, store=tmp_path / "s", progress=False)
    np.testing.assert_array_equal(first.train_loss, again.train_loss)
    other = {k: v + 1.0 if k.endswith("running_mean") else v for k, v in b.items()}
    with pytest.raises(ValueError, match=r"store: expected a store made with the same arguments"):
        line(obj, a, other, ts=ts, store=tmp_path / "s", progress=False)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("params_only_end", r"end: expected a full state_dict \(parameters and buffers\) like start, got trainable "),
        ("missing_buffer", r"end: expected the keys of the model's state_dict .*missing keys '1.running_var'"),
        ("extra_key", r"end: expected the keys of the model's state_dict .*extra keys 'junk'"),
        ("bad_shape", r"end\['1.running_mean'\]: expected shape \(5,\), got shape \(4,\)"),
    ],
)
def test_bad_state_dict_points(change, match):
    _, obj, _, (a, b) = _states(2)
    if change == "params_only_end":
        b = {n: b[n] for n in obj.names}
    elif change == "missing_buffer":
        del b["1.running_var"]
    elif change == "extra_key":
        b["junk"] = torch.zeros(1)
    else:
        b["1.running_mean"] = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        line(obj, a, b, ts=[0.0, 1.0], progress=False)
