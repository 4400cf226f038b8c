"""dmrnet.train: one training loop behind thin per-dataset scripts, and its Python API.

    from dmrnet.train import TrainConfig, fit
    config = TrainConfig.for_dataset('digits', data_dir='data/digits', epochs=3)
    net, summary = fit(config)        # the trained network and summary.json's content

The scripts (python train/cifar.py, svhn.py, imagenet.py, digits.py) build the same TrainConfig
from their flags (train/cli.py).
"""
import dmrnet.utils  # noqa: F401  (sets OMP threads before mxnet is imported)
from .config import TrainConfig  # noqa: F401,E402
from .errors import ConfigError, RunStopped, UserError  # noqa: F401,E402
from .recipes import RECIPES, recipe_for  # noqa: F401,E402


def fit(config, data=None):
    """Train the run `config` describes: FitResult(net, summary) (train/loop.py)."""
    from .loop import fit as _fit
    return _fit(config, data)
