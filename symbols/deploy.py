"""From a trained Gluon network to deployable files, and the graph passes that make them fast.

Exported models are MXNet's static format, `prefix-symbol.json` + `prefix-NNNN.params`: they
load with `gluon.SymbolBlock.imports(prefix-symbol.json, ['data'], params)` and with the Module
API (`mx.model.load_checkpoint(prefix, epoch)`); the single input is named `data`.

    export_model / import_model / export_onnx   write and read those files; a model's files
                                                are written as a set (ExportSet: verified, then
                                                moved into place; see its docstring)
    DeployableExport                            makes `net.export(...)` (and GluonCV's
                                                `export_block`) write the same deployment graph
    pooling_for_deployment                      the training-time spatial mean -> Pooling
    fold_merge_scales, rewrite_for_onednn,      inference graph passes for oneDNN (fp32, INT8)
    optimize_exported
    load_checkpoint, to_block, fp32_block,      exported files -> runnable blocks; INT8
    quantize, save_symbol_model                 quantization with MXNet's oneDNN tooling
"""
import errno
import glob
import json
import logging
import os
import warnings

import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from dmrnet.utils.files import atomic_path, remove_stale_partials, write_json

# INT8 calibration: 'naive' (min/max of the layer outputs) kept the test error within noise of
# fp32 on the digits and calibrates in seconds; 'entropy' is offered too.
DEFAULT_CALIB_MODE = 'naive'
DEFAULT_NUM_CALIB = 512


def input_shape_for(net, batch_size=1, meta=None):
    """(N, C, H, W) a network expects: the shape an export's `meta` records (Fashion-MNIST
    exports take 28 px), else 224 for the ImageNet stem and 32 otherwise (CIFAR's size, a guess
    for networks that know nothing of their data: every network pools globally)."""
    recorded = recorded_input_shape(meta)
    if recorded is not None:
        return (batch_size,) + recorded
    config = getattr(net, 'config', {})
    size = 224 if config.get('stem_kind') == 'imagenet' else 32
    return (batch_size, 3, size, size)


# ------------------------------------------------------------------------------------------
# An export's meta file: the one reader of how to feed an exported model

def meta_path(prefix):
    return '%s-meta.json' % prefix


def read_export_meta(prefix):
    """The `-meta.json` of the export `prefix` as a dict, or None when the export has none
    (exports made by other tools); ValueError naming the file when it cannot be read."""
    path = meta_path(prefix)
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError('%s is not a readable meta file (%s): export the model again'
                         % (path, getattr(e, 'strerror', None) or e)) from None
    if not isinstance(meta, dict):
        raise ValueError('%s is not a meta file (not a JSON object): export the model again'
                         % path)
    return meta


def recorded_input_shape(meta):
    """(C, H, W) of one input as `meta` records it, or None."""
    if not meta:
        return None
    shape = (meta.get('input') or {}).get('shape') or meta.get('input_shape')
    return tuple(int(v) for v in shape[1:]) if shape else None


def recorded_stats(meta):
    """The (mean, std) an input pipeline applies to 0-255 pixels before the model, as `meta`
    records it: mean 0 and std 1 (raw pixels) for a model that normalises in its own graph, the
    recorded statistics otherwise, None when the meta records none."""
    described = (meta or {}).get('input') or {}
    mean, std = described.get('mean'), described.get('std')
    if described.get('normalized_in_graph'):
        channels = len(mean or ()) or (recorded_input_shape(meta) or (3,))[0]
        return [0.0] * channels, [1.0] * channels
    if mean is None or std is None:
        return None
    return [float(v) for v in mean], [float(v) for v in std]


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


class DeployableExport:
    """Mixin for the networks' top-level blocks: `net.export(path, epoch)`, Gluon's standard
    call (and what GluonCV's `export_block` makes), writes the deployment graph, the same as
    `export_model`: without it the file would hold the training-time spatial mean, which
    `mx.onnx.export_model` rejects and oneDNN's inference fusion does not know."""

    def export(self, path, epoch=0, remove_amp_cast=True):
        out = super().export(path, epoch=epoch, remove_amp_cast=remove_amp_cast)
        pooling_for_deployment('%s-symbol.json' % path)
        return out


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


