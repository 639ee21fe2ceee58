"""Reference optimizers: SWA / DSWA / TSWA ("SWA Revisited"), SALR (SGD, Adam, Entropy-SGD), SAM, Entropy-SGD,
the schedules of the SWA papers and an equal-budget, resumable training runner."""

from .entropy_sgd import EntropySGD
from .methods import METHODS
from .result import TrainResult
from .runner import NonFiniteLossError, train
from .salr import SALR, SGDSALR, AdamSALR, EntropySGDSALR
from .salr_rule import SALRRule
from .sam import SAM
from .schedules import CHCLR, PreSWALR, chc_lr, pre_swa_lr
from .swa import WeightAverager, dswa, recompute_bn_, swa, swa_rounds, tswa
from .tensor_lr import SGD, Adam

__all__ = [
    "CHCLR",
    "METHODS",
    "SALR",
    "SAM",
    "SGD",
    "SGDSALR",
    "Adam",
    "AdamSALR",
    "EntropySGD",
    "EntropySGDSALR",
    "NonFiniteLossError",
    "PreSWALR",
    "SALRRule",
    "TrainResult",
    "WeightAverager",
    "chc_lr",
    "dswa",
    "pre_swa_lr",
    "recompute_bn_",
    "swa",
    "swa_rounds",
    "train",
    "tswa",
]
