"""Inference graph passes: each gives the same function in a form a deployment path runs
faster or takes at all.

    pooling_for_deployment      the training-time spatial mean -> Pooling, in a symbol file
    Normalize                   raw 0-255 pixels in, for exports that normalise in their graph
    rewrite_for_onednn,         the CPU (oneDNN) inference graph: merge scales folded into the
    fold_merge_scales,          weights, operators renamed so that Conv+BN(+sum)+ReLU fuse; the
    optimize_exported           graph fp32 and INT8 (deploy.int8) start from
    bfloat16_graph              that graph computing in bfloat16
"""
import json
import warnings

import mxnet as mx
from mxnet.gluon import HybridBlock

from dmrnet.utils.files import atomic_path


def pooling_for_deployment(sym_file):
    """Rewrite, in an exported symbol file, each global average pooling written as a spatial
    mean (layers.GlobalAvgPool: axes (2, 3), dimensions kept; faster to train on oneDNN) as the
    Pooling operator, the same function, which deployment tools expect: oneDNN's fused inference
    and INT8 graphs, and ONNX (GlobalAveragePool; MXNet 1.9.1 would export the mean as a
    ReduceMean that onnx 1.14's checker rejects). Returns the number of nodes rewritten."""
    with open(sym_file) as f:
        graph = json.load(f)
    rewritten = 0
    for node in graph['nodes']:
        attrs = node.get('attrs', {})
        if (node['op'] == 'mean'
                and attrs.get('axis', '').replace(' ', '') in ('(2,3)', '[2,3]')
                and attrs.get('keepdims', '').lower() in ('true', '1')
                and attrs.get('exclude', 'False').lower() in ('false', '0')):
            node['op'] = 'Pooling'
            node['attrs'] = {'global_pool': 'True', 'kernel': '(1, 1)', 'pool_type': 'avg'}
            rewritten += 1
    if rewritten:
        with atomic_path(sym_file) as tmp:
            with open(tmp, 'w') as f:
                json.dump(graph, f, indent=2)
    return rewritten


class Normalize(HybridBlock):
    """Raw pixels (0-255, RGB, NCHW) -> what the networks were trained on: (x - mean) / std per
    channel, the dataset's own statistics held as constants of the graph."""

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        shape = (1, len(mean), 1, 1)
        with self.name_scope():
            self.mean = self.params.get_constant('mean', mx.nd.array(mean).reshape(shape))
            self.std = self.params.get_constant('std', mx.nd.array(std).reshape(shape))

    def hybrid_forward(self, F, x, mean, std):
        return F.broadcast_div(F.broadcast_sub(x, mean), std)


def rewrite_for_onednn(sym):
    """The same function with operators oneDNN's graph fusion recognises: `relu` -> Activation
    (relu) and two-input `add_n` -> elemwise_add, so that Conv+BN(+sum)+ReLU fuse into one
    oneDNN convolution. Numerically identical (both compute the same sums and max(x, 0))."""
    graph = json.loads(sym.tojson())
    for node in graph['nodes']:
        if node['op'] == 'relu':
            node['op'] = 'Activation'
            node['attrs'] = dict(node.get('attrs', {}), act_type='relu')
        elif node['op'] == 'add_n' and len(node['inputs']) == 2:
            node['op'] = 'elemwise_add'
            node['attrs'] = {k: v for k, v in node.get('attrs', {}).items()
                             if k != 'num_args'}
    return mx.sym.load_json(json.dumps(graph))


class NotFoldable(ValueError):
    pass


