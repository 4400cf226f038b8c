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


# Optimizer states are written with nd.save, not as Gluon's pickles (Trainer.save_states): a
# pickle runs whatever it holds when loaded, and a run folder may come from anywhere. Keys:
# 'state:I' (one array), 'state:I:J' (a tuple's J-th array, e.g. multi-precision master weights),
# 'none:I' (no state, e.g. momentum 0), 'count:D:I' (updates of parameter I on device D; the
# optimizer counts per device), 'num_update'.
STATE_FORMAT = 'dmrnet-states-1'


def trainer_states(trainer):
    """The Trainer's optimizer states as a dict of NDArrays for nd.save (updates on the
    workers; with dist_async the states live on the servers and are not saved)."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    updater, optimizer = trainer._updaters[0], trainer._optimizer
    out = {'format:' + STATE_FORMAT: mx.nd.zeros((1,)),
           'num_update': mx.nd.array([optimizer.num_update], dtype='int64')}
    for index, state in updater.states.items():
        if state is None:
            out['none:%d' % index] = mx.nd.zeros((1,))
        elif isinstance(state, (tuple, list)):
            for j, part in enumerate(state):
                out['state:%d:%d' % (index, j)] = part.as_in_context(mx.cpu())
        else:
            out['state:%d' % index] = state.as_in_context(mx.cpu())
    for device, counts in optimizer._all_index_update_counts.items():
        for index, count in counts.items():
            out['count:%d:%d' % (device, index)] = mx.nd.array([count], dtype='int64')
    # Sorted: the file's bytes then depend on its content only, not on the order of updates.
    return {key: out[key] for key in sorted(out)}


def restore_trainer_states(trainer, arrays):
    """Put states read back from `trainer_states`' file into `trainer` (every device's updater
    its own copy). Raises ValueError when they are not such a file or do not fit the Trainer."""
    if 'format:' + STATE_FORMAT not in arrays:
        raise ValueError('not a dmrnet optimizer-state file (%s); Gluon pickles are not loaded'
                         % STATE_FORMAT)
    states, parts, counts = {}, {}, {}
    for key, value in arrays.items():
        kind, _, rest = key.partition(':')
        if kind == 'state' and ':' in rest:
            index, j = map(int, rest.split(':'))
            parts.setdefault(index, {})[j] = value
        elif kind == 'state':
            states[int(rest)] = value
        elif kind == 'none':
            states[int(rest)] = None
        elif kind == 'count':
            device, index = map(int, rest.split(':'))
            counts.setdefault(device, {})[index] = int(value.asscalar())
    for index, by_position in parts.items():
        states[index] = tuple(by_position[j] for j in sorted(by_position))
    if sorted(states) != list(range(len(trainer._params))):
        raise ValueError('states for %d parameters, the network has %d'
                         % (len(states), len(trainer._params)))
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    for updater in trainer._updaters:
        updater.states = {index: _copy(state) for index, state in states.items()}
        updater.states_synced = dict.fromkeys(updater.states, False)
    optimizer = trainer._optimizer
    optimizer._all_index_update_counts = counts or {0: {}}
    optimizer._index_update_count = optimizer._all_index_update_counts.setdefault(0, {})
    optimizer.num_update = int(arrays['num_update'].asscalar())


def _copy(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(part.copy() for part in state)
    return state.copy()
