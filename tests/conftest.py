"""Fixtures shared by the test modules.

Packed data sets live under the session's base temporary folder and are packed once per pytest
session, however many modules use them.
"""
import os

import pytest

import datagen

# tests/gpu needs the GPU build's environment (4.3 GB): make test-gpu-build builds it and runs
# them with DMRNET_GPU_VENV set; make test leaves them out.
collect_ignore = [] if os.environ.get('DMRNET_GPU_VENV') else ['gpu']


@pytest.fixture
def no_network(monkeypatch):
    """Fail any download: tests work on files they generate in the official formats."""
    datagen._no_network(monkeypatch)


def _packed_once(tmp_path_factory, name, pack):
    folder = tmp_path_factory.getbasetemp() / ('packed-' + name)
    done = folder / '.packed'
    if not done.exists():
        folder.mkdir(exist_ok=True)
        pack(str(folder))
        done.write_text('ok')
    return str(folder)


@pytest.fixture(scope='session')
def digits(tmp_path_factory):
    """The real scikit-learn digits set (1,437 train + 360 test images) as RecordIO."""
    from dmrnet.data import digits as packer
    return _packed_once(tmp_path_factory, 'digits', lambda out: packer.main(['--out', out]))


@pytest.fixture(scope='session')
def cifar100(tmp_path_factory):
    """A generated CIFAR-100 release (100 train, 20 test images, 100 classes) as RecordIO."""
    from dmrnet.data import cifar

    def pack(out):
        src, _ = datagen.make_cifar(out + '-src', 'cifar100', per_batch=20, tar=False)
        cifar.main(['--dataset', 'cifar100', '--out', out, '--src', src])
    return _packed_once(tmp_path_factory, 'cifar100', pack)