def input_description(input_shape, mean=None, std=None, raw_input=False):
    """How to feed an exported model, for its meta file: downstream code that feeds raw pixels
    to a model trained on normalised ones mispredicts without a warning."""
    described = dict(name='data', shape=list(input_shape), layout='NCHW', channels='RGB',
                     outputs='logits: unnormalised class scores (softmax gives probabilities)')
    if mean is not None:
        if raw_input:
            described.update(pixels='raw 0-255 floats; the graph subtracts mean and divides by '
                                    'std itself', normalized_in_graph=True)
        else:
            described.update(pixels='(x - mean) / std of 0-255 pixels, per channel',
                             normalized_in_graph=False)
        described.update(mean=list(mean), std=list(std), pixel_scale='0-255')
    return described


class ExportError(OSError):
    """An export whose files did not read back as written (a full disk, most likely): nothing
    was moved into place. An OSError (EIO), so that a training run stops as on any failed
    write, keeping its checkpoints."""

    def __init__(self, message, path):
        super().__init__(errno.EIO, message, path)


class ExportSet:
    """The files of one exported model (symbol, params, meta), written as checkpoints are.

        with ExportSet(prefix, epoch) as files:
            net.export(files.temporary_prefix, epoch)      # or write files.temporary(kind)
            files.meta(meta)                               # optional
        # here: verified and in place

    Everything is written under temporary names (`.NAME.partial-PID`) beside the targets and
    read back: the symbol must parse and the params file must hold exactly the symbol's
    parameters (a full disk truncates it silently: MXNet's writer reports nothing). Only then
    is a pending list of the renames written, the renames made and the list removed. A reader
    through import_model therefore sees the old complete set or the new one: an export killed
    between two renames is finished by the next reader or export of the prefix (the files were
    verified before the list was written), and one killed earlier leaves only temporaries, which
    the next export of the prefix removes. On failure the temporaries are removed at once."""

    KINDS = ('symbol', 'params', 'meta')

    def __init__(self, prefix, epoch=0):
        self.prefix, self.epoch = prefix, epoch
        self.directory = os.path.dirname(os.path.abspath(prefix))
        self.name = os.path.basename(prefix)
        self.temporary_prefix = os.path.join(self.directory, '.%s.partial-%d'
                                             % (self.name, os.getpid()))
        self._meta = None

    def final(self, kind):
        return {'symbol': '%s-symbol.json' % self.prefix,
                'params': '%s-%04d.params' % (self.prefix, self.epoch),
                'meta': meta_path(self.prefix)}[kind]

    def temporary(self, kind):
        return {'symbol': '%s-symbol.json' % self.temporary_prefix,
                'params': '%s-%04d.params' % (self.temporary_prefix, self.epoch),
                'meta': '%s-meta.json' % self.temporary_prefix}[kind]

    def meta(self, meta):
        self._meta = meta

    def __enter__(self):
        os.makedirs(self.directory, exist_ok=True)
        finish_export(self.prefix)
        remove_stale_partials(self.directory, '.%s.partial-*' % glob.escape(self.name))
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            try:
                self._commit()
                return False
            except BaseException:
                if not os.path.exists(pending_path(self.prefix)):
                    self._discard()
                # else: verified and listed; the next reader or export finishes the renames
                raise
        self._discard()
        return False

    def _commit(self):
        if self._meta is not None:
            write_json(self.temporary('meta'), self._meta)
        try:
            verify_export(self.temporary('symbol'), self.temporary('params'),
                          shown=(self.final('symbol'), self.final('params')))
        except ValueError as e:
            raise ExportError('%s; nothing was written' % e, self.final('params')) from None
        renames = [(self.temporary(kind), self.final(kind)) for kind in self.KINDS
                   if os.path.exists(self.temporary(kind))]
        for tmp, _ in renames:
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
        write_json(pending_path(self.prefix), renames)
        finish_export(self.prefix)

    def _discard(self):
        for kind in self.KINDS:
            try:
                os.remove(self.temporary(kind))
            except FileNotFoundError:
                pass


