"""SWA averaging and SALR inside a user's DistributedDataParallel loop (2-process gloo torchrun)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from basinscope.optim.ddp import is_ddp, unwrap
from basinscope.optim.salr import SGDSALR
from basinscope.optim.swa import recompute_bn_

from ._optim_dist_script import bn_net, plain_net, salr_reference, shard, swa_reference
from .test_objective_distributed import torchrun


def _close(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert list(got) == list(want)
    for k in want:
        assert torch.allclose(got[k].double(), want[k].double(), rtol=1e-10, atol=1e-12), (k, got[k], want[k])


def test_torchrun_ddp_swa_and_salr_equal_one_process_over_the_concatenated_batches(tmp_path):
    torchrun("_optim_dist_script.py", tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for part in ("swa", "salr"):  # identical on both ranks
        for k in ranks[0][part]:
            assert torch.equal(ranks[0][part][k], ranks[1][part][k]), (part, k)
    assert torch.equal(ranks[0]["sharpness"], ranks[1]["sharpness"]) and ranks[0]["distributed"] is True
    _close(ranks[0]["swa"], swa_reference())
    salr_state, sharpness = salr_reference()
    _close(ranks[0]["salr"], salr_state)
    assert sharpness.numel() == 3 and torch.allclose(ranks[0]["sharpness"], sharpness, rtol=1e-10, atol=0)
    # the run did move the BatchNorm statistics away from their initial values (the check can fail)
    assert not torch.allclose(ranks[0]["swa"]["1.running_var"], torch.ones(8, dtype=torch.float64))


def test_without_a_process_group_distributed_salr_and_bn_recompute_are_refused():
    model = plain_net()
    x, y = shard(0, 0)
    opt = SGDSALR(model, F.cross_entropy, lr=0.1, c=1, gamma=0.01, n_descent=1, n_ascent=1, distributed=True)
    with pytest.raises(ValueError, match=r"^distributed: expected an initialized torch.distributed process group"):
        opt.step(lambda: F.cross_entropy(model(x), y), batch=(x, y))
    with pytest.raises(ValueError, match=r"^distributed: expected an initialized torch.distributed process group"):
        recompute_bn_(bn_net(), F.cross_entropy, [(x, y)], distributed=True)


def test_plain_models_are_not_distributed():
    model = plain_net()
    assert not is_ddp(model) and unwrap(model) is model
    assert SGDSALR(model, F.cross_entropy, lr=0.1).distributed is False
