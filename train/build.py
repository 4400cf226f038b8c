"""What carrying out a run's plan (train/plan.py) creates: its KVStore, its network and its
logging. The checks that decide whether these can be created are the plan's."""
import logging
import os
import sys

import mxnet as mx

from dmrnet.symbols import get_model
from dmrnet.train import rundir
from dmrnet.train.errors import UserError


def kvstore(name):
    """The KVStore the Trainer uses, or its name where Gluon creates it itself (a distributed
    one connects to the scheduler here, which assigns this worker its rank)."""
    if name.startswith('dist'):
        return mx.kv.create(name)
    return name


def network(spec):
    """The network of a plan's ModelSpec."""
    try:
        return get_model(spec.name, **spec.kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError('--model %s %s: %s' % (spec.name, spec.kwargs, e)) from None


def close_logging():
    """Detach and close the handlers setup_logging attached."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, '_dmrnet', False):
            root.removeHandler(h)
            h.close()


def setup_logging(save_dir, rank, write_files):
    """Log lines tagged with the worker's rank, to stderr and (rank 0) DIR/train.log."""
    fmt = '%%(asctime)s [rank %d] %%(levelname)s %%(message)s' % rank
    close_logging()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handlers = [logging.StreamHandler(sys.stderr)]
    if write_files:
        os.makedirs(save_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(save_dir, rundir.TRAIN_LOG)))
    for h in handlers:
        h.setFormatter(logging.Formatter(fmt))
        h._dmrnet = True
        root.addHandler(h)
