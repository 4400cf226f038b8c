"""Helpers shared by the tests/test_train_*.py modules (no tests of its own).

The packed sets live under the session's base temporary folder, so the three modules pack them
once per pytest session rather than once each (fixtures imported into several modules would
each run, whatever their scope).
"""
import json
import os

DONE = '.packed'


def packed_once(tmp_path_factory, name, pack):
    """A folder of the session holding what `pack(folder)` writes, packed on first use."""
    folder = tmp_path_factory.getbasetemp() / ('packed-' + name)
    if not (folder / DONE).exists():
        folder.mkdir(exist_ok=True)
        pack(str(folder))
        (folder / DONE).write_text('ok')
    return str(folder)


def digits_dir(tmp_path_factory):
    """The real scikit-learn digits set (1,437 train + 360 test images) as RecordIO."""
    from dmrnet.data import digits
    return packed_once(tmp_path_factory, 'digits', lambda out: digits.main(['--out', out]))


def cifar100_dir(tmp_path_factory):
    """A generated CIFAR-100 release (100 train, 20 test images, 100 classes) as RecordIO."""
    import datagen
    from dmrnet.data import cifar

    def pack(out):
        src, _ = datagen.make_cifar(out + '-src', 'cifar100', per_batch=20, tar=False)
        cifar.main(['--dataset', 'cifar100', '--out', out, '--src', src])
    return packed_once(tmp_path_factory, 'cifar100', pack)


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
    """The parameters engine.fit starts from (it seeds with --seed, then initializes)."""
    import mxnet as mx
    import numpy as np
    from dmrnet.symbols import get_model
    net = get_model(model, **kwargs)
    mx.random.seed(seed)
    np.random.seed(seed)
    net.initialize()
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}
