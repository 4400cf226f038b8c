"""What the training tests read of a run folder beyond dmrnet.train.rundir, and waiting for
processes to end."""
import os

from dmrnet.train import rundir


def records(save_dir):
    """The epoch records of a run's log (rundir.read_log), which must hold nothing else.
    read_log forgives a rewritten epoch or a bad line, as a resume must; a test that counts the
    epochs a run logged must see the ones it wrote twice."""
    save_dir = str(save_dir)
    found = rundir.read_log(save_dir)
    with open(os.path.join(save_dir, rundir.LOG)) as f:
        lines = f.read().splitlines()
    assert len(lines) == len(found), 'log lines beside its records: %r' % lines
    return found


def last_checkpoint(save_dir):
    """(metadata, parameters as numpy, raw optimizer-state bytes or None) of the checkpoint a
    run folder's pointer names."""
    import mxnet as mx
    meta, folder = rundir.locate(str(save_dir))
    params = {k: v.asnumpy() for k, v in mx.nd.load(os.path.join(folder, meta['params'])).items()}
    states = None
    if meta.get('states'):
        with open(os.path.join(folder, meta['states']), 'rb') as f:
            states = f.read()
    return meta, params, states


def exported(save_dir, which, kind, epoch=0):
    """The path of file `kind` ('symbol', 'params', 'meta') of a run's export `which`
    (rundir.BEST_EXPORT or rundir.LAST_EXPORT)."""
    from dmrnet.symbols.deploy import export_file
    return export_file(rundir.export_prefix(str(save_dir), which), kind, epoch)


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
