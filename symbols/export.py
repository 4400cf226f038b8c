"""Export a Gluon network as a static MXNet model: `prefix-symbol.json` + `prefix-NNNN.params`.

The files load with `gluon.SymbolBlock.imports(prefix-symbol.json, ['data'], params)` and with
the Module API (`mx.model.load_checkpoint(prefix, epoch)`); the single input is named `data`.
Files are written beside their final names and renamed into place, so an interrupted export
never leaves a pair that looks complete.
"""
import json
import os

import mxnet as mx

from .atomic import atomic_path


def input_shape_for(net, batch_size=1):
    """(N, 3, H, W) a network expects: 224 for the ImageNet stem, 32 otherwise."""
    config = getattr(net, 'config', {})
    size = 224 if config.get('stem_kind') == 'imagenet' else 32
    return (batch_size, 3, size, size)


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
        with open(sym_file, 'w') as f:
            json.dump(graph, f, indent=2)
    return rewritten


def export_model(net, prefix, epoch=0, input_shape=None, ctx=None, metadata=None):
    """Hybridize (static_alloc, static_shape), run one forward pass and export.

    Returns (symbol_file, params_file). `metadata`, when given, is written to
    `prefix-meta.json` (model name, arguments, classes, input shape) so that tools can rebuild
    or describe the model without guessing.
    """
    ctx = ctx or mx.cpu()
    input_shape = tuple(input_shape or input_shape_for(net))
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros(input_shape, ctx=ctx)).wait_to_read()
    sym_file, params_file = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    # Gluon writes both files itself; export to a temporary prefix, then rename each file.
    tmp_prefix = os.path.join(directory, '.%s.partial' % os.path.basename(prefix))
    net.export(tmp_prefix, epoch=epoch)
    pooling_for_deployment('%s-symbol.json' % tmp_prefix)
    os.replace('%s-symbol.json' % tmp_prefix, sym_file)
    os.replace('%s-%04d.params' % (tmp_prefix, epoch), params_file)
    if metadata is not None:
        meta = dict(metadata, input_shape=list(input_shape), epoch=epoch)
        with atomic_path('%s-meta.json' % prefix) as tmp:
            with open(tmp, 'w') as f:
                json.dump(meta, f, indent=1, sort_keys=True)
    return sym_file, params_file


def import_model(prefix, epoch=0, ctx=None):
    """Load an exported model as a SymbolBlock."""
    ctx = ctx or mx.cpu()
    sym_file, params_file = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    for f in (sym_file, params_file):
        if not os.path.exists(f):
            raise FileNotFoundError('%s not found: export the model first (python tools/export.py '
                                    '--model NAME --prefix %s)' % (f, prefix))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(sym_file, ['data'], params_file, ctx=ctx)


def export_onnx(prefix, epoch=0, input_shape=(1, 3, 32, 32), onnx_file=None):
    """Convert an exported model to ONNX with MXNet's own exporter (mx.onnx). The opset is the
    installed onnx package's: onnx 1.14.x gives opset 19, which onnxruntime 1.16 runs."""
    import numpy as np
    onnx_file = onnx_file or '%s.onnx' % prefix
    with atomic_path(onnx_file) as tmp:
        mx.onnx.export_model('%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch),
                             [tuple(input_shape)], np.float32, tmp)
    return onnx_file
