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
from dmrnet.train import precision

from checkout import REPO  # noqa: E402


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


def test_export_takes_every_parameter_file_a_run_leaves(digits, tmp_path, capsys):
    """A checkpoint, the best and last exports and an export of an export: the model, its
    arguments and its data set come from the records beside the file; each export computes what
    the run's own best/last export computes. A --model that contradicts the record is one line
    naming both sides."""
    from dmrnet.symbols.deploy import import_model
    from dmrnet.train import TrainConfig, fit
    run_dir = tmp_path / 'run'
    fit(TrainConfig.for_dataset('digits', data_dir=digits, save_dir=str(run_dir), epochs=2,
                                max_batches=2, max_val_batches=1, progress=False,
                                mean=(10.0, 20.0, 30.0), std=(40.0, 50.0, 60.0)))
    from dmrnet.data import dataset_info
    digits_info = dataset_info('digits')
    x = mx.nd.array(np.random.RandomState(3).rand(4, *digits_info['image_shape']))
    best, = run_dir.glob('best-*.params')      # the epoch with the lowest test error
    best_epoch = int(best.name[5:9])
    reference = {'best': import_model(str(run_dir / 'best'), epoch=best_epoch)(x).asnumpy(),
                 'last': import_model(str(run_dir / 'last'), epoch=2)(x).asnumpy()}
    sources = {'ckpt': (run_dir / 'ckpt-0002.params', 'last'), 'best': (best, 'best'),
               'last': (run_dir / 'last-0002.params', 'last')}
    for name, (params, same_as) in sources.items():
        prefix = str(tmp_path / 'out' / name)
        assert export_tool.main(['--params', str(params), '--prefix', prefix]) == 0, \
            capsys.readouterr().err
        meta = json.load(open(prefix + '-meta.json'))
        assert meta['model'] == 'dmrnet' and meta['kwargs']['L'] == 6
        # the run's own normalisation (--rgb-mean/--rgb-std), not the data set's
        assert meta['dataset'] == 'digits' and meta['input']['mean'] == [10.0, 20.0, 30.0]
        assert meta['input']['std'] == [40.0, 50.0, 60.0]
        assert meta['input']['shape'] == [1] + list(digits_info['image_shape'])
        np.testing.assert_allclose(import_model(prefix)(x).asnumpy(), reference[same_as],
                                   rtol=1e-5, atol=1e-5)
    again = str(tmp_path / 'out' / 'again')   # an export of an export: its meta is the record
    assert export_tool.main(['--params', str(tmp_path / 'out' / 'best-0000.params'),
                             '--prefix', again]) == 0
    np.testing.assert_allclose(import_model(again)(x).asnumpy(), reference['best'], rtol=1e-5,
                               atol=1e-5)
    capsys.readouterr()
    assert export_tool.main(['--model', 'dmrnet56', '--params', str(best),
                             '--prefix', str(tmp_path / 'wrong')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'holds dmrnet (L=6' in err[0] and 'not dmrnet56' in err[0]
    assert 'best-meta.json' in err[0]


DOWNSTREAM = '''
import json, sys
import mxnet as mx, numpy as np
prefix, raw_file = sys.argv[1], sys.argv[2]
meta = json.load(open(prefix + '-meta.json'))
shape = tuple(meta['input']['shape'])
sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
mod.bind([('data', (2,) + shape[1:])], for_training=False)
mod.set_params(args, auxs)
x = mx.nd.array(np.load(raw_file))
if not meta['input']['normalized_in_graph']:
    mean = mx.nd.array(meta['input']['mean']).reshape((1, -1, 1, 1))
    std = mx.nd.array(meta['input']['std']).reshape((1, -1, 1, 1))
    x = (x - mean) / std
mod.forward(mx.io.DataBatch([x]), is_train=False)
np.save(sys.argv[3], mod.get_outputs()[0].asnumpy())
'''


@pytest.mark.parametrize('raw_input', [False, True])
def test_exports_say_how_to_feed_them_to_plain_module_code(tmp_path, raw_input):
    """Downstream MXNet code that never imports dmrnet feeds raw 0-255 pixels, following the
    meta file (normalising itself, or not when the graph does): it gets the network's logits."""
    net = get_model('resnet26', classes=10)
    net.initialize(mx.init.Uniform(0.3))
    ckpt = str(tmp_path / 'ckpt.params')
    net(mx.nd.zeros((1, 3, 28, 28)))
    net.save_parameters(ckpt)
    prefix = str(tmp_path / 'm')
    argv = ['--model', 'resnet26', '--params', ckpt, '--dataset', 'fashion', '--prefix', prefix]
    assert export_tool.main(argv + (['--raw-input'] if raw_input else [])) == 0
    meta = json.loads(open(prefix + '-meta.json').read())['input']
    assert meta['shape'] == [1, 3, 28, 28] and meta['layout'] == 'NCHW'
    assert meta['channels'] == 'RGB' and meta['pixel_scale'] == '0-255'
    assert meta['normalized_in_graph'] is raw_input and 'logits' in meta['outputs']
    assert meta['mean'] == pytest.approx([72.9404] * 3) and meta['std'] == pytest.approx(
        [90.0212] * 3)
    raw = np.random.RandomState(0).randint(0, 256, (2, 3, 28, 28)).astype(np.float32)
    np.save(str(tmp_path / 'raw.npy'), raw)
    out = str(tmp_path / 'out.npy')
    env = dict(os.environ, PYTHONPATH='')
    r = subprocess.run([sys.executable, '-c', DOWNSTREAM, prefix, str(tmp_path / 'raw.npy'),
                        out], capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    expect = net(mx.nd.array((raw - 72.9404) / 90.0212)).asnumpy()
    np.testing.assert_allclose(np.load(out), expect, rtol=1e-4, atol=1e-4 * np.abs(expect).max())


@pytest.mark.skipif(not precision.has_bfloat16(), reason='this CPU has no native bfloat16 '
                    '(avx512_bf16/amx_bf16), so oneDNN has no bfloat16 kernels: '
                    'test_bfloat16_export_refused_without_native_bfloat16 runs instead')
def test_bfloat16_export_matches_float32_within_bfloat16(tmp_path):
    """tools/export.py --bfloat16 writes PREFIX-bf16, the model computing in bfloat16 (AMP's
    conversion of the exported symbol): plain Module code loads it, its outputs follow float32
    within bfloat16's precision (8 bits of mantissa over 14 layers), and the classes agree."""
    net = get_model('dmrnet14')
    net.initialize(mx.init.Xavier())
    ckpt = str(tmp_path / 'ckpt.params')
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(ckpt)
    prefix = str(tmp_path / 'm')
    assert export_tool.main(['--model', 'dmrnet14', '--params', ckpt, '--prefix', prefix,
                             '--bfloat16']) == 0
    sym, args, auxs = mx.model.load_checkpoint(prefix + '-bf16', 0)
    x = mx.nd.random.uniform(-2, 2, shape=(8, 3, 32, 32))
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind([('data', x.shape)], for_training=False)
    mod.set_params(args, auxs)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    got = mod.get_outputs()[0].astype('float32').asnumpy()
    ref = net(x).asnumpy()
    error = np.abs(got - ref).max() / np.abs(ref).max()
    # Lower precision than float32's rounding noise (bfloat16 rounds at 2^-8), yet close.
    assert 1e-3 < error < 0.1, error
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.75
    meta = json.loads(open(prefix + '-bf16-meta.json').read())
    assert meta['compute'] == 'bfloat16' and meta['model'] == 'dmrnet14'


@pytest.mark.skipif(precision.has_bfloat16(), reason='this CPU computes bfloat16: '
                    'test_bfloat16_export_matches_float32_within_bfloat16 runs instead')
def test_bfloat16_export_refused_without_native_bfloat16(tmp_path, capsys):
    """Where oneDNN has no bfloat16 kernels, --bfloat16 stops before writing anything, with one
    line that says why (not MXNet's 'could not create a primitive descriptor iterator')."""
    prefix = str(tmp_path / 'm')
    with pytest.raises(SystemExit) as stop:
        export_tool.main(['--model', 'dmrnet', '--arg', 'L=6', '--random-weights', '--prefix',
                          prefix, '--bfloat16'])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]   # after argparse's usage lines
    assert 'error: --bfloat16: this CPU does not compute bfloat16 natively' in last
    assert os.listdir(str(tmp_path)) == []


def test_onnx_export_prints_no_temporary_name(tmp_path):
    """mx.onnx logged "Exported ONNX file .../.m.onnx.partial-PID saved to disk"."""
    pytest.importorskip('onnx')
    prefix = str(tmp_path / 'm')
    result = subprocess.run([sys.executable, 'tools/export.py', '--model', 'dmrnet', '--arg',
                             'L=6', '--random-weights', '--prefix', prefix, '--onnx'],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stdout + result.stderr
    assert 'partial' not in shown and 'wrote %s.onnx' % prefix in shown, shown
