"""Exported files back as runnable models: a SymbolBlock of an export, or its (symbol,
parameters) and blocks made of any graph (fp32, the oneDNN passes' or INT8)."""
import os
import warnings

import mxnet as mx

from .files import export_file, finish_export


def _missing(prefix, epoch):
    """The first of the export's symbol and params files that is not there, or None."""
    for f in (export_file(prefix, 'symbol'), export_file(prefix, 'params', epoch)):
        if not os.path.exists(f):
            return f
    return None


def import_model(prefix, epoch=0, ctx=None):
    """Load an exported model as a SymbolBlock."""
    ctx = ctx or mx.cpu()
    finish_export(prefix)
    missing = _missing(prefix, epoch)
    if missing:
        raise FileNotFoundError('%s not found: export the model first (python tools/export.py '
                                '--model NAME --prefix %s)' % (missing, prefix))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(export_file(prefix, 'symbol'), ['data'],
                                            export_file(prefix, 'params', epoch), ctx=ctx)


def load_checkpoint(prefix, epoch=0):
    """(symbol, arg_params, aux_params) of an exported model."""
    missing = _missing(prefix, epoch)
    if missing:
        raise FileNotFoundError('%s not found (export the model first: python '
                                'tools/export.py)' % missing)
    return mx.model.load_checkpoint(prefix, epoch)


def to_block(sym, arg_params, aux_params, ctx=None):
    """A SymbolBlock computing `sym` with the given parameters (fp32 or quantized)."""
    ctx = ctx or mx.cpu()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var('data')])
    params = block.collect_params()
    for name, value in list(arg_params.items()) + list(aux_params.items()):
        if name in params:
            params[name]._load_init(value, ctx, cast_dtype=True, dtype_source='saved')
    return block


def fp32_block(sym, arg_params, aux_params, ctx=None):
    """The exported fp32 model as it is, hybridized (the reference for the INT8 error).

    (Gluon's `SymbolBlock.optimize_for(backend='MKLDNN')` is not used: in MXNet 1.9.1 it hands
    a projection's 1x1 weight to a 3x3 convolution of a merge-and-run block and fails with
    'Shape inconsistent'; `Symbol.get_backend_symbol('MKLDNN')` works.)"""
    block = to_block(sym, arg_params, aux_params, ctx)
    block.hybridize(static_alloc=True, static_shape=True)
    return block