def fold_merge_scales(sym, arg_params):
    """Remove the merge's scalar multiply (m = (1/K) sum_k x_k) from an inference graph by
    carrying a positive scale c per tensor (true value = c x stored value) and folding it into
    the parameters: into the next convolution's / FC's weights, and into the gamma and beta of
    the BatchNorm whose output is added to a scaled tensor. ReLU, pooling, flatten and sums
    commute with positive scales, so the graph computes the same function (up to float
    rounding) with no element-wise multiply left, and the whole merge-and-run block becomes
    Conv+BN(+sum)+ReLU chains that oneDNN fuses, in fp32 and INT8 alike.

    Returns (symbol, arg_params); raises NotFoldable for graphs it does not understand (the
    caller then keeps the graph as it is)."""
    graph = json.loads(sym.tojson())
    nodes = graph['nodes']
    args = dict(arg_params)
    consumers = {}
    for i, node in enumerate(nodes):
        for src in node['inputs']:
            consumers[src[0]] = consumers.get(src[0], 0) + 1
    for h in graph['heads']:
        consumers[h[0]] = consumers.get(h[0], 0) + 1
    scale, replaced, flexible = {}, {}, set()

    def ref(src):
        while src[0] in replaced:
            src = replaced[src[0]]
        return src

    def rescale_bn(i, target):
        node = nodes[i]
        if node['attrs'].get('fix_gamma', 'True').lower() in ('true', '1'):
            raise NotFoldable('%s: fixed gamma' % node['name'])
        for k in (1, 2):  # gamma, beta
            name = nodes[node['inputs'][k][0]]['name']
            args[name] = args[name] / target
        scale[i] = target
        flexible.discard(i)

    for i, node in enumerate(nodes):
        op = node['op']
        node.setdefault('attrs', {})
        ins = [s[0] for s in node['inputs']]  # original ids: their scales (a removed
        node['inputs'] = [ref(list(s)) for s in node['inputs']]  # multiply has its own)
        if op == 'null':
            scale[i] = 1.0
        elif op in ('Convolution', 'FullyConnected'):
            c = scale[ins[0]]
            if c != 1.0:
                w = nodes[ins[1]]['name']
                if consumers.get(ins[1], 0) != 1 or w not in args:
                    raise NotFoldable('%s: shared or unknown weight' % node['name'])
                args[w] = args[w] * c
            scale[i] = 1.0
        elif op == 'BatchNorm':
            if scale[ins[0]] != 1.0:
                raise NotFoldable('%s: scaled input' % node['name'])
            scale[i] = 1.0
            if consumers.get(i, 0) == 1:
                flexible.add(i)
        elif op in ('relu', 'Activation', 'Pooling', 'Flatten', 'flatten'):
            if op == 'Activation' and node['attrs'].get('act_type') != 'relu':
                if scale[ins[0]] != 1.0:
                    raise NotFoldable('%s: %s' % (node['name'], node['attrs'].get('act_type')))
            if op == 'Pooling' and node['attrs'].get('pool_type', 'max') not in ('max', 'avg'):
                raise NotFoldable(node['name'])
            scale[i] = scale[ins[0]]
        elif op == '_mul_scalar' and float(node['attrs'].get('scalar', 'nan')) > 0:
            scale[i] = scale[ins[0]] * float(node['attrs']['scalar'])
            replaced[i] = node['inputs'][0]
        elif op in ('elemwise_add', 'add_n', '_plus', 'broadcast_add') and op != 'broadcast_add':
            fixed = {scale[j] for j in ins if j not in flexible}
            if len(fixed) > 1:
                raise NotFoldable('%s: inputs at different scales' % node['name'])
            target = fixed.pop() if fixed else 1.0
            for j in set(ins):
                if j in flexible and scale[j] != target:
                    rescale_bn(j, target)
                flexible.discard(j)
            scale[i] = target
        else:
            if any(scale[j] != 1.0 for j in ins):
                raise NotFoldable('%s (%s) takes a scaled input' % (node['name'], op))
            scale[i] = 1.0
        for j in ins:  # a BN output consumed by something else is fixed from now on
            if op not in ('elemwise_add', 'add_n', '_plus'):
                flexible.discard(j)
    if any(scale[h[0]] != 1.0 for h in graph['heads']):
        raise NotFoldable('the output is scaled')
    heads = [ref(list(h)) for h in graph['heads']]
    keep = [i for i in range(len(nodes)) if i not in replaced]
    new_id = {old: new for new, old in enumerate(keep)}
    new_nodes = []
    for old in keep:
        node = nodes[old]
        node['inputs'] = [[new_id[s[0]]] + list(s[1:]) for s in node['inputs']]
        new_nodes.append(node)
    graph['nodes'] = new_nodes
    graph['arg_nodes'] = [i for i, n in enumerate(new_nodes) if n['op'] == 'null']
    graph['heads'] = [[new_id[h[0]]] + list(h[1:]) for h in heads]
    graph.pop('node_row_ptr', None)
    return mx.sym.load_json(json.dumps(graph)), args


def optimize_exported(sym, arg_params):
    """The inference graph the CPU path runs: merge scales folded (when the graph allows it),
    operators renamed for oneDNN's fusion. Returns (symbol, arg_params, folded)."""
    try:
        sym, arg_params = fold_merge_scales(sym, arg_params)
        folded = True
    except NotFoldable:
        folded = False
    return rewrite_for_onednn(sym), arg_params, folded


def bfloat16_graph(sym, arg_params, aux_params):
    """The oneDNN inference graph (optimize_exported: merge scales folded, operators renamed so
    that oneDNN fuses them) computing in bfloat16 where oneDNN has it, converted by MXNet's AMP
    with its casts kept; parameters stay float32 and so does the output. Returns (symbol,
    arg_params, aux_params).

    oneDNN's subgraph pass then fuses Conv+BN+ReLU(+sum) in bfloat16 when the model is bound.
    Converting the plain graph leaves BatchNorm, ReLU and the sums as separate bfloat16
    primitives (much slower: docs/PERFORMANCE.md has the measurement); converting an
    already-fused graph leaves its fused convolutions in float32."""
    from mxnet.contrib import amp
    sym, arg_params, _ = optimize_exported(sym, arg_params)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return amp.convert_model(sym, arg_params, aux_params, target_dtype='bfloat16',
                                 cast_optional_params=False)
