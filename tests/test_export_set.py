"""Exports written as a set (dmrnet.symbols.deploy.ExportSet): verified before they are moved
into place, never a mix of two exports, nothing partial left behind."""
import os
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from dmrnet.symbols import get_model
from dmrnet.symbols.deploy import (ExportError, ExportSet, export_model, finish_export, import_model,
                                   pending_path, save_symbol_model, verify_export)

from checkout import REPO  # noqa: E402
SHAPE = (1, 3, 28, 28)


def tiny(seed, L=6):
    mx.random.seed(seed)
    net = get_model('dmrnet', L=L, classes=10)
    net.initialize()
    return net


def outputs(prefix):
    x = mx.nd.array(np.random.RandomState(0).rand(*SHAPE) * 255)
    return import_model(prefix)(x).asnumpy()


def leftovers(folder):
    return sorted(n for n in os.listdir(folder) if 'partial' in n or 'pending' in n)


def test_a_truncated_params_file_is_never_moved_into_place(tmp_path, monkeypatch):
    """A full disk: MXNet's writer reports nothing and leaves a short file."""
    prefix = str(tmp_path / 'model')
    export_model(tiny(0), prefix, input_shape=SHAPE)
    before = outputs(prefix)
    real_save = mx.nd.save

    def short_save(path, data):
        real_save(path, data)
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) - 2928)
    symbol, arg, aux = mx.model.load_checkpoint(prefix, 0)
    monkeypatch.setattr(mx.nd, 'save', short_save)
    with pytest.raises(ExportError, match='model-0000.params is not a readable MXNet parameter '
                                          'file .*a full disk truncates it.*nothing was written'):
        save_symbol_model(prefix, symbol, {k: v * 2 for k, v in arg.items()}, aux)
    monkeypatch.undo()
    np.testing.assert_array_equal(outputs(prefix), before)   # the old set, untouched
    assert leftovers(tmp_path) == []


def test_params_of_another_network_are_refused(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    export_model(tiny(0, L=6), a, input_shape=SHAPE)
    export_model(tiny(0, L=12), b, input_shape=SHAPE)
    with pytest.raises(ValueError, match='b-0000.params does not hold the parameters of '
                                         '.*a-symbol.json'):
        verify_export(a + '-symbol.json', b + '-0000.params')
    (tmp_path / 'broken-symbol.json').write_text('{"nodes": [')
    with pytest.raises(ValueError, match='broken-symbol.json is not a readable MXNet symbol'):
        verify_export(str(tmp_path / 'broken-symbol.json'), a + '-0000.params')


KILLED = textwrap.dedent('''
    import os, sys
    import dmrnet.symbols
    from dmrnet.symbols import get_model, deploy
    import mxnet as mx
    mx.random.seed(1)
    net = get_model('dmrnet', L=6, classes=10)
    net.initialize()
    calls = []
    real = os.replace
    def replace(src, dst):
        calls.append(dst)
        if dst.endswith('.params'):       # killed after the symbol, before the params
            os._exit(9)
        real(src, dst)
    os.replace = replace
    deploy.export_model(net, sys.argv[1], input_shape=(1, 3, 28, 28), metadata={'model': 'x'})
''')


def test_an_export_killed_between_its_renames_is_finished_by_the_next_reader(tmp_path):
    prefix = str(tmp_path / 'model')
    export_model(tiny(0), prefix, input_shape=SHAPE, metadata={'model': 'old'})
    old = outputs(prefix)
    killed = subprocess.run([sys.executable, '-c', KILLED, prefix], cwd=REPO)
    assert killed.returncode == 9
    # on disk now: the new symbol beside the old params; the pending list says what is left
    assert os.path.exists(pending_path(prefix))
    new = outputs(prefix)                       # import_model finishes the renames first
    assert not os.path.exists(pending_path(prefix)) and leftovers(tmp_path) == []
    assert not np.allclose(new, old)            # the new network (seed 1), complete
    reference = str(tmp_path / 'reference')
    mx.random.seed(1)
    net = get_model('dmrnet', L=6, classes=10)
    net.initialize()
    export_model(net, reference, input_shape=SHAPE)
    np.testing.assert_array_equal(new, outputs(reference))
    assert '"model": "x"' in (tmp_path / 'model-meta.json').read_text()


def test_the_next_export_removes_what_a_killed_one_left(tmp_path):
    prefix = str(tmp_path / 'model')
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    stale = [tmp_path / ('.model.partial-%s%s' % (dead.stdout.strip(), suffix))
             for suffix in ('-symbol.json', '-0000.params')]
    live = tmp_path / ('.model.partial-%d-symbol.json' % os.getppid())  # a live writer's
    other = tmp_path / ('.other.partial-%s-symbol.json' % dead.stdout.strip())
    for path in stale + [live, other]:
        path.write_text('partial')
    export_model(tiny(0), prefix, input_shape=SHAPE)
    assert not any(path.exists() for path in stale)
    assert live.exists() and other.exists()     # not this export's to remove
    assert finish_export(prefix) is False


def test_a_failed_export_leaves_nothing(tmp_path):
    prefix = str(tmp_path / 'model')
    with pytest.raises(RuntimeError):
        with ExportSet(prefix) as files:
            (tmp_path / os.path.basename(files.temporary('symbol'))).write_text('{}')
            raise RuntimeError('the network failed to hybridize')
    assert os.listdir(tmp_path) == []
