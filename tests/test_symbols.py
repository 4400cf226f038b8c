"""The model zoo: exact parameter counts, the equations of Section 3, the fused form, export."""
import json

import numpy as np
import pytest

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

from dmrnet.symbols import (InceptionLikeBlock, MergeAndRunBlock, IdentityStreamsBlock,
                            count_params, get_family_list, get_model, get_model_list,
                            merge_and_run_matrix)
from dmrnet.symbols.deploy import export_model, export_onnx, import_model, input_shape_for
from dmrnet.symbols.fuse import branch_to_fused, fused_to_branch
from dmrnet.symbols.layers import BN_EPS, BN_MOMENTUM

from dmrnet.paper import AUTHORS_OTHER, AUTHORS_TABLE2


def close(a, b, rtol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(float(np.abs(b).max()), 1e-6)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def rand(*shape, seed=0):
    return mx.nd.array(np.random.RandomState(seed).standard_normal(shape).astype('float32'))


@pytest.mark.parametrize('L', sorted(AUTHORS_TABLE2))
@pytest.mark.parametrize('column,family', enumerate(['resnet', 'dilnet', 'dmrnet']))
def test_table2_counts_equal_authors(L, column, family):
    assert count_params(get_model(family, L=L)) == AUTHORS_TABLE2[L][column]


@pytest.mark.parametrize('name', sorted(AUTHORS_OTHER))
def test_table3_table4_counts_equal_authors(name):
    assert count_params(get_model(name)) == AUTHORS_OTHER[name]


def test_resnet110_equals_gluoncv_resnet110_v1():
    from gluoncv.model_zoo import get_model as gcv_model
    ref = gcv_model('cifar_resnet110_v1', classes=10)
    ref.initialize()
    ref(mx.nd.zeros((1, 3, 32, 32)))
    assert count_params(get_model('resnet110')) == count_params(ref) == 1730714


def test_layer_details_follow_authors_release():
    net = get_model('dmrnet', L=12)
    bns, convs = [], []
    net.apply(lambda b: bns.append(b) if isinstance(b, nn.BatchNorm) else
              convs.append(b) if isinstance(b, nn.Conv2D) else None)
    assert bns and convs
    for bn in bns:
        assert bn._kwargs['momentum'] == BN_MOMENTUM == 0.9
        assert bn._kwargs['eps'] == BN_EPS == 2e-5
        assert bn._kwargs['fix_gamma'] is False
    assert all(c.bias is None for c in convs)


@pytest.mark.parametrize('K', [2, 3, 4])
def test_merge_and_run_matrix_is_idempotent(K):
    M = merge_and_run_matrix(K, d=3)
    assert M.shape == (3 * K, 3 * K)
    for n in range(2, 8):
        np.testing.assert_allclose(np.linalg.matrix_power(M, n), M, atol=1e-12)
    assert not np.allclose(M, np.eye(3 * K))


def _init(block, *inputs):
    block.initialize()
    block(*inputs)
    # Non-trivial BN statistics so that inference-mode tests exercise them.
    for name, p in block.collect_params().items():
        if name.endswith(('running_mean', 'beta')):
            p.set_data(rand(*p.shape, seed=len(name)) * 0.1)
        elif name.endswith(('running_var', 'gamma')):
            p.set_data(1 + rand(*p.shape, seed=len(name)).abs() * 0.5)
    return block


@pytest.mark.parametrize('project', [False, True])
def test_two_branch_block_computes_eq3(project):
    cin, c, stride = (8, 16, 2) if project else (16, 16, 1)
    x1, x2 = rand(2, cin, 8, 8, seed=1), rand(2, cin, 8, 8, seed=2)
    blk = _init(MergeAndRunBlock(cin, c, stride), x1, x2)
    y1, y2 = blk(x1, x2)
    p1 = blk.projs[0](x1) if project else x1
    p2 = blk.projs[1](x2) if project else x2
    m = 0.5 * (p1 + p2)
    close(y1.asnumpy(), mx.nd.relu(blk.branches[0](x1) + m).asnumpy())
    close(y2.asnumpy(), mx.nd.relu(blk.branches[1](x2) + m).asnumpy())


@pytest.mark.parametrize('K', [2, 3])
def test_k_branch_block_is_relu_of_h_plus_M_x(K):
    """Eq. (4) generalised (Section 5): [y_k] = ReLU(H(x) + M x) with M = K x K blocks of I/K."""
    xs = [rand(2, 8, 6, 6, seed=k) for k in range(K)]
    blk = _init(MergeAndRunBlock(8, 8, 1, branches=K), *xs)
    ys = blk(*xs)
    M = merge_and_run_matrix(K, d=1)
    stacked = np.stack([x.asnumpy() for x in xs])                    # (K, N, C, H, W)
    mixed = np.tensordot(M, stacked, axes=1)                          # M applied across streams
    for k in range(K):
        expect = np.maximum(blk.branches[k](xs[k]).asnumpy() + mixed[k], 0)
        close(ys[k].asnumpy(), expect)


def test_last_block_counts_the_merge_once():
    x1, x2 = rand(2, 8, 6, 6, seed=3), rand(2, 8, 6, 6, seed=4)
    blk = _init(MergeAndRunBlock(8, 8, 1, head='once'), x1, x2)
    (y,) = blk(x1, x2)
    expect = mx.nd.relu(0.5 * (x1 + x2) + blk.branches[0](x1) + blk.branches[1](x2))
    close(y.asnumpy(), expect.asnumpy())


def test_identity_streams_do_not_interact():
    x1, x2 = rand(2, 8, 6, 6, seed=5), rand(2, 8, 6, 6, seed=6)
    blk = _init(IdentityStreamsBlock(8, 8, 1), x1, x2)
    y1, y2 = blk(x1, x2)
    y1b, _ = blk(x1, rand(2, 8, 6, 6, seed=7))
    close(y1b.asnumpy(), y1.asnumpy(), rtol=1e-6)
    close(y1.asnumpy(), mx.nd.relu(x1 + blk.branches[0](x1)).asnumpy())
    # The merge-and-run block is the one that mixes the streams.
    mr = _init(MergeAndRunBlock(8, 8, 1), x1, x2)
    assert not np.allclose(mr(x1, x2)[0].asnumpy(), mr(x1, x2 * 2)[0].asnumpy())


def _fold_bn(conv_w, bn):
    """Inference-mode BN folded into the preceding convolution: (weight, bias)."""
    gamma, beta = bn.gamma.data(), bn.beta.data()
    mean, var = bn.running_mean.data(), bn.running_var.data()
    scale = gamma / mx.nd.sqrt(var + BN_EPS)
    return conv_w * scale.reshape((-1, 1, 1, 1)), beta - mean * scale


def test_inception_like_block_equals_one_wide_branch():
    """Figure 4: two two-layer branches (16 -> 16 -> 16) are one branch 16 -> 32 -> 16.
    With BatchNorm in inference mode folded into the convolutions the identity is exact."""
    x = rand(2, 16, 8, 8, seed=8)
    blk = _init(InceptionLikeBlock(16, 16, 1, branches=2), x)
    firsts = [_fold_bn(b[0][0].weight.data(), b[0][1]) for b in blk.branches]
    seconds = [_fold_bn(b[1][0].weight.data(), b[1][1]) for b in blk.branches]
    w1 = mx.nd.concat(*[w for w, _ in firsts], dim=0)                 # (32, 16, 3, 3)
    b1 = mx.nd.concat(*[b for _, b in firsts], dim=0)
    w2 = mx.nd.concat(*[w for w, _ in seconds], dim=1)                # (16, 32, 3, 3)
    b2 = seconds[0][1] + seconds[1][1]
    h = mx.nd.relu(mx.nd.Convolution(x, w1, b1, kernel=(3, 3), pad=(1, 1), num_filter=32))
    h = mx.nd.Convolution(h, w2, b2, kernel=(3, 3), pad=(1, 1), num_filter=16)
    close(blk(x).asnumpy(), mx.nd.relu(x + h).asnumpy())


FUSE_CASES = [dict(family='dmrnet', L=12), dict(family='dmrnet', L=18, branches=3),
              dict(family='dmrnet', L=12, share=False), dict(family='identity', L=12),
              dict(family='dmrnet_imagenet', stages=(1, 1, 1, 1), classes=10)]


@pytest.mark.parametrize('case', FUSE_CASES, ids=lambda c: '-'.join(map(str, c.values())))
def test_fused_form_equals_branch_form(case):
    kwargs = dict(case)
    family = kwargs.pop('family')
    branch, fused = get_model(family, **kwargs), get_model(family, fused=True, **kwargs)
    size = 64 if family.endswith('imagenet') else 16
    x = rand(4, 3, size, size, seed=9)
    _init(branch, x)
    fused.initialize()
    branch_to_fused(branch, fused)
    # Inference mode (running statistics), float32 as deployed.
    close(fused(x).asnumpy(), branch(x).asnumpy())
    # Training mode (batch statistics) with gradients in float64: in float32 the two forms'
    # different summation orders flip the odd max-pool or ReLU decision near a tie, which moves
    # a whole gradient entry; in float64 the forms agree to rounding (~1e-16).
    for net in (branch, fused):
        net.cast('float64')
    x = x.astype('float64')
    outs, grads = [], []
    for net in (branch, fused):
        xi = x.copy()
        xi.attach_grad()
        with autograd.record():
            out = net(xi)
            loss = (out * rand(*out.shape, seed=10).astype('float64')).sum()
        loss.backward()
        outs.append(out.asnumpy())
        grads.append(xi.grad.asnumpy())
    close(outs[1], outs[0], rtol=1e-10)
    close(grads[1], grads[0], rtol=1e-10)
    # Parameter gradients: the fused gradient is the branch gradients stacked.
    grad_as_fused = get_model(family, fused=True, **kwargs)
    grad_as_fused.initialize()
    grad_as_fused.cast('float64')
    for p in branch.collect_params().values():
        if p.grad_req != 'null':
            p.set_data(p.grad())
    branch_to_fused(branch, grad_as_fused)
    fused_grads = {k: p.grad().asnumpy() for k, p in fused._collect_params_with_prefix().items()
                   if p.grad_req != 'null'}
    for k, p in grad_as_fused._collect_params_with_prefix().items():
        if k in fused_grads:
            close(fused_grads[k], p.data().asnumpy(), rtol=1e-10)


def test_fused_to_branch_roundtrip():
    a, b, c = get_model('dmrnet', L=12), get_model('dmrnet', L=12, fused=True), get_model('dmrnet', L=12)
    x = rand(2, 3, 16, 16, seed=11)
    _init(a, x)
    b.initialize()
    c.initialize()
    branch_to_fused(a, b)
    fused_to_branch(b, c)
    close(c(x).asnumpy(), a(x).asnumpy(), rtol=1e-6)


def test_rir_with_zero_cross_weights_is_a_resnet_layer():
    """With W_tr = W_rt = W_tt = 0 the generalized layer's residual stream is a single-layer
    residual block r' = ReLU(BN(W_rr * r + r)) (the RiR paper)."""
    from dmrnet.symbols.rir import GeneralizedResidualLayer
    c = 6
    x = rand(2, 2 * c, 8, 8, seed=12)
    layer = _init(GeneralizedResidualLayer(c, c), x)
    w = layer.conv.weight.data().asnumpy()
    w[:c, c:] = 0
    w[c:, :] = 0
    layer.conv.weight.set_data(mx.nd.array(w))
    r = x[:, :c]
    conv_rr = mx.nd.Convolution(r, mx.nd.array(w[:c, :c]), kernel=(3, 3), pad=(1, 1),
                                num_filter=c, no_bias=True)
    bn = layer.bn
    scale = bn.gamma.data()[:c] / mx.nd.sqrt(bn.running_var.data()[:c] + BN_EPS)
    shift = bn.beta.data()[:c] - bn.running_mean.data()[:c] * scale
    expect = mx.nd.relu(mx.nd.broadcast_add(mx.nd.broadcast_mul(conv_rr + r, scale.reshape((1, -1, 1, 1))),
                                            shift.reshape((1, -1, 1, 1))))
    close(layer(x)[:, :c].asnumpy(), expect.asnumpy())


def test_rir_count_is_reported_not_tuned():
    # 9.46M conv/FC weights (the RiR paper's count) + BN and the four 1x1 projections.
    n = count_params(get_model('rir18'))
    assert 9_460_000 < n < 9_600_000


@pytest.mark.parametrize('blocks', [3, 6])
def test_pathnet_is_a_plain_net_of_depth_2L_plus_2(blocks):
    L = 9
    net = get_model('pathnet', L=L, blocks=blocks)
    convs = []
    net.apply(lambda b: convs.append(b) if isinstance(b, nn.Conv2D) else None)
    three_by_three = [c for c in convs if c._kwargs['kernel'] == (3, 3)]
    assert len(three_by_three) + 1 == 2 * L + 2        # conv0 + 2L body layers, + the FC layer
    assert len(net.blocks) == blocks
    assert len(convs) - len(three_by_three) == 2       # the two 1x1 projections


def test_errors_list_valid_values():
    with pytest.raises(ValueError, match='(?s)families: .*dmrnet.*presets: .*dmrnet56'):
        get_model('dmrnet57')
    with pytest.raises(ValueError, match=r'multiple of 6 \(Table 2 uses L in 12, 18'):
        get_model('dmrnet', L=50)
    with pytest.raises(ValueError, match='multiple of 3'):
        get_model('resnet', L=10)
    with pytest.raises(ValueError, match='does not take depth; it takes: L, width'):
        get_model('dmrnet', depth=56)
    with pytest.raises(ValueError, match='stages must be 4'):
        get_model('dmrnet_imagenet', stages=(2, 2, 8))


def test_parameter_names_are_deterministic():
    first = sorted(get_model('dmrnet', L=12).collect_params().keys())
    get_model('dmrnet', L=24)
    get_model('resnet', L=12)
    assert sorted(get_model('dmrnet', L=12).collect_params().keys()) == first
    assert all(k.startswith('dmrnet_stem_') or k.startswith('dmrnet_stage') or
               k.startswith('dmrnet_output_') for k in first)


EXTRA_CONFIGS = [('dmrnet', dict(L=12, fused=True)), ('dmrnet', dict(L=18, branches=3)),
                 ('dilnet', dict(L=18, branches=3)), ('pathnet', dict(L=9, blocks=6)),
                 ('identity', dict(L=12, fused=True, share=False)),
                 ('dmrnet', dict(L=12, width=2, classes=100))]
ALL_MODELS = [(n, {}) for n in get_model_list()] + EXTRA_CONFIGS


def test_every_family_is_covered():
    covered = {n for n, _ in EXTRA_CONFIGS} | {
        __import__('dmrnet.symbols', fromlist=['preset']).preset(n)['family'] for n in get_model_list()}
    assert covered == set(get_family_list())


@pytest.mark.parametrize('name,kwargs', ALL_MODELS,
                         ids=[n + ''.join('-%s%s' % kv for kv in k.items()) for n, k in ALL_MODELS])
def test_export_loads_in_symbolblock_and_module(name, kwargs, tmp_path):
    net = get_model(name, **kwargs)
    net.initialize()
    shape = input_shape_for(net, batch_size=2)
    x = rand(*shape, seed=13)
    prefix = str(tmp_path / 'model')
    export_model(net, prefix, metadata={'model': name})
    expect = net(x).asnumpy()
    assert (tmp_path / 'model-symbol.json').exists() and (tmp_path / 'model-0000.params').exists()
    assert not [p for p in tmp_path.iterdir() if 'partial' in p.name]
    close(import_model(prefix)(x).asnumpy(), expect)
    sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
    assert sym.list_inputs()[0] == 'data'
    assert [i for i in sym.list_inputs() if i not in args and i not in auxs] == ['data']
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind([('data', shape)], for_training=False)
    mod.set_params(args, auxs)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    close(mod.get_outputs()[0].asnumpy(), expect)


def _ops(sym):
    return [n['op'] for n in json.loads(sym.tojson())['nodes']]


@pytest.mark.parametrize('name', ['dmrnet14', 'resnet_imagenet', 'identity50_noshare', 'rir18'])
def test_classifier_trains_with_mean_and_exports_pooling(name, tmp_path):
    """Networks pool with a spatial mean (the fast oneDNN training path); exported files carry
    the Pooling operator instead, one per classifier, with the same outputs."""
    net = get_model(name, **({'stages': (1, 1, 1, 1)} if name == 'resnet_imagenet' else {}))
    net.initialize()
    stem_pools = 1 if name == 'resnet_imagenet' else 0  # the ImageNet stem's max-pooling
    with autograd.record():  # the graph a training step traces
        traced = _ops(net(mx.sym.var('data')))
    heads = traced.count('mean')
    assert heads >= 1 and traced.count('Pooling') == stem_pools
    prefix = str(tmp_path / 'm')
    export_model(net, prefix)
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    ops = _ops(sym)
    assert 'mean' not in ops and ops.count('Pooling') == heads + stem_pools
    x = rand(*input_shape_for(net, batch_size=2), seed=3)
    close(import_model(prefix)(x).asnumpy(), net(x).asnumpy())


def test_pooling_rewrite_only_global_means(tmp_path):
    from dmrnet.symbols.deploy import pooling_for_deployment
    data = mx.sym.var('data')
    outs = [mx.sym.mean(data, axis=(2, 3), keepdims=True),  # global average pooling
            mx.sym.mean(data, axis=(2, 3)),                 # (N, C): not Pooling's shape
            mx.sym.mean(data, axis=1, keepdims=True),
            mx.sym.mean(data, axis=(2, 3), keepdims=True, exclude=True)]
    path = tmp_path / 's-symbol.json'
    mx.sym.Group(outs).save(str(path))
    assert pooling_for_deployment(str(path)) == 1
    sym = mx.sym.load(str(path))
    assert _ops(sym).count('Pooling') == 1 and _ops(sym).count('mean') == 3
    x = rand(2, 3, 5, 5, seed=4)
    for k, ref in enumerate(outs):
        close(sym[k].eval(ctx=mx.cpu(), data=x)[0].asnumpy(),
              ref.eval(ctx=mx.cpu(), data=x)[0].asnumpy())


@pytest.mark.parametrize('name', ['dmrnet14', 'dilnet14', 'resnet26', 'identity50_noshare', 'rir18'])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    net = get_model(name)
    net.initialize()
    x = rand(2, 3, 32, 32, seed=14)
    prefix = str(tmp_path / name)
    export_model(net, prefix)
    session = ort.InferenceSession(export_onnx(prefix, input_shape=(1,) + x.shape[1:]),
                                   providers=['CPUExecutionProvider'])
    # the weights are initializers only (ONNX Runtime warned once per weight listed as input)
    assert [i.name for i in session.get_inputs()] == ['data']
    # the batch axis is dynamic: exported with an example of 1, run with 2 and 360 images
    close(session.run(None, {'data': x.asnumpy()})[0], net(x).asnumpy(), rtol=1e-3)
    if name == 'dmrnet14':
        big = rand(360, 3, 32, 32, seed=15)
        close(session.run(None, {'data': big.asnumpy()})[0], net(big).asnumpy(), rtol=1e-3)


def _trained_one_step(net, x):
    """One recorded step, so that the hybridized net's cached graph is the training graph."""
    net.hybridize()
    with autograd.record():
        loss = net(x).sum()
    loss.backward()


@pytest.mark.parametrize('how', ['net.export', 'export_block', 'export_block+preprocess'])
@pytest.mark.parametrize('trained', [False, True])
def test_standard_gluon_exports_are_deployable(how, trained, tmp_path):
    """Gluon's own `net.export` and GluonCV's `export_block` (with and without its preprocess
    wrapper) write the deployment graph (Pooling, not the training-time mean), fresh or after
    training, and mx.onnx converts it into a model onnxruntime runs with the same outputs."""
    ort = pytest.importorskip('onnxruntime')
    from gluoncv.utils import export_block
    net = get_model('dmrnet14')
    net.initialize()
    x = rand(2, 3, 32, 32, seed=21)
    if trained:
        _trained_one_step(net, x)
    prefix = str(tmp_path / 'm')
    if how == 'net.export':
        net.hybridize()
        net(x)
        net.export(prefix)
        feed, expect = x, net(x)
    elif how == 'export_block':
        export_block(prefix, net, data_shape=(3, 32, 32), preprocess=None, layout='CHW')
        feed, expect = x, net(x)
    else:  # GluonCV's default: a preprocess block in front takes raw HWC images
        export_block(prefix, net, data_shape=(32, 32, 3))
        raw = mx.nd.array(np.random.RandomState(5).randint(0, 256, (2, 32, 32, 3)),
                          dtype='float32')
        mean = mx.nd.array([123.675, 116.28, 103.53]).reshape((1, 3, 1, 1))
        std = mx.nd.array([58.395, 57.12, 57.375]).reshape((1, 3, 1, 1))
        feed, expect = raw, net((raw.transpose((0, 3, 1, 2)) - mean) / std)
    ops = _ops(mx.sym.load(prefix + '-symbol.json'))
    assert 'mean' not in ops and ops.count('Pooling') == 1
    session = ort.InferenceSession(export_onnx(prefix, input_shape=feed.shape),
                                   providers=['CPUExecutionProvider'])
    close(session.run(None, {'data': feed.asnumpy()})[0], expect.asnumpy(), rtol=1e-3)


def test_pretrained_weights_load_into_the_gluon_network(tmp_path, monkeypatch):
    """get_model(name, pretrained=DATASET) (GluonCV's convention) rebuilds the network from the
    kept export's meta and loads its parameters: it computes what the exported files compute."""
    from dmrnet.symbols import registry
    monkeypatch.setattr(registry, 'WEIGHTS_ROOT', str(tmp_path))
    trained = get_model('dmrnet14', classes=10)
    trained.initialize(mx.init.Uniform(0.5))
    prefix = str(tmp_path / 'toyset' / 'weights' / 'dmrnet14')
    x = rand(2, 3, 28, 28, seed=8)
    export_model(trained, prefix, input_shape=x.shape,
                 metadata=dict(model='dmrnet14', model_kwargs={'classes': 10}))
    net = get_model('dmrnet14', pretrained='toyset')
    close(net(x).asnumpy(), import_model(prefix)(x).asnumpy())
    close(net(x).asnumpy(), trained(x).asnumpy())
    with pytest.raises(ValueError, match=r'no resnet26 weights trained on toyset \(available: '
                                         r'dmrnet14 \(toyset\)\)'):
        get_model('resnet26', pretrained='toyset')
    # an installed copy away from the checkout: pointed at it, or told where it looked
    monkeypatch.setattr(registry, 'WEIGHTS_ROOT', str(tmp_path / 'site-packages'))
    with pytest.raises(ValueError, match=r'available: none; looked in .*site-packages.*'
                                         r'DMRNET_WEIGHTS_ROOT'):
        get_model('dmrnet14', pretrained='toyset')
    monkeypatch.setenv('DMRNET_WEIGHTS_ROOT', str(tmp_path))
    close(get_model('dmrnet14', pretrained='toyset')(x).asnumpy(), trained(x).asnumpy())
