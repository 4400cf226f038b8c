"""What a training run is built from: its devices, its KVStore, its network and its data.

Every function takes the TrainConfig (train/config.py) and raises UserError with one line that
says what was wrong and how to fix it.
"""
import logging
import os
import sys

import mxnet as mx

from dmrnet.symbols import get_model
from dmrnet.symbols.registry import preset, resolve
from dmrnet.train import precision
from dmrnet.train.config import flag, setting
from dmrnet.utils import cuda
from dmrnet.utils.devices import parse_devices


class UserError(Exception):
    """Bad input: exit status 2, one line."""


class RunStopped(Exception):
    """The run cannot go on (divergence, disk): exit status 3, one line."""


def contexts(config):
    """The devices of the run: the GPUs of --gpus, else --cpus CPU contexts."""
    try:
        gpus = parse_devices(config.gpus)
    except ValueError:
        raise UserError('%s: expected ids like "0", "0,1" or "0-7"'
                        % setting('gpus', config.gpus, '%r')) from None
    if gpus:
        # the driver is asked directly: MXNet's own answer (num_gpus) cannot tell a CPU build
        # from a missing driver from a GPU it has no kernels for
        problem = cuda.gpu_problem(gpus)
        if problem:
            raise UserError(problem)
        return [mx.gpu(g) for g in gpus]
    cpus = [mx.cpu(i) for i in range(config.cpus)]
    if config.amp:
        reason = precision.check_amp(cpus)
        if reason:
            raise UserError(reason)
    return cpus


def kvstore(config, devices):
    """The KVStore the Trainer uses, or its name where Gluon creates it itself."""
    if config.amp and 'async' in config.kv_store and \
            precision.needs_loss_scaling(precision.amp_dtype(devices)):
        # The servers would apply a step before AMP could see that its gradients overflowed.
        raise UserError('%s cannot be combined with %s (updates happen on the '
                        'servers, where overflowed float16 steps cannot be skipped); use '
                        'dist_sync or dist_device_sync'
                        % (flag('amp'), setting('kv_store', config.kv_store)))
    if config.kv_store.startswith('dist'):
        if 'DMLC_ROLE' not in os.environ:
            raise UserError('%s needs the parameter-server environment: start the '
                            'run with tools/launch.py -n WORKERS -s SERVERS -- python train/...'
                            % setting('kv_store', config.kv_store))
        return mx.kv.create(config.kv_store)
    if config.kv_store == 'nccl' and not any(c.device_type == 'gpu' for c in devices):
        raise UserError('%s needs GPUs; use local or device on CPU'
                        % setting('kv_store', 'nccl'))
    return config.kv_store


def model_spec(config, classes):
    """(name, kwargs, family, full kwargs) of the network: a preset or a family plus the fields
    that were given. The recipe's `family_defaults` (e.g. the demo's L=6) complete a bare family
    only; a field that contradicts a preset's own architecture is refused rather than silently
    building another network under the preset's name."""
    kwargs = config.arch_kwargs()
    try:
        family, _ = resolve(config.model)
    except ValueError as e:
        raise UserError(str(e).split('\n')[0] + ' (see --help for --model)') from None
    if family == config.model:
        for k, v in (config.family_defaults or {}).items():
            kwargs.setdefault(k, v)
    else:
        own = preset(config.model)['kwargs']
        clash = sorted(k for k in kwargs if k in own and own[k] != kwargs[k])
        if clash:
            given = ' '.join('--%s %s' % (k, kwargs[k]) for k in clash)
            raise UserError('--model %s is %s; %s contradicts it: give the family instead, e.g. '
                            '--model %s %s' % (config.model, describe_kwargs(own),
                                               ', '.join('--%s %s' % (k, kwargs[k])
                                                         for k in clash), family, given))
    kwargs['classes'] = classes
    family, full = resolve(config.model, **kwargs)
    return config.model, kwargs, family, full


def network(config, classes):
    name, kwargs, _, _ = model_spec(config, classes)
    try:
        return get_model(name, **kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError('--model %s %s: %s' % (name, kwargs, e)) from None


def mxnet_reason(error):
    """The line of an MXNetError that says what went wrong (its text starts with a C++ stack
    that reads like a Python traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if 'Check failed' in line or 'Error' in line or 'error' in line:
            return line.split('] ', 1)[-1]
    return lines[-1] if lines else type(error).__name__


def describe_kwargs(kwargs):
    return '(%s)' % ', '.join('%s=%s' % item for item in sorted((kwargs or {}).items()))


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
        handlers.append(logging.FileHandler(os.path.join(save_dir, 'train.log')))
    for h in handlers:
        h.setFormatter(logging.Formatter(fmt))
        h._dmrnet = True
        root.addHandler(h)
