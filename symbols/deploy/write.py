"""Writing exports: a Gluon network, or a (symbol, parameters) graph, as one verified set of
files (files.ExportSet) with the meta file saying how to feed it."""
import mxnet as mx
from mxnet.gluon import nn

from .files import ExportSet, export_meta, input_shape_for
from .load import load_checkpoint
from .mixin import DeployableExport
from .passes import Normalize, bfloat16_graph, pooling_for_deployment


def export_model(net, prefix, epoch=0, input_shape=None, ctx=None, metadata=None, mean=None,
                 std=None, raw_input=False):
    """Hybridize (static_alloc, static_shape), run one forward pass and export.

    Returns (symbol_file, params_file). `metadata`, when given, is written to
    `prefix-meta.json` (model name, arguments, classes) with the input's description (shape,
    layout, channel order, and with `mean`/`std` the normalisation) so that tools and downstream
    code can rebuild, describe and feed the model without guessing. `raw_input=True` puts the
    normalisation into the graph (GluonCV's export_block(preprocess=...)): the exported model
    then takes raw 0-255 pixels.
    """
    ctx = ctx or mx.cpu()
    input_shape = tuple(input_shape or input_shape_for(net))
    if raw_input:
        if mean is None or std is None:
            raise ValueError('raw_input needs the mean and std the network was trained with')
        normalize = Normalize(mean, std, prefix='normalize_')
        normalize.initialize(ctx=ctx)
        wrapper = nn.HybridSequential(prefix='')
        wrapper.add(normalize, net)
        net = wrapper
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros(input_shape, ctx=ctx)).wait_to_read()
    with ExportSet(prefix, epoch) as files:
        net.export(files.temporary_prefix, epoch=epoch)
        if not isinstance(net, DeployableExport):  # a plain Gluon block (GluonCV's, a wrapper)
            pooling_for_deployment(files.temporary('symbol'))
        if metadata is not None:
            files.meta(export_meta(metadata, input_shape, epoch, mean, std, raw_input))
    return files.final('symbol'), files.final('params')


def save_symbol_model(prefix, sym, arg_params, aux_params, epoch=0, metadata=None):
    """Write a (symbol, arg_params, aux_params) model as prefix-symbol.json + prefix-NNNN.params
    (+ prefix-meta.json with `metadata`), as one verified set (ExportSet)."""
    with ExportSet(prefix, epoch) as files:
        # Symbol.save drops AMP's casts unless told not to, which would make a bfloat16 model
        # a float32 one again
        sym.save(files.temporary('symbol'), remove_amp_cast=False)
        save_dict = {'arg:%s' % k: v.as_in_context(mx.cpu()) for k, v in arg_params.items()}
        save_dict.update({'aux:%s' % k: v.as_in_context(mx.cpu()) for k, v in aux_params.items()})
        mx.nd.save(files.temporary('params'), save_dict)
        if metadata is not None:
            files.meta(metadata)
    return files.final('symbol'), files.final('params')


def export_bfloat16(prefix, out_prefix, epoch=0, input_shape=None, metadata=None):
    """Write `out_prefix`, the exported float32 model `prefix` computing in bfloat16 where
    oneDNN has it (passes.bfloat16_graph; parameters stay float32, the output is float32): the
    inference path for CPUs with native bfloat16, beside float32 and INT8. Downstream code
    loads it like any exported model (Module, SymbolBlock). `metadata`: the -meta.json of the
    set. Returns (symbol_file, params_file)."""
    sym, arg_params, aux_params = bfloat16_graph(*load_checkpoint(prefix, epoch))
    return save_symbol_model(out_prefix, sym, arg_params, aux_params, epoch, metadata)