def pending_path(prefix):
    """The list of renames of an export being moved into place."""
    directory, name = os.path.split(os.path.abspath(prefix))
    return os.path.join(directory, '.%s.export-pending' % name)


def finish_export(prefix):
    """Make the renames of an export interrupted while moving its verified files into place;
    True if there was one."""
    pending = pending_path(prefix)
    try:
        with open(pending) as f:
            renames = json.load(f)
    except FileNotFoundError:
        return False
    except ValueError:  # the list itself was being written: nothing was renamed yet
        os.remove(pending)
        return False
    for tmp, final in renames:
        if os.path.exists(tmp):
            os.replace(tmp, final)
    os.remove(pending)
    return True


def verify_export(sym_file, params_file, shown=None):
    """Raise ValueError naming the file unless `sym_file` is a symbol that parses and
    `params_file` loads and holds exactly its parameters (`arg:`/`aux:` names). `shown`: the
    (symbol, params) names the message uses instead (the targets of temporary files)."""
    shown_sym, shown_params = shown or (sym_file, params_file)
    try:
        sym = mx.sym.load(sym_file)
    except (mx.base.MXNetError, ValueError, OSError) as e:
        raise ValueError('%s is not a readable MXNet symbol file (%s)'
                         % (shown_sym, _reason(e))) from None
    try:
        saved = set(mx.nd.load(params_file))
    except (mx.base.MXNetError, ValueError, OSError) as e:
        raise ValueError('%s is not a readable MXNet parameter file (%s; a full disk truncates '
                         'it)' % (shown_params, _reason(e))) from None
    expected = ({'arg:' + name for name in sym.list_arguments() if name != 'data'} |
                {'aux:' + name for name in sym.list_auxiliary_states()})
    if saved != expected:
        raise ValueError('%s does not hold the parameters of %s: %d of its %d present, %d '
                         'foreign (%s)' % (shown_params, shown_sym, len(saved & expected),
                                           len(expected), len(saved - expected),
                                           ', '.join(sorted(expected ^ saved)[:3])))


def _reason(error):
    """The last line of an MXNet error (its C++ stack trace comes before)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


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
            files.meta(dict(metadata, input_shape=list(input_shape), epoch=epoch,
                            input=input_description(input_shape, mean, std, raw_input)))
    return files.final('symbol'), files.final('params')


def import_model(prefix, epoch=0, ctx=None):
    """Load an exported model as a SymbolBlock."""
    ctx = ctx or mx.cpu()
    finish_export(prefix)
    sym_file, params_file = '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)
    for f in (sym_file, params_file):
        if not os.path.exists(f):
            raise FileNotFoundError('%s not found: export the model first (python tools/export.py '
                                    '--model NAME --prefix %s)' % (f, prefix))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(sym_file, ['data'], params_file, ctx=ctx)


def export_onnx(prefix, epoch=0, input_shape=(1, 3, 32, 32), onnx_file=None):
    """Convert an exported model to ONNX with MXNet's own exporter (mx.onnx), its batch axis
    dynamic (any batch size runs; `input_shape`'s batch is only the example the converter
    traces). The opset is the installed onnx package's: onnx 1.14.x gives opset 19, which
    onnxruntime 1.16 runs."""
    import numpy as np
    onnx_file = onnx_file or '%s.onnx' % prefix
    finish_export(prefix)
    # mx.onnx logs its steps on the root logger, naming the temporary file as the result
    with atomic_path(onnx_file) as tmp, _quiet_root_log('mxnet' + os.sep + 'onnx'):
        mx.onnx.export_model('%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch),
                             [tuple(input_shape)], np.float32, tmp, dynamic=True,
                             dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
        _only_data_as_input(tmp)
    return onnx_file


def _only_data_as_input(onnx_file):
    """mx.onnx lists every weight among the graph's inputs as well as its initializers, which
    ONNX Runtime warns about once per weight (about 140 lines a model) and which lets a caller
    override weights by feeding them; keep `data` as the one input."""
    import onnx
    model = onnx.load(onnx_file)
    weights = {initializer.name for initializer in model.graph.initializer}
    kept = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    onnx.save(model, onnx_file)


class _quiet_root_log:
    """Drop, while active, the root logger's records from source files under `part`."""

    def __init__(self, part):
        self.part = part

    def filter(self, record):
        return self.part not in record.pathname

    def __enter__(self):
        logging.getLogger().addFilter(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self)
        return False


