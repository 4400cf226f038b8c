"""An export describes itself and its consumers read it: train/evaluate.py, tools/quantize.py and
get_model(pretrained=) take the epoch, the data set, the input size and the normalisation from
the export's own files, and a damaged or mismatched export is one line, exit status 2."""
import json
import logging
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from dmrnet.data import dataset_info, get_val_iter
from dmrnet.symbols import get_model
from dmrnet.symbols.deploy import export_model, import_model, input_shape_for
from dmrnet.tools import quantize as quantize_tool
from dmrnet.train import evaluate as evaluate_tool

from checkout import REPO  # noqa: E402

# Trained as --rgb-mean 0,0,0 --rgb-std 255,255,255 would (the [0, 1] pixels of many
# pipelines): far from digits' built-in 78/96, so feeding the built-in statistics shows.
MEAN, STD = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)
RAW = ([0.0] * 3, [1.0] * 3)


@pytest.fixture(scope='module')
def run(digits, tmp_path_factory):
    """A small network trained for three epochs with its own mean and std: (run folder, summary)."""
    from dmrnet.train import TrainConfig, fit
    folder = tmp_path_factory.mktemp('evaluate') / 'run'
    _, summary = fit(TrainConfig.for_dataset(
        'digits', data_dir=digits, save_dir=str(folder), model='resnet', L=3, epochs=3,
        batch_size=32, mean=MEAN, std=STD, progress=False))
    return folder, summary


