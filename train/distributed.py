"""Data parallelism across devices and machines: what the KVStore alone does not do.

Every call into MXNet's private API that training needs is here (Parameter._reduce,
Trainer._init_kvstore / _init_params / _optimizer, KVStore._barrier), so that an MXNet upgrade
has one file to check.
"""
import logging

import mxnet as mx
import numpy as np

log = logging.getLogger('dmrnet.train')

# Int keys far from the Trainer's (parameter indices) for metric sums and BN statistics.
METRIC_KEY = 1 << 20
AUX_KEY = 1 << 21


def is_distributed(kv):
    """Whether `kv` is a KVStore object of several processes (not a name Gluon resolves)."""
    return kv is not None and not isinstance(kv, str)


class Sync:
    """Sums small metric vectors over workers (dist_sync kvstore); identity otherwise."""

    def __init__(self, kv):
        self.kv = kv if (is_distributed(kv) and kv.num_workers > 1
                         and 'async' not in kv.type) else None
        self.ready = set()

    def _allreduce(self, key, array):
        if key not in self.ready:
            self.kv.init(key, mx.nd.zeros_like(array))
            self.ready.add(key)
        self.kv.push(key, array)
        out = mx.nd.zeros_like(array)
        self.kv.pull(key, out=out)
        return out

    def sum(self, values):
        v = mx.nd.array(np.asarray(values, dtype=np.float64), dtype='float32')
        if self.kv is None:
            return v.asnumpy().astype(np.float64)
        return self._allreduce(METRIC_KEY + len(values), v).asnumpy().astype(np.float64)

    def mean(self, key, array):
        return self._allreduce(key, array) / self.kv.num_workers


def average_running_stats(net, sync):
    """Replace each device's BatchNorm running mean/var by their mean over all devices and
    workers. Training never reads them (it uses batch statistics) and their update is linear,
    so this changes nothing but evaluation and checkpoints: every device then evaluates the same
    model, a checkpoint holds exactly what training holds (bit-exact resume with several
    devices), and W one-device workers end with what one W-device process ends with."""
    aux = [p for p in net.collect_params().values() if p.grad_req == 'null']
    for i, p in enumerate(aux):
        mean = p._reduce()
        if sync.kv is not None:
            mean = sync.mean(AUX_KEY + i, mean)
        p.set_data(mean)


def server_lr_schedule(config, start_epoch, steps_per_epoch, num_workers):
    """dist_async updates on the servers, which never see set_learning_rate: give the optimizer
    they receive the remaining steps of the schedule, counted in server updates (every worker's
    push of a batch is one). None when no step remains."""
    per_epoch = steps_per_epoch * num_workers
    steps = [(s - start_epoch) * per_epoch for s in config.lr_step_epochs() if s > start_epoch]
    if not steps:
        return None
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=config.lr_factor)


def start_barrier(trainer, kv):
    """Finish the initial parameter pull on every worker before anyone pushes a gradient.

    Gluon would pull the initial parameters from the servers inside the first step, as
    asynchronous operations that nothing orders before the first gradient push: a fast worker's
    gradients could then reach the servers first and be pulled as "parameters" by a slow one
    (seen: dist_sync runs diverging from the start, one run in three)."""
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()
    kv._barrier()


def restore_trainer_states(trainer, path, wd, momentum):
    """Load optimizer states (momentum) into `trainer`, keeping this run's wd and momentum: the
    states file carries a pickled optimizer, which replaces the Trainer's."""
    trainer.load_states(path)
    trainer._optimizer.wd, trainer._optimizer.momentum = wd, momentum
