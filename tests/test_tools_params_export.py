"""tools/analysis/params.py and tools/export.py as a user runs them."""
import json
import os
import subprocess
import sys

import mxnet as mx
import pytest
import numpy as np

from dmrnet.symbols import get_model
from dmrnet.symbols.deploy import import_model
from dmrnet.tools import export as export_tool
from dmrnet.tools.analysis import params as params_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_params_table_shows_paper_authors_and_ours(capsys):
    assert params_tool.main(['--json']) == 0
    rows = {r['model']: r for r in json.loads(capsys.readouterr().out)}
    wide50 = rows['dmrnet_wide50']
    assert (wide50['paper'], wide50['authors'], wide50['ours']) == ('24.8M', 24151882, 24151882)
    assert 'printed 24.8M' in wide50['note']
    assert rows['rir18']['paper'] == '10.3M' and rows['rir18']['authors'] is None
    assert all(r['equal_to_authors'] for r in rows.values() if r['authors'])
    assert len([r for r in rows.values() if r['authors']]) == 28


def test_export_cli_converts_a_branch_checkpoint_to_the_fused_form(tmp_path):
    net = get_model('dmrnet', L=12)
    net.initialize()
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    net(x)
    net.save_parameters(str(tmp_path / 'ckpt.params'))
    rc = export_tool.main(['--model', 'dmrnet', '--arg', 'L=12', '--params',
                           str(tmp_path / 'ckpt.params'), '--fused',
                           '--prefix', str(tmp_path / 'fused')])
    assert rc == 0
    meta = json.loads((tmp_path / 'fused-meta.json').read_text())
    assert meta['fused'] is True and meta['kwargs'] == {'L': 12}
    out = import_model(str(tmp_path / 'fused'))(x).asnumpy()
    ref = net(x).asnumpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_export_cli_rejects_unknown_models_with_the_valid_names():
    proc = subprocess.run([sys.executable, 'tools/export.py', '--model', 'dmrnet15',
                           '--random-weights', '--prefix', '/tmp/never'], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 2
    assert 'unknown model' in proc.stderr and 'dmrnet56' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_export_cli_needs_weights_and_names_a_bad_params_file(tmp_path, capsys):
    """No --params and no --random-weights: refused (a forgotten --params would otherwise
    export untrained weights silently); a params file of random bytes or of another network:
    one line naming it."""
    prefix = str(tmp_path / 'out')
    with pytest.raises(SystemExit) as e:
        export_tool.main(['--model', 'dmrnet14', '--prefix', prefix])
    assert e.value.code == 2 and 'one of the arguments --params --random-weights is required' \
        in capsys.readouterr().err
    junk = tmp_path / 'junk.params'
    junk.write_bytes(os.urandom(4096))
    other = tmp_path / 'resnet.params'
    net = get_model('resnet26')
    net.initialize()
    net.save_parameters(str(other))
    for bad in (junk, other):
        assert export_tool.main(['--model', 'dmrnet14', '--params', str(bad),
                                 '--prefix', prefix]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and 'Traceback' not in err[0], err
    assert not os.path.exists(prefix + '-symbol.json')
    assert export_tool.main(['--model', 'dmrnet14', '--random-weights', '--prefix', prefix]) == 0
