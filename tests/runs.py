"""Reading a run folder in the training tests: its log, its last checkpoint, and the parameters
a run starts from; and waiting for processes to end."""
import json
import os


def records(save_dir):
    """log.jsonl of a run folder."""
    with open(os.path.join(str(save_dir), 'log.jsonl')) as f:
        return [json.loads(line) for line in f]


def last_checkpoint(save_dir):
    """(metadata, parameters as numpy, raw trainer-state bytes) of a run's last.json."""
    import mxnet as mx
    with open(os.path.join(str(save_dir), 'last.json')) as f:
        meta = json.load(f)
    params = {k: v.asnumpy() for k, v in
              mx.nd.load(os.path.join(str(save_dir), meta['params'])).items()}
    states = None
    if meta.get('states'):
        with open(os.path.join(str(save_dir), meta['states']), 'rb') as f:
            states = f.read()
    return meta, params, states


def initial_params(seed, model, **kwargs):
    """The parameters dmrnet.train.fit starts from (it seeds with --seed, then initializes)."""
    import mxnet as mx
    import numpy as np
    from dmrnet.symbols import get_model
    net = get_model(model, **kwargs)
    mx.random.seed(seed)
    np.random.seed(seed)
    net.initialize()
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}


def processes_gone(pids, seconds):
    """Wait up to `seconds` for every process of `pids` to end (a zombie counts as ended);
    returns those still alive."""
    import time
    deadline = time.time() + seconds
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split()[2] != 'Z'
    except OSError:
        return False
