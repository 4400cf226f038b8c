"""The float32 step taken apart (dmrnet.tools.bench.step_parts): the BatchNorm+ReLU rewrite
computes the same numbers as the network it rewrites, and the command reports every variant
at a tiny setting. No timing assertions."""
import json

import dmrnet.symbols  # noqa: F401  (runtime defaults before mxnet)
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from dmrnet.symbols import get_model
from dmrnet.tools.bench import step_parts


def _net(seed):
    mx.random.seed(seed)
    net = get_model('dmrnet', L=6)
    net.initialize()
    return net


def _pairs_left(net):
    """BatchNorms still directly followed by a ReLU in some HybridSequential."""
    left = 0

    def count(block):
        nonlocal left
        if isinstance(block, gluon.nn.HybridSequential):
            kids = list(block._children.values())
            left += sum(type(a) is gluon.nn.BatchNorm and isinstance(b, gluon.nn.Activation)
                        for a, b in zip(kids, kids[1:]))
    net.apply(count)
    return left


def _train_pass(net, x, y):
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    params = net.collect_params()
    return (net(x).asnumpy(),  # inference output after the training pass
            {k: p.grad().asnumpy() for k, p in params.items() if p.grad_req != 'null'},
            {k: p.data().asnumpy() for k, p in params.items() if p.grad_req == 'null'})


def test_bn_relu_rewrite_keeps_function_and_parameters():
    ref, fused = _net(3), _net(3)
    names = list(fused.collect_params().keys())
    n = step_parts.fuse_bn_relu(fused)
    assert n > 0 and _pairs_left(fused) == 0 and _pairs_left(ref) == n
    # the same Parameter objects under the same names: checkpoints stay interchangeable
    assert list(fused.collect_params().keys()) == names
    x = mx.nd.random.normal(shape=(4, 3, 32, 32))
    y = mx.nd.array([0, 1, 2, 3])
    for net in (ref, fused):
        net.hybridize(static_alloc=True, static_shape=True)
    out_ref, grads_ref, stats_ref = _train_pass(ref, x, y)
    out_fused, grads_fused, stats_fused = _train_pass(fused, x, y)
    np.testing.assert_array_equal(out_fused, out_ref)
    for k in grads_ref:
        np.testing.assert_array_equal(grads_fused[k], grads_ref[k], err_msg=k)
    for k in stats_ref:  # running means and variances moved identically
        np.testing.assert_array_equal(stats_fused[k], stats_ref[k], err_msg=k)
    assert any(np.abs(v - 1).max() > 0 for k, v in stats_ref.items() if k.endswith('var'))


def test_step_parts_reports_every_variant(tmp_path, capsys):
    out = tmp_path / 'parts.json'
    rc = step_parts.main(['--model', 'dmrnet', '--model-kwargs', '{"L": 6}', '--batch-size', '4',
                          '--warmup', '1', '--repeats', '1', '--rounds', '2', '--inprocess',
                          '--json', '--out', str(out)])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == rep
    assert set(rep['variants']) == set(step_parts.VARIANTS)
    for entry in rep['variants'].values():
        assert entry['ms'] > 0 and entry['images_per_sec'] > 0
    assert rep['variants']['bn_relu']['bn_relu_fused'] > 0
    assert rep['variants']['unscaled']['merges_unscaled'] > 0
    step = rep['variants']['step']
    assert step['bn_relu_fused'] == step['merges_unscaled'] == 0
    assert 0 < rep['update_share'] < 1
    text = step_parts.format_report(rep)
    assert 'bn_relu saves' in text and "merges' 1/K costs" in text


def test_unscaled_merge_drops_only_the_scale():
    """The pricing variant changes exactly the merge: no 1/K operator left in the graph, and
    the networks' own graph keeps it."""
    net, ref = _net(5), _net(5)
    n = step_parts.drop_merge_scales(net)
    assert n > 0
    x = mx.nd.random.normal(shape=(2, 3, 32, 32))
    scaled = [k for k in json.loads(ref(mx.sym.var('data')).tojson())['nodes']
              if k['op'] == '_mul_scalar']
    unscaled = [k for k in json.loads(net(mx.sym.var('data')).tojson())['nodes']
                if k['op'] == '_mul_scalar']
    assert len(scaled) == n and not unscaled
    assert not np.allclose(net(x).asnumpy(), ref(x).asnumpy())


def test_step_parts_rejects_bad_arguments(capsys):
    import pytest
    for argv, word in ((['--model-kwargs', '[1]'], 'JSON object'),
                       (['--model-kwargs', '{L: 6}'], 'JSON object'),
                       (['--rounds', '0'], '--rounds')):
        with pytest.raises(SystemExit) as e:
            step_parts.parse_args(argv)
        assert e.value.code == 2
        assert word in capsys.readouterr().err