# ------------------------------------------------------------------------------------------
# Inference graph passes (CPU, oneDNN)

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


# ------------------------------------------------------------------------------------------
# Exported files as blocks; INT8

def load_checkpoint(prefix, epoch=0):
    """(symbol, arg_params, aux_params) of an exported model."""
    for f in ('%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)):
        if not os.path.exists(f):
            raise FileNotFoundError('%s not found (export the model first: python '
                                    'tools/export.py)' % f)
    return mx.model.load_checkpoint(prefix, epoch)


def quantize(sym, arg_params, aux_params, calib_data, calib_mode=DEFAULT_CALIB_MODE,
             num_calib_examples=DEFAULT_NUM_CALIB, quantized_dtype='auto', exclude=None,
             ctx=None):
    """Fuse for oneDNN, quantize to INT8 and calibrate. Returns (qsym, qarg_params, aux_params).

    `exclude`: symbol names kept in fp32. By default nothing is excluded; the first convolution
    takes the raw image (signed), which quantized_dtype='auto' handles as int8.
    """
    from mxnet.contrib.quantization import quantize_model_mkldnn
    ctx = ctx or mx.cpu()
    if ctx.device_type != 'cpu':
        raise ValueError('INT8 quantization runs on CPU (oneDNN) only in MXNet 1.9; got %s' % ctx)
    quiet = logging.getLogger('dmrnet.deploy.quantization')
    quiet.setLevel(logging.WARNING)
    return quantize_model_mkldnn(sym, arg_params, aux_params, data_names=('data',),
                                 label_names=(), ctx=ctx, excluded_sym_names=exclude or [],
                                 calib_mode=calib_mode, calib_data=calib_data,
                                 num_calib_examples=num_calib_examples,
                                 quantized_dtype=quantized_dtype, quantize_mode='full',
                                 logger=quiet)


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


def export_bfloat16(prefix, out_prefix, epoch=0, input_shape=None, metadata=None):
    """Write `out_prefix`, the exported float32 model `prefix` computing in bfloat16 where
    oneDNN has it (parameters stay float32; the output is float32): the inference path for CPUs
    with native bfloat16, beside float32 and INT8. Downstream code loads it like any exported
    model (Module, SymbolBlock). `metadata`: the -meta.json of the set.

    The graph converted is the oneDNN inference graph (optimize_exported: merge scales folded,
    operators renamed so that oneDNN fuses them), converted by MXNet's AMP with its casts kept;
    oneDNN's subgraph pass then fuses Conv+BN+ReLU(+sum) in bfloat16 when the model is bound.
    Converting the plain graph leaves BatchNorm, ReLU and the sums as separate bfloat16
    primitives (much slower: docs/PERFORMANCE.md has the measurement); converting an
    already-fused graph leaves its fused convolutions in float32."""
    from mxnet.contrib import amp
    sym, arg_params, aux_params = load_checkpoint(prefix, epoch)
    sym, arg_params, _ = optimize_exported(sym, arg_params)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sym, arg_params, aux_params = amp.convert_model(
            sym, arg_params, aux_params, target_dtype='bfloat16', cast_optional_params=False)
    return save_symbol_model(out_prefix, sym, arg_params, aux_params, epoch, metadata)


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