def plain_mxnet_error(prefix, digits, stats, epoch=0):
    """Top-1 error (%) of an export on the digits test set, the way downstream code that never
    imports dmrnet computes it: Module, raw 0-255 pixels normalised by hand with `stats`."""
    raw = get_val_iter('digits', digits, 360, stats=RAW).next()
    x, labels = raw.data[0].asnumpy(), raw.label[0].asnumpy()
    assert x.min() >= 0 and x.max() > 200  # really raw pixels
    mean, std = (np.array(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in stats)
    sym, args, auxs = mx.model.load_checkpoint(prefix, epoch)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind([('data', x.shape)], for_training=False)
    mod.set_params(args, auxs)
    mod.forward(mx.io.DataBatch([mx.nd.array((x - mean) / std)]), is_train=False)
    predicted = mod.get_outputs()[0].asnumpy().argmax(1)
    return 100.0 * float((predicted != labels).sum()) / len(labels)


def score(prefix, *argv):
    return evaluate_tool.main(['--prefix', str(prefix), '--json'] + list(argv))


ONE_IMAGE = 100.0 / 360


def test_evaluate_feeds_the_mean_and_std_the_export_records(run, digits):
    """A run trained with its own mean/std exports them; evaluate feeds them (it used to feed
    the data set's built-in ones), so it scores what training measured and what plain MXNet
    code fed as the meta says scores."""
    folder, summary = run
    best = folder / 'best'
    meta = json.loads((folder / 'best-meta.json').read_text())
    assert meta['input']['mean'] == list(MEAN) and meta['input']['std'] == list(STD)
    out = score(best, '--dataset', 'digits', '--data-dir', digits)
    assert out['top1_error'] == pytest.approx(summary['best_test_error'], abs=1e-6)
    assert score(best, '--data-dir', digits) == out    # the data set the meta names
    epoch = summary['best_epoch']
    assert out['top1_error'] == pytest.approx(
        plain_mxnet_error(str(best), digits, (MEAN, STD), epoch), abs=ONE_IMAGE + 1e-6)
    builtin = dataset_info('digits')
    assert abs(out['top1_error'] - plain_mxnet_error(
        str(best), digits, (builtin['mean'], builtin['std']), epoch)) > 5  # the test can tell


def test_evaluate_feeds_raw_pixels_to_a_raw_input_export(run, digits, tmp_path):
    """An export that normalises in its graph (tools/export.py --raw-input) gets raw pixels:
    evaluate scores what plain MXNet does (it normalised a second time: 90% error)."""
    folder, summary = run
    net = import_model(str(folder / 'best'), summary['best_epoch'])
    prefix = str(tmp_path / 'raw')
    export_model(net, prefix, input_shape=(1, 3, 32, 32), mean=MEAN, std=STD, raw_input=True,
                 metadata=dict(model='resnet', kwargs={'L': 3}, dataset='digits'))
    out = score(prefix, '--dataset', 'digits', '--data-dir', digits)
    assert out['images'] == 360
    assert out['top1_error'] == pytest.approx(plain_mxnet_error(prefix, digits, RAW),
                                              abs=ONE_IMAGE + 1e-6)
    assert out['top1_error'] == pytest.approx(summary['best_test_error'], abs=ONE_IMAGE + 1e-6)
    assert out['top1_error'] < 50


def test_evaluate_without_a_meta_file_uses_the_data_sets_statistics_and_says_so(
        run, digits, tmp_path, caplog, capsys):
    folder, summary = run
    epoch = summary['best_epoch']
    for name in ('best-symbol.json', 'best-%04d.params' % epoch):
        shutil.copy(str(folder / name), str(tmp_path / name))
    prefix = tmp_path / 'best'
    with caplog.at_level(logging.INFO, logger='dmrnet.evaluate'):
        out = score(prefix, '--dataset', 'digits', '--data-dir', digits)
    builtin = dataset_info('digits')
    assert out['top1_error'] == pytest.approx(plain_mxnet_error(
        str(prefix), digits, (builtin['mean'], builtin['std']), epoch), abs=ONE_IMAGE + 1e-6)
    said = [r.getMessage() for r in caplog.records if r.name == 'dmrnet.evaluate']
    assert len(said) == 1 and 'best-meta.json not found' in said[0] and 'built-in' in said[0]
    with pytest.raises(SystemExit) as stop:   # and then the data set must be named
        score(prefix, '--data-dir', digits)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert 'best-meta.json not found: name the data set (--dataset)' in err[0]


def test_input_shape_comes_from_the_meta():
    meta = {'input': {'shape': [1, 3, 28, 28]}}
    assert input_shape_for(get_model('resnet26'), 5, meta) == (5, 3, 28, 28)
    assert input_shape_for(get_model('resnet26'), 5) == (5, 3, 32, 32)


@pytest.fixture(scope='module')
def damaged(tmp_path_factory):
    """Exports a user may hold by mistake, each {name: (prefix, extra argv, file to name)}."""
    root = tmp_path_factory.mktemp('damaged')
    made = {}
    for L in (6, 12):
        net = get_model('dmrnet', L=L)
        net.initialize()
        made[L] = str(root / ('dmrnet%d' % L))
        export_model(net, made[L], input_shape=(1, 3, 32, 32),
                     metadata=dict(model='dmrnet', kwargs={'L': L}, dataset='digits'),
                     mean=(78.0,) * 3, std=(96.0,) * 3)

    def copy(name, params_from=6):
        folder = root / name
        folder.mkdir()
        for suffix in ('-symbol.json', '-meta.json'):
            shutil.copy(made[6] + suffix, str(folder / ('m' + suffix)))
        shutil.copy(made[params_from] + '-0000.params', str(folder / 'm-0000.params'))
        return folder

    foreign = copy('foreign', params_from=12)   # L=12 params beside an L=6 symbol
    truncated_symbol = copy('truncated-symbol')
    data = (truncated_symbol / 'm-symbol.json').read_bytes()
    (truncated_symbol / 'm-symbol.json').write_bytes(data[:len(data) // 3])
    truncated_params = copy('truncated-params')
    data = (truncated_params / 'm-0000.params').read_bytes()
    (truncated_params / 'm-0000.params').write_bytes(data[:len(data) - 3000])
    no_meta = copy('no-meta')
    os.remove(str(no_meta / 'm-meta.json'))
    return {
        'foreign params': (foreign / 'm', [], 'm-0000.params'),
        'truncated symbol': (truncated_symbol / 'm', [], 'm-symbol.json'),
        'truncated params': (truncated_params / 'm', [], 'm-0000.params'),
        'missing epoch': (root / 'dmrnet6', ['--epoch', '7'], 'dmrnet6-0007.params'),
        'no export': (root / 'nowhere', [], 'nowhere-NNNN.params'),
        'missing meta': (no_meta / 'm', [], 'm-meta.json'),
    }


CASES = ['foreign params', 'truncated symbol', 'truncated params', 'missing epoch', 'no export',
         'missing meta']


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('tool', ['evaluate', 'quantize'])
def test_a_damaged_or_mismatched_export_is_one_line(tool, case, damaged, digits, capsys):
    """Each is one line naming the file, exit status 2, nothing written (quantize used to give
    8-53-line tracebacks and to write an INT8 model from L=12 params with an L=6 symbol)."""
    prefix, extra, named = damaged[case]
    argv = ['--prefix', str(prefix), '--data-dir', digits] + extra
    if tool == 'quantize':
        main, argv = quantize_tool.main, argv + ['--num-calib', '64']
    else:   # evaluate scores a meta-less export when told the data set
        main, argv = evaluate_tool.main, argv + ([] if case == 'missing meta' else
                                                 ['--dataset', 'digits'])
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert named in err[0] and 'Traceback' not in err[0]
    assert not os.path.exists(str(prefix) + '-int8-symbol.json')


def test_quantize_takes_epoch_data_set_and_normalisation_from_the_export(run, digits, tmp_path):
    """No --epoch (it used to look for best-0000.params), no --dataset: the export's own; its
    recorded mean/std for calibration and test error (the fp32 error is the one training
    measured); MXNet's 50-75 lines of graph-pass log stay out of the terminal. Run as users run
    it: MXNet reads MXNET_SUBGRAPH_VERBOSE once per process, at its first bound graph."""
    folder, summary = run
    # a user's environment: the training and quantizing before set these in this process
    env = {k: v for k, v in os.environ.items()
           if k not in ('MXNET_ENGINE_TYPE', 'MXNET_SUBGRAPH_VERBOSE')}
    done = subprocess.run([sys.executable, 'tools/quantize.py', '--prefix', str(folder / 'best'),
                           '--data-dir', digits, '--num-calib', '64', '--out',
                           str(tmp_path / 'q'), '--json'], cwd=REPO, env=env,
                          capture_output=True, text=True)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result['epoch'] == summary['best_epoch'] and result['dataset'] == 'digits'
    assert result['fp32_test_error'] == pytest.approx(summary['best_test_error'], abs=1e-3)
    assert abs(result['int8_minus_fp32']) <= 2.0
    assert 'quantize_graph_pass' not in err and 'Subgraph backend' not in err, err
    assert len(err.strip().splitlines()) == 0, err
    assert result['out'] == str(tmp_path / 'q')


def test_quantize_reads_the_data_set_from_the_meta(damaged, tmp_path, capsys):
    """A Fashion-MNIST export without --dataset is calibrated on Fashion-MNIST: given a folder
    without its pack, the line names Fashion-MNIST's packer (it used to suggest the digits')."""
    net = get_model('resnet', L=3)
    net.initialize()
    prefix = str(tmp_path / 'fashion')
    export_model(net, prefix, input_shape=(1, 3, 28, 28), mean=(72.9,) * 3, std=(90.0,) * 3,
                 metadata=dict(model='resnet', kwargs={'L': 3}, dataset='fashion'))
    with pytest.raises(SystemExit) as stop:
        quantize_tool.main(['--prefix', prefix, '--data-dir', str(tmp_path / 'no-pack')])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert 'fashion_train' in err[0] and 'data/fashion.py' in err[0] and 'digits' not in err[0]


def test_pretrained_true_picks_the_one_kept_data_set(tmp_path, monkeypatch):
    """get_model(name, pretrained=True), GluonCV's form: the one data set with weights for that
    model (it was a raw TypeError), else one line saying which to name; weights kept as a
    raw-input export load too (the Gluon network takes normalised images)."""
    monkeypatch.setenv('DMRNET_WEIGHTS_ROOT', str(tmp_path))
    trained = get_model('resnet', L=3)
    trained.initialize(mx.init.Uniform(0.5))
    x = mx.nd.array(np.random.RandomState(1).rand(2, 3, 28, 28))
    meta = dict(model='resnet', model_kwargs={'L': 3})
    export_model(trained, str(tmp_path / 'toyset' / 'weights' / 'resnet'),
                 input_shape=(1, 3, 28, 28), metadata=meta)
    np.testing.assert_allclose(get_model('resnet', pretrained=True)(x).asnumpy(),
                               trained(x).asnumpy(), rtol=1e-5, atol=1e-5)
    export_model(trained, str(tmp_path / 'other' / 'weights' / 'resnet'),
                 input_shape=(1, 3, 28, 28), metadata=meta, mean=(70.0,) * 3, std=(90.0,) * 3,
                 raw_input=True)
    with pytest.raises(ValueError, match=r"pretrained=True: resnet has weights trained on "
                                         r"other, toyset; name the data set"):
        get_model('resnet', pretrained=True)
    np.testing.assert_allclose(get_model('resnet', pretrained='other')(x).asnumpy(),
                               trained(x).asnumpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='pretrained=True: no kept weights of dmrnet14'):
        get_model('dmrnet14', pretrained=True)
