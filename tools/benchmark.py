"""Throughput, latency, memory and FLOPs of a preset, side by side with GluonCV's ResNet-110 and a
PyTorch eager implementation of the same DMRNet, measured in one run.

    python tools/benchmark.py --model dmrnet56 --batch-size 64 [--json] [--gpus 0 [--amp]]
        [--repeats 3] [--warmup 2] [--rounds 2] [--no-gluoncv] [--no-torch] [--no-int8]
        [--calib-data-dir data/digits --calib-dataset digits] [--no-trace]

What is measured (every job runs in its own process, so that peak memory is per job and no two
thread pools share a process; jobs run one after another):
  training   images/s of forward + backward + update (Gluon Trainer as train/engine.py builds it,
             NAG, momentum 0.9, wd 1e-4) on synthetic data, hybridized static_alloc/static_shape;
  inference  of the *exported* symbol (export -> load), images/s at the batch size and latency at
             batch 1; on CPUs both the plain graph and the oneDNN-fused graph are measured and the
             faster is used. The fused graph: the merge's 1/K scale folded into the next layers'
             weights (fold_merge_scales: same function, no element-wise multiply left), relu /
             add_n renamed to the operators oneDNN fuses, then MXNet's MKLDNN subgraph backend
             (Conv+BN folded, +sum, +ReLU in one oneDNN convolution);
  int8       the same fused graph quantized with mx.contrib.quantization (oneDNN, naive min/max
             calibration; on synthetic data unless --calib-data-dir gives training images: its
             accuracy is measured by tools/quantize.py on real data), CPU only;
  form       DMRNet's branch and fused (grouped convolution) forms are both measured for training
             and inference; the faster per phase is the figure reported, and the choice is
             recorded in the output and in tools/formselect.py's cache;
  flops      per image, counted from the symbol graph (convolution and FC multiply-adds x 2);
             training counts 3x the forward pass; achieved GFLOP/s is read against the measured
             float32 GEMM peak of this machine (the best of numpy, MXNet and PyTorch
             matrix products of 2048x2048 matrices);
  memory     peak resident set of the job's process (ru_maxrss), and its growth over the state
             after imports; on GPUs the device memory in use after the run;
  breakdown  (CPUs; --no-trace skips it) ours and PyTorch run once more, training and inference,
             with oneDNN's verbose log on: the execution time oneDNN reports for each kind of
             primitive, and the rest of the wall time ('outside' oneDNN). From it each PyTorch
             target gets its ceiling (the ratio reached if all but our convolutions took no
             time) and the time it leaves for all but our convolutions.
Warm-up iterations are excluded; each figure is the median of --repeats timed iterations (of
all rounds). PyTorch runs eager, with torch.set_num_threads equal to MXNet's OpenMP threads, in
eval() + inference_mode() for inference; both NCHW and channels_last are measured for it and its
faster is the reference. Without PyTorch (`make bench` installs it into .venv/bench-site) its
columns are skipped with a message.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# PyTorch lives outside the project's site-packages: GluonCV 0.10 refuses to import when it finds
# a torch >= 2.0 importable (gluoncv/check.py), and the project's code imports GluonCV.
BENCH_SITE = os.path.join(REPO, '.venv', 'bench-site')
JOB_TAG = 'BENCHJOB '
if HERE not in sys.path:  # also when imported as dmrnet.tools.benchmark
    sys.path.insert(0, HERE)
from formselect import time_calls  # noqa: E402
SCHEMA_VERSION = 1

# Graph-level defaults the benchmark sets for itself (never overriding the user's choice).
# cuDNN: pick convolution algorithms by measurement on GPUs (harmless on CPUs).
DEFAULT_ENV = {'MXNET_CUDNN_AUTOTUNE_DEFAULT': '1'}


def _setup_env():
    for k, v in DEFAULT_ENV.items():
        os.environ.setdefault(k, v)
    import dmrnet.symbols.runtime  # noqa: F401  (OMP_NUM_THREADS before mxnet loads)


# ---------------------------------------------------------------------------------------------
# helpers used in the job processes


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def import_torch():
    """torch, from the environment or from .venv/bench-site; None when not installed.

    GluonCV is imported first (with torch hidden from its version check), so that a later
    `import gluoncv` in the same process still works once torch is importable."""
    try:
        import_gluoncv()
    except ImportError:
        pass
    try:
        import torch
        return torch
    except ImportError:
        pass
    if os.path.isdir(BENCH_SITE) and BENCH_SITE not in sys.path:
        sys.path.append(BENCH_SITE)
        try:
            import torch
            return torch
        except ImportError:
            sys.path.remove(BENCH_SITE)
    return None


def import_gluoncv():
    """GluonCV with torch hidden from its version check (it raises on torch >= 2.0)."""
    saved = sys.modules.get('torch', None)
    had = 'torch' in sys.modules
    sys.modules['torch'] = None  # makes `import torch` raise ImportError inside gluoncv
    try:
        import gluoncv
    finally:
        if had:
            sys.modules['torch'] = saved
        else:
            del sys.modules['torch']
    return gluoncv


def count_flops(sym, input_shape):
    """Forward FLOPs per image of a symbol: 2 x multiply-adds of Convolution, Deconvolution and
    FullyConnected nodes (fused oneDNN nodes and element-wise work are not counted).

    Returns dict(flops, conv_flops, fc_flops, macs)."""
    import mxnet as mx
    internals = sym.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=tuple(input_shape))
    shapes = dict(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(sym.tojson())['nodes']
    conv = fc = 0
    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'FullyConnected', 'Deconvolution'):
            continue
        weight = nodes[node['inputs'][1][0]]['name']
        w = shapes.get(weight)
        out = shapes.get(node['name'] + '_output')
        if w is None or out is None:
            raise ValueError('cannot infer the shapes of %s' % node['name'])
        if op == 'FullyConnected':
            fc += out[0] * w[0] * _prod(w[1:])
        elif op == 'Convolution':
            # weight (O, C/groups, kh, kw); each output element costs C/groups*kh*kw MACs
            conv += _prod(out) * _prod(w[1:])
        else:  # Deconvolution: every input element scatters into O/groups*kh*kw outputs
            data_in = shapes.get(nodes[node['inputs'][0][0]]['name'] + '_output',
                                 shapes.get(nodes[node['inputs'][0][0]]['name']))
            conv += _prod(data_in) * _prod(w[1:])
    del mx
    n = input_shape[0]
    return dict(flops=2 * (conv + fc) // n, conv_flops=2 * conv // n, fc_flops=2 * fc // n,
                macs=(conv + fc) // n)


def _prod(xs):
    p = 1
    for x in xs:
        p *= int(x)
    return p


def rewrite_for_onednn(sym):
    """The same function with operators oneDNN's graph fusion recognises: `relu` -> Activation
    (relu) and two-input `add_n` -> elemwise_add, so that Conv+BN(+sum)+ReLU fuse into one
    oneDNN convolution. Numerically identical (both compute the same sums and max(x, 0))."""
    import mxnet as mx
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
    import mxnet as mx
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


def _context(spec):
    import mxnet as mx
    return mx.gpu(spec['gpu']) if spec.get('gpu') is not None else mx.cpu()


def _build_mx(spec, ctx):
    """A Gluon network for a job: one of ours (a preset + form) or GluonCV's."""
    import mxnet as mx
    if spec['source'] == 'gluoncv':
        gluoncv = import_gluoncv()
        net = gluoncv.model_zoo.get_model(spec['model'], classes=spec.get('classes', 10))
        shape = (spec['batch_size'], 3, 32, 32)
    else:
        from dmrnet.symbols import get_model
        from dmrnet.symbols.export import input_shape_for
        kwargs = dict(spec.get('kwargs', {}))
        if spec.get('form') == 'fused':
            kwargs['fused'] = True
        net = get_model(spec['model'], **kwargs)
        shape = input_shape_for(net, spec['batch_size'])
    mx.random.seed(0)
    net.initialize(ctx=ctx)
    return net, tuple(shape)


def _threads_info():
    import mxnet as mx
    info = dict(omp_num_threads=int(os.environ.get('OMP_NUM_THREADS', '0') or 0),
                mxnet_engine=os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice'))
    try:
        info['mkldnn'] = bool(mx.runtime.Features().is_enabled('MKLDNN'))
    except Exception:
        pass
    return info


def _mem_info(base_rss, ctx):
    out = dict(peak_rss_mb=round(_maxrss_mb(), 1), peak_rss_delta_mb=round(_maxrss_mb() - base_rss, 1))
    if ctx.device_type == 'gpu':
        import mxnet as mx
        free, total = mx.context.gpu_memory_info(ctx.device_id)
        out['gpu_mem_used_mb'] = round((total - free) / 2 ** 20, 1)
    return out


def job_gemm(spec):
    """float32 GEMM peak: numpy (OpenBLAS) and MXNet dot of n x n matrices, best median."""
    import mxnet as mx
    import numpy as np
    n = spec.get('n', 2048)
    flops = 2.0 * n ** 3
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    t_np = _median(time_calls(lambda: np.dot(a, b), 1, spec['repeats']))
    ma, mb = mx.nd.array(a), mx.nd.array(b)
    t_mx = _median(time_calls(lambda: mx.nd.dot(ma, mb).wait_to_read(), 1, spec['repeats']))
    res = dict(n=n, numpy_gflops=round(flops / t_np / 1e9, 2), mxnet_gflops=round(flops / t_mx / 1e9, 2))
    torch = import_torch() if spec.get('torch', True) else None
    if torch is not None:  # PyTorch's BLAS (MKL on x86) may use wider vector units than OpenBLAS
        _torch_threads(torch)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        t_t = _median(time_calls(lambda: torch.mm(ta, tb), 1, spec['repeats']))
        res['torch_gflops'] = round(flops / t_t / 1e9, 2)
    res['peak_gflops'] = max(v for k, v in res.items() if k.endswith('_gflops'))
    return res


def _mx_train_step(spec):
    """(step, shape, info): one training iteration of the job's network as train/engine.py
    runs it (its engine, its Trainer), on synthetic data."""
    import mxnet as mx
    from mxnet import autograd, gluon
    from dmrnet.symbols.runtime import use_naive_engine_on_cpu
    from dmrnet.train.engine import make_trainer
    ctx = _context(spec)
    # The engine a training run of train/engine.py uses on this device, chosen before the first
    # operator creates it.
    engine = use_naive_engine_on_cpu([ctx])
    amp = spec.get('amp')
    if amp:
        from mxnet.contrib import amp as mxamp
        mxamp.init()
    net, shape = _build_mx(spec, ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    opt_params = {'learning_rate': 0.01, 'momentum': 0.9, 'wd': 1e-4}
    if amp:
        opt_params['multi_precision'] = True
    trainer = make_trainer(net, 'nag', opt_params, 'device')
    if amp:
        mxamp.init_trainer(trainer)
    x = mx.nd.random.normal(shape=shape, ctx=ctx)
    y = mx.nd.array(mx.nd.random.randint(0, 10, (shape[0],)).asnumpy(), ctx=ctx)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        if amp:
            with mxamp.scale_loss(loss, trainer) as scaled:
                autograd.backward(scaled)
        else:
            loss.backward()
        trainer.step(shape[0])
        mx.nd.waitall()
    return step, shape, dict(net=net, ctx=ctx, engine=engine, trainer='train.engine')


def job_mx_train(spec):
    base = _maxrss_mb()
    step, shape, info = _mx_train_step(spec)
    times = time_calls(step, spec['warmup'], spec['repeats'])
    from dmrnet.symbols import count_params
    net = info['net']
    try:
        nparams = count_params(net)
    except Exception:
        nparams = sum(int(_prod(p.shape)) for p in net.collect_params().values()
                      if p.grad_req != 'null')
    res = dict(times=times, images_per_sec=shape[0] / _median(times), trainer=info['trainer'],
               engine=info['engine'], params=nparams, **_threads_info())
    res.update(_mem_info(base, info['ctx']))
    return res


def _export(spec, ctx, folder):
    """Export the job's network as the static symbol files users deploy; returns the prefix."""
    from dmrnet.symbols.export import export_model
    import mxnet as mx
    net, shape = _build_mx(spec, ctx)
    net(mx.nd.zeros((1,) + shape[1:], ctx=ctx))  # completes deferred initialisation (GluonCV)
    # Non-trivial BatchNorm statistics, as a trained model has (fresh ones are 0/1).
    for name, p in net.collect_params().items():
        if name.endswith('running_var'):
            p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape, ctx=ctx))
        elif name.endswith('running_mean'):
            p.set_data(mx.nd.random.normal(0, 0.1, shape=p.shape, ctx=ctx))
    prefix = os.path.join(folder, 'model')
    export_model(net, prefix, input_shape=(1,) + shape[1:], ctx=ctx)
    return prefix, shape


def _block(sym, args, aux, ctx):
    sys.path.insert(0, HERE)
    from quantize import to_block
    block = to_block(sym, args, aux, ctx)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def _infer_figures(make_block, shape, ctx, spec):
    """images/s at the batch size and batch-1 latency of blocks made by make_block()."""
    import mxnet as mx
    mx.random.seed(0)  # the same input for every variant, so their outputs compare
    x = mx.nd.random.normal(shape=shape, ctx=ctx)
    big = make_block()
    times = time_calls(lambda: big(x).wait_to_read(), spec['warmup'], spec['repeats'])
    out = big(x).asnumpy()
    big = None  # free its memory before the batch-1 block is built
    one = make_block()
    x1 = x[:1]
    lat = time_calls(lambda: one(x1).wait_to_read(), max(spec['warmup'], 3),
                max(4 * spec['repeats'], 10))
    return dict(images_per_sec=shape[0] / _median(times), times=times,
                latency_ms=1000 * _median(lat)), out


def _mx_infer_variants(spec, ctx, folder):
    """The job's network exported into `folder` and loaded back as the graphs the inference
    job runs: ({'plain': (sym, args)[, 'onednn': (sym, args)]}, aux, shape, info). The oneDNN
    graph (CPUs): merge scales folded, operators renamed, MXNet's MKLDNN subgraph pass."""
    import mxnet as mx
    prefix, shape = _export(spec, ctx, folder)
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    info = dict(flops=count_flops(sym, (1,) + shape[1:]))
    variants = {'plain': (sym, args)}
    if ctx.device_type == 'cpu' and spec.get('onednn', True):
        osym, oargs, info['merge_scale_folded'] = optimize_exported(sym, args)
        variants['onednn'] = (osym.get_backend_symbol('MKLDNN'), oargs)
    return variants, aux, shape, info


def job_mx_infer(spec):
    """The exported model: plain graph and (CPU) the oneDNN-fused graph."""
    ctx = _context(spec)
    base = _maxrss_mb()
    res = dict(variants={}, **_threads_info())
    with tempfile.TemporaryDirectory() as folder:
        variants, aux, shape, info = _mx_infer_variants(spec, ctx, folder)
        res.update(info)
        outs = {}
        for name, (s, a) in variants.items():
            fig, outs[name] = _infer_figures(lambda: _block(s, a, aux, ctx), shape, ctx, spec)
            res['variants'][name] = fig
    if 'onednn' in outs:
        import numpy as np
        scale = float(np.abs(outs['plain']).max()) or 1.0
        res['onednn_max_rel_diff'] = float(np.abs(outs['onednn'] - outs['plain']).max()) / scale
    best = max(res['variants'], key=lambda k: res['variants'][k]['images_per_sec'])
    res.update(best=best, images_per_sec=res['variants'][best]['images_per_sec'],
               latency_ms=min(v['latency_ms'] for v in res['variants'].values()))
    res.update(_mem_info(base, ctx))
    return res


def job_mx_int8(spec):
    """INT8 post-training quantization of the exported model (oneDNN), calibrated."""
    import mxnet as mx
    import numpy as np
    ctx = _context(spec)
    if ctx.device_type != 'cpu':
        return dict(skipped='INT8 quantization in MXNet 1.9 runs on CPUs (oneDNN) only')
    sys.path.insert(0, HERE)
    import quantize as Q
    base = _maxrss_mb()
    res = dict(**_threads_info())
    with tempfile.TemporaryDirectory() as folder:
        prefix, shape = _export(spec, ctx, folder)
        sym, args, aux = mx.model.load_checkpoint(prefix, 0)
        calib = Q.calibration_data(spec.get('calib_data_dir'), spec.get('calib_dataset', 'digits'),
                                   shape[0], spec.get('num_calib', 4 * shape[0]), shape)
        tic = time.perf_counter()
        osym, oargs, res['merge_scale_folded'] = optimize_exported(sym, args)
        qsym, qargs, qaux = Q.quantize(osym, oargs, aux, calib,
                                       spec.get('calib_mode', Q.DEFAULT_CALIB_MODE),
                                       spec.get('num_calib', 4 * shape[0]))
        res['quantize_seconds'] = time.perf_counter() - tic
        res['calibration'] = ('%d training images of %s' % (calib.seen, spec['calib_dataset'])
                              if spec.get('calib_data_dir') else
                              '%d synthetic images (timing only)' % calib.seen)
        fig, out8 = _infer_figures(lambda: _block(qsym, qargs, qaux, ctx), shape, ctx, spec)
        res.update(fig)
        # agreement with the fp32 graph on the timing batch
        mx.random.seed(0)
        x = mx.nd.random.normal(shape=shape, ctx=ctx)
        ref = _block(sym, args, aux, ctx)(x).asnumpy()
        q = _block(qsym, qargs, qaux, ctx)(x).asnumpy()
        res['top1_agreement_with_fp32'] = float((ref.argmax(1) == q.argmax(1)).mean())
        res['max_rel_diff_vs_fp32'] = float(np.abs(ref - q).max() / (np.abs(ref).max() or 1.0))
        del out8
    res.update(_mem_info(base, ctx))
    return res


def _torch_net(spec, torch):
    sys.path.insert(0, HERE)
    from torch_dmrnet import DMRNet
    kw = spec['torch_kwargs']
    torch.manual_seed(0)
    return DMRNet(L=kw['L'], width=kw['width'], branches=kw['branches'], classes=kw['classes'])


def _torch_threads(torch):
    n = int(os.environ.get('OMP_NUM_THREADS', '0') or 0) or os.cpu_count()
    torch.set_num_threads(n)
    return dict(torch_threads=torch.get_num_threads(), torch_version=torch.__version__)


def _torch_job_setup(spec):
    """(torch, device, base RSS, result dict) for a PyTorch job; torch None when missing."""
    torch = import_torch()
    if torch is None:
        return None, None, None, dict(skipped='PyTorch is not installed (make bench installs it)')
    info = _torch_threads(torch)
    base = _maxrss_mb()
    dev = torch.device('cuda:%d' % spec['gpu']) if spec.get('gpu') is not None else torch.device('cpu')
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    return torch, dev, base, dict(variants={}, **info)


def _torch_memory_format(torch, variant):
    return torch.channels_last if variant == 'channels_last' else torch.contiguous_format


def _torch_train_step(spec, torch, dev, variant):
    """(step, net): one training iteration of the PyTorch DMRNet in memory layout `variant`,
    SGD with Nesterov momentum as ours."""
    b = spec['batch_size']
    fmt = _torch_memory_format(torch, variant)
    net = _torch_net(spec, torch).to(dev).to(memory_format=fmt)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4,
                          nesterov=True)
    x = torch.randn(b, 3, 32, 32, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 10, (b,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler('cuda') if spec.get('amp') and dev.type == 'cuda' else None

    def step():
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            with torch.autocast('cuda', dtype=torch.float16):
                loss = loss_fn(net(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        if dev.type == 'cuda':
            torch.cuda.synchronize()
    return step, net


def job_torch_train(spec):
    torch, dev, base, res = _torch_job_setup(spec)
    if torch is None:
        return res
    b = spec['batch_size']
    for variant in spec['torch_variants']:
        step, net = _torch_train_step(spec, torch, dev, variant)
        times = time_calls(step, spec['warmup'], spec['repeats'])
        res['variants'][variant] = dict(times=times, images_per_sec=b / _median(times))
    best = max(res['variants'], key=lambda k: res['variants'][k]['images_per_sec'])
    res.update(best=best, images_per_sec=res['variants'][best]['images_per_sec'],
               params=sum(p.numel() for p in net.parameters()))
    res.update(peak_rss_mb=round(_maxrss_mb(), 1), peak_rss_delta_mb=round(_maxrss_mb() - base, 1))
    if dev.type == 'cuda':
        res['gpu_mem_used_mb'] = round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)
    return res


def torch_flops(net, torch, shape):
    """Forward FLOPs per image of a torch module: 2 x Conv2d/Linear multiply-adds (hooks)."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            total[0] += out.numel() * (mod.in_channels // mod.groups) * _prod(mod.kernel_size)
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features
    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        net(torch.zeros(shape))
    for h in handles:
        h.remove()
    return 2 * total[0] // shape[0]


def _torch_infer_run(spec, torch, dev, variant, net):
    """(run, x, x1): eval-mode inference of `net` in memory layout `variant` on a batch x and
    a single image x1."""
    fmt = _torch_memory_format(torch, variant)
    net = net.to(dev).to(memory_format=fmt).eval()
    x = torch.randn(spec['batch_size'], 3, 32, 32, device=dev).to(memory_format=fmt)
    x1 = x[:1].contiguous(memory_format=fmt)

    def run(inp):
        with torch.inference_mode():
            net(inp)
        if dev.type == 'cuda':
            torch.cuda.synchronize()
    return run, x, x1


def job_torch_infer(spec):
    torch, dev, base, res = _torch_job_setup(spec)
    if torch is None:
        return res
    b = spec['batch_size']
    net = _torch_net(spec, torch)
    res['flops_per_image'] = torch_flops(net, torch, (1, 3, 32, 32))
    for variant in spec['torch_variants']:
        run, x, x1 = _torch_infer_run(spec, torch, dev, variant, net)
        times = time_calls(lambda: run(x), spec['warmup'], spec['repeats'])
        lat = time_calls(lambda: run(x1), max(spec['warmup'], 3), max(4 * spec['repeats'], 10))
        res['variants'][variant] = dict(times=times, images_per_sec=b / _median(times),
                                        latency_ms=1000 * _median(lat))
    best = max(res['variants'], key=lambda k: res['variants'][k]['images_per_sec'])
    res.update(best=best, images_per_sec=res['variants'][best]['images_per_sec'],
               latency_ms=min(v['latency_ms'] for v in res['variants'].values()))
    res.update(peak_rss_mb=round(_maxrss_mb(), 1), peak_rss_delta_mb=round(_maxrss_mb() - base, 1))
    return res


# ---------------------------------------------------------------------------------------------
# where the time goes: oneDNN's own log of every primitive it executes

TRACE_BEGIN, TRACE_END = 'BENCHTRACE begin', 'BENCHTRACE end'
# MXNet 1.9.1 bundles oneDNN 2.4 (reads DNNL_VERBOSE), PyTorch 2.x oneDNN 3.x (ONEDNN_VERBOSE).
TRACE_ENV = {'mx': {'DNNL_VERBOSE': '1'}, 'torch': {'ONEDNN_VERBOSE': '1'}}
# primitive kinds as oneDNN names them -> the columns of the breakdown
TRACE_KINDS = {'convolution': 'conv', 'batch_normalization': 'bnorm', 'eltwise': 'eltwise',
               'sum': 'sum', 'binary': 'sum', 'reorder': 'reorder', 'pooling': 'pool',
               'pooling_v2': 'pool'}


def job_trace(spec):
    """One phase of one implementation ('target': mx_train, mx_infer, torch_train or
    torch_infer) run with oneDNN's verbose log on (the parent sets TRACE_ENV): warm-up
    iterations, then TRACE_BEGIN, `repeats` timed iterations and TRACE_END on stdout. The
    parent adds up the execution times oneDNN logs between the two marks (parse_trace)."""
    target = spec['target']
    if target == 'mx_train':
        fn = _mx_train_step(spec)[0]
    elif target == 'mx_infer':
        import mxnet as mx
        ctx = _context(spec)
        with tempfile.TemporaryDirectory() as folder:
            variants, aux, shape, _ = _mx_infer_variants(spec, ctx, folder)
        sym, args = variants[spec.get('variant', 'onednn')]
        block = _block(sym, args, aux, ctx)
        x = mx.nd.random.normal(shape=shape, ctx=ctx)

        def fn():
            block(x).wait_to_read()
    else:
        torch, dev, _, res = _torch_job_setup(spec)
        if torch is None:
            return res
        variant = spec.get('variant', 'channels_last')
        if target == 'torch_train':
            fn = _torch_train_step(spec, torch, dev, variant)[0]
        else:
            run, x, _ = _torch_infer_run(spec, torch, dev, variant, _torch_net(spec, torch))

            def fn():
                run(x)
    time_calls(fn, spec['warmup'], 0)
    print(TRACE_BEGIN, flush=True)
    times = time_calls(fn, 0, spec['repeats'])
    print(TRACE_END, flush=True)
    return dict(times=times, images_per_sec=spec['batch_size'] / _median(times))


def parse_trace(lines, iterations):
    """Milliseconds per iteration that oneDNN spent in each kind of primitive, from its verbose
    log between TRACE_BEGIN and TRACE_END. Reads both formats: oneDNN 2.x
    ('dnnl_verbose,exec,cpu,KIND,IMPL,...,TIME') and 3.x
    ('onednn_verbose,v1,primitive,exec,cpu,KIND,IMPL,...,TIME'). Returns
    {column: ms} with the columns of TRACE_KINDS and 'other'."""
    out, inside = {}, False
    for line in lines:
        if line.startswith(TRACE_BEGIN):
            inside = True
            continue
        if line.startswith(TRACE_END):
            break
        if not inside:
            continue
        f = line.strip().split(',')
        if f[0] == 'dnnl_verbose' and len(f) > 4 and f[1] == 'exec':
            kind = f[3]
        elif (f[0] == 'onednn_verbose' and len(f) > 6 and f[2] == 'primitive'
              and f[3] == 'exec'):
            kind = f[5]
        else:
            continue
        try:
            ms = float(f[-1])
        except ValueError:
            continue
        col = TRACE_KINDS.get(kind, 'other')
        out[col] = out.get(col, 0.0) + ms
    return {k: v / iterations for k, v in out.items()}


def breakdown(res, batch_size, images_per_sec):
    """Per-batch figures of a trace job: oneDNN ms by column, the wall time of the untraced
    timing run (`images_per_sec`; writing the log slows the traced run itself by 10-25%, while
    oneDNN times each primitive's execution alone), and the rest, 'outside' oneDNN (framework,
    other kernels, Python)."""
    onednn = res['onednn_ms']
    wall = 1000.0 * batch_size / images_per_sec
    return dict(wall_ms=round(wall, 2), onednn_ms={k: round(v, 2) for k, v in onednn.items()},
                outside_ms=round(wall - sum(onednn.values()), 2),
                traced_wall_ms=round(1000 * _median(res['times']), 2))


JOBS = {'gemm': job_gemm, 'mx_train': job_mx_train, 'mx_infer': job_mx_infer,
        'mx_int8': job_mx_int8, 'torch_train': job_torch_train, 'torch_infer': job_torch_infer,
        'trace': job_trace}


def run_job_here(spec):
    _setup_env()
    if spec['kind'].startswith('mx') or spec['kind'] == 'gemm':
        import warnings
        warnings.filterwarnings('ignore')
    return JOBS[spec['kind']](spec)


# ---------------------------------------------------------------------------------------------
# the parent: plan, run each job in a child process, assemble


def run_job(spec, timeout=3600, inprocess=False):
    """Run one job in a fresh process; returns its result dict (or dict(error=...)).
    inprocess=True runs it here instead (quicker, for tests; memory figures then accumulate).
    A trace job always runs in its own process, with oneDNN's verbose log switched on there,
    and its result gets 'onednn_ms' (parse_trace)."""
    trace = spec['kind'] == 'trace'
    if inprocess and not trace:
        try:
            return json.loads(json.dumps(run_job_here(spec)))
        except Exception as e:  # reported like a failed child
            return dict(error='%s: %s' % (type(e).__name__, e))
    env = dict(os.environ)
    if trace:
        env.update(TRACE_ENV[spec['target'].split('_')[0]])
    cmd = [sys.executable, os.path.abspath(__file__), '--job', json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                           cwd=REPO)
    except subprocess.TimeoutExpired:
        return dict(error='timed out after %d s' % timeout)
    lines = p.stdout.splitlines()
    for line in lines:
        if line.startswith(JOB_TAG):
            res = json.loads(line[len(JOB_TAG):])
            if trace and 'times' in res:
                res['onednn_ms'] = parse_trace(lines, len(res['times']))
            return res
    tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
    return dict(error='job failed (exit %d): %s' % (p.returncode, ' | '.join(tail)))


def _merge_rounds(results):
    """Several rounds of one job: pool the timed iterations and take their median."""
    ok = [r for r in results if 'error' not in r and 'skipped' not in r]
    if not ok:
        return results[0]
    out = dict(ok[-1])
    if 'times' in out and len(ok) > 1:
        times = [t for r in ok for t in r['times']]
        bs = out['images_per_sec'] * _median(out['times'])
        out['times'], out['images_per_sec'] = times, bs / _median(times)
    if 'variants' in out and len(ok) > 1:
        for name, v in out['variants'].items():
            if 'times' in v:
                times = [t for r in ok for t in r['variants'][name]['times']]
                bs = v['images_per_sec'] * _median(v['times'])
                v['times'], v['images_per_sec'] = times, bs / _median(times)
            if 'latency_ms' in v:
                v['latency_ms'] = _median([r['variants'][name]['latency_ms'] for r in ok])
        best = max(out['variants'], key=lambda k: out['variants'][k]['images_per_sec'])
        out['best'], out['images_per_sec'] = best, out['variants'][best]['images_per_sec']
        if any('latency_ms' in v for v in out['variants'].values()):
            out['latency_ms'] = min(v['latency_ms'] for v in out['variants'].values())
    if 'peak_rss_mb' in out:
        out['peak_rss_mb'] = max(r['peak_rss_mb'] for r in ok)
        out['peak_rss_delta_mb'] = max(r['peak_rss_delta_mb'] for r in ok)
    out['rounds'] = len(ok)
    return out


def torch_kwargs(model, kwargs):
    """Arguments of the PyTorch DMRNet equivalent to a preset, or None (no equivalent)."""
    from dmrnet.symbols import registry
    family, full = registry.resolve(model, **kwargs)
    if family != 'dmrnet' or not full.get('share', True):
        return None
    return dict(L=full.get('L', 54), width=full.get('width', 1), branches=full.get('branches', 2),
                classes=full.get('classes', 10))


def plan(args):
    """The job list: (key, spec). Forms are compared for multi-branch (merge-and-run) models."""
    from dmrnet.symbols import get_model
    gpu = int(args.gpus.split(',')[0]) if args.gpus else None
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    probe = get_model(args.model, **kwargs)
    forms = ['branch', 'fused'] if getattr(probe, 'multi', False) and probe.K > 1 else [None]
    if args.form != 'auto' and forms != [None]:
        forms = [args.form]
    common = dict(batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats, gpu=gpu,
                  amp=args.amp)
    jobs = [('gemm', dict(kind='gemm', repeats=max(3, args.repeats), torch=not args.no_torch))]
    ours = dict(common, source='dmrnet', model=args.model, kwargs=kwargs)
    for form in forms:
        tag = form or 'single'
        if not args.no_train:
            jobs.append(('train:' + tag, dict(ours, kind='mx_train', form=form)))
        jobs.append(('infer:' + tag, dict(ours, kind='mx_infer', form=form)))
    if not args.no_gluoncv:
        gcv = dict(common, source='gluoncv', model=args.gluoncv_model,
                   classes=probe.config.get('classes', 10) if hasattr(probe, 'config') else 10)
        if not args.no_train:
            jobs.append(('gluoncv:train', dict(gcv, kind='mx_train')))
        jobs.append(('gluoncv:infer', dict(gcv, kind='mx_infer')))
    tk = torch_kwargs(args.model, kwargs)
    if not args.no_torch and tk is not None:
        tjob = dict(common, torch_kwargs=tk, torch_variants=args.torch_variants.split(','))
        if not args.no_train:
            jobs.append(('torch:train', dict(tjob, kind='torch_train')))
        jobs.append(('torch:infer', dict(tjob, kind='torch_infer')))
    return jobs, forms, tk, gpu, kwargs


def fastest(results, prefix):
    """(key, result) of the fastest job whose key starts with `prefix`, or (None, None)."""
    cands = [(k, v) for k, v in results.items() if k.startswith(prefix) and 'images_per_sec' in v]
    return max(cands, key=lambda kv: kv[1]['images_per_sec']) if cands else (None, None)


def trace_plan(args, results, tk, kwargs):
    """The trace jobs (job_trace): ours and PyTorch, training and inference, each in the form,
    graph and memory layout that measured fastest in the timing rounds."""
    common = dict(kind='trace', batch_size=args.batch_size, warmup=args.warmup,
                  repeats=args.repeats)
    jobs = []
    phases = (('train', 'train:'), ('infer', 'infer:')) if not args.no_train else (('infer', 'infer:'),)
    for phase, prefix in phases:
        best, res = fastest(results, prefix)
        if best is not None:
            form = best.split(':')[1]
            spec = dict(common, target='mx_' + phase, source='dmrnet', model=args.model,
                        kwargs=kwargs, form=None if form == 'single' else form)
            if phase == 'infer':
                spec['variant'] = res.get('best', 'onednn')
            jobs.append(('trace:ours:' + phase, spec))
        tres = results.get('torch:' + phase, {})
        if tk is not None and 'best' in tres:
            jobs.append(('trace:pytorch:' + phase, dict(common, target='torch_' + phase,
                                                        torch_kwargs=tk, variant=tres['best'])))
    return jobs


def _gflops(flops_per_image, images_per_sec):
    return flops_per_image * images_per_sec / 1e9


def assemble(args, jobs, results, forms, tk, gpu, kwargs, seconds):
    """The report: per implementation figures, form selection, ratios and targets."""
    from formselect import device_key, record
    r = results
    gemm = r.get('gemm', {})
    peak = gemm.get('peak_gflops')
    device = 'gpu(%d)' % gpu if gpu is not None else 'cpu'
    dkey = device_key(device)
    out = dict(schema=SCHEMA_VERSION, date=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
               command=' '.join(['python', 'tools/benchmark.py'] + sys.argv[1:]),
               machine=dict(cpu=dkey.split(':')[1] if device == 'cpu' else dkey,
                            cores=_cores(), platform=platform.platform(),
                            python=platform.python_version(), device=device),
               model=args.model, model_kwargs=kwargs, batch_size=args.batch_size,
               dtype='float16 (AMP)' if args.amp else 'float32',
               warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
               gemm=gemm, seconds=round(seconds, 1), errors={}, skipped={})
    for key, res in r.items():
        if 'error' in res:
            out['errors'][key] = res['error']
        if 'skipped' in res:
            out['skipped'][key] = res['skipped']

    # form selection, per phase
    selection = {}
    for phase, prefix in (('train', 'train:'), ('inference', 'infer:')):
        figs = {f: r[prefix + f]['images_per_sec'] for f in forms
                if f and prefix + f in r and 'images_per_sec' in r[prefix + f]}
        if len(figs) > 1:
            chosen = max(figs, key=figs.get)
            record(dkey, args.model, args.batch_size, phase, figs, chosen)
            selection[phase] = dict(chosen=chosen, images_per_sec={k: round(v, 2) for k, v in figs.items()})
        elif figs:
            selection[phase] = dict(chosen=next(iter(figs)), images_per_sec=figs, measured=False)
    out['form_selection'] = dict(device=dkey, **selection) if selection else None

    impls = {}
    tk_, train = fastest(r, 'train:')
    ik, infer = fastest(r, 'infer:')
    flops = (infer or {}).get('flops', {}).get('flops')
    impls['dmrnet'] = _impl(args.model, train, infer, r.get('int8'), flops, peak,
                            train_form=tk_ and tk_.split(':')[1], infer_form=ik and ik.split(':')[1])
    if not args.no_gluoncv:
        gi = r.get('gluoncv:infer', {})
        impls['gluoncv'] = _impl(args.gluoncv_model, r.get('gluoncv:train'), gi, None,
                                 gi.get('flops', {}).get('flops'), peak)
    if tk is not None and not args.no_torch:
        ti = r.get('torch:infer', {})
        impls['pytorch'] = _impl('DMRNet (PyTorch eager, tools/torch_dmrnet.py)', r.get('torch:train'),
                                 ti, None, ti.get('flops_per_image', flops), peak)
    out['implementations'] = impls

    def ratio(a, b):
        return round(a / b, 3) if a and b else None
    d, g, t = impls.get('dmrnet', {}), impls.get('gluoncv', {}), impls.get('pytorch', {})
    out['ratios'] = dict(
        train_vs_pytorch=ratio(d.get('train_images_per_sec'), t.get('train_images_per_sec')),
        train_vs_gluoncv=ratio(d.get('train_images_per_sec'), g.get('train_images_per_sec')),
        infer_vs_pytorch=ratio(d.get('infer_images_per_sec'), t.get('infer_images_per_sec')),
        infer_vs_gluoncv=ratio(d.get('infer_images_per_sec'), g.get('infer_images_per_sec')),
        latency_pytorch_over_ours=ratio(t.get('latency_ms'), d.get('latency_ms')),
        int8_vs_pytorch_fp32=ratio(d.get('int8_images_per_sec'), t.get('infer_images_per_sec')),
        int8_vs_fp32=ratio(d.get('int8_images_per_sec'), d.get('infer_images_per_sec')))
    targets = [('training >= 1.25x PyTorch eager', 'train_vs_pytorch', 1.25),
               ('training >= 1.0x GluonCV ' + args.gluoncv_model, 'train_vs_gluoncv', 1.0),
               ('inference (exported) >= 1.5x PyTorch eager', 'infer_vs_pytorch', 1.5),
               ('INT8 >= 2.5x fp32 PyTorch eager', 'int8_vs_pytorch_fp32', 2.5)]
    bd = {}
    for key, res in r.items():
        if key.startswith('trace:') and 'onednn_ms' in res:
            _, impl, phase = key.split(':')
            ips = impls.get('dmrnet' if impl == 'ours' else impl, {}).get(
                phase + '_images_per_sec')
            if ips:
                bd.setdefault(phase, {})[impl] = breakdown(res, args.batch_size, ips)
    out['breakdown'] = bd or None

    def limits(key, thr):
        # For a target against PyTorch in a traced phase: the ratio ours would reach if all but
        # its convolution primitives took no time (no graph on MXNet 1.9.1's oneDNN kernels does
        # better), and what meeting the target leaves for all but our convolutions, against
        # what that work takes now (ms per batch).
        phase, _, other = key.partition('_vs_')
        b = bd.get(phase, {})
        conv = b.get('ours', {}).get('onednn_ms', {}).get('conv')
        if other != 'pytorch' or not conv or 'pytorch' not in b:
            return dict(ceiling=None)
        return dict(ceiling=round(b['pytorch']['wall_ms'] / conv, 3),
                    non_conv_budget_ms=round(b['pytorch']['wall_ms'] / thr - conv, 1),
                    non_conv_ms=round(b['ours']['wall_ms'] - conv, 1))
    out['targets'] = [dict(target=name, ratio=out['ratios'][key], threshold=thr,
                           met=(out['ratios'][key] >= thr) if out['ratios'][key] else None,
                           **limits(key, thr))
                      for name, key, thr in targets]
    out['ceilings'] = {key: t.get('ceiling') for (_, key, _), t in zip(targets, out['targets'])
                       if key.endswith('_vs_pytorch')}
    out['threads'] = {k: v for k, v in (train or infer or {}).items()
                      if k in ('omp_num_threads', 'mxnet_engine', 'mkldnn')}
    tt = r.get('torch:train') or r.get('torch:infer') or {}
    if 'torch_threads' in tt:
        out['threads'].update(torch_threads=tt['torch_threads'], torch_version=tt['torch_version'])
    out['env'] = {k: v for k, v in sorted(os.environ.items())
                  if k.startswith(('MXNET_', 'OMP_', 'KMP_', 'MKL', 'DNNL', 'ONEDNN', 'OPENBLAS'))}
    out['jobs'] = {k: {kk: vv for kk, vv in v.items() if kk != 'times'} for k, v in r.items()}
    return out


def _impl(name, train, infer, int8, flops, peak, train_form=None, infer_form=None):
    train, infer = train or {}, infer or {}
    d = dict(name=name, flops_per_image=flops,
             train_images_per_sec=_round(train.get('images_per_sec')),
             train_form=train_form,
             infer_images_per_sec=_round(infer.get('images_per_sec')),
             infer_variant=infer.get('best'), infer_form=infer_form,
             latency_ms=_round(infer.get('latency_ms')),
             train_peak_rss_mb=train.get('peak_rss_mb'),
             train_peak_rss_delta_mb=train.get('peak_rss_delta_mb'),
             infer_peak_rss_mb=infer.get('peak_rss_mb'),
             infer_peak_rss_delta_mb=infer.get('peak_rss_delta_mb'),
             params=train.get('params'))
    if flops and d['train_images_per_sec']:
        d['train_gflops'] = _round(_gflops(3 * flops, d['train_images_per_sec']))
    if flops and d['infer_images_per_sec']:
        d['infer_gflops'] = _round(_gflops(flops, d['infer_images_per_sec']))
    if peak:
        for k in ('train_gflops', 'infer_gflops'):
            if d.get(k):
                d[k.replace('gflops', 'fraction_of_gemm_peak')] = round(d[k] / peak, 3)
    if int8 is not None:
        d['int8_images_per_sec'] = _round(int8.get('images_per_sec'))
        d['int8_latency_ms'] = _round(int8.get('latency_ms'))
        d['int8_peak_rss_mb'] = int8.get('peak_rss_mb')
        d['int8_top1_agreement_with_fp32'] = int8.get('top1_agreement_with_fp32')
        d['int8_calibration'] = int8.get('calibration')
    return d


def _round(x, nd=2):
    return round(x, nd) if isinstance(x, (int, float)) else x


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def format_table(rep):
    lines = []
    m = rep['machine']
    lines.append('%s, batch %d, %s, %s: %s, %d usable cores; %s' % (
        rep['model'], rep['batch_size'], rep['dtype'], m['device'], m['cpu'], m['cores'],
        rep['date']))
    th = rep.get('threads', {})
    lines.append('threads: MXNet OpenMP %s (%s), PyTorch %s; float32 GEMM peak %s GFLOP/s '
                 '(numpy %s, MXNet %s, PyTorch %s; n=%s)' % (
                     th.get('omp_num_threads'), th.get('mxnet_engine'),
                     th.get('torch_threads', '-'), rep['gemm'].get('peak_gflops'),
                     rep['gemm'].get('numpy_gflops'), rep['gemm'].get('mxnet_gflops'),
                     rep['gemm'].get('torch_gflops', '-'), rep['gemm'].get('n')))
    head = ('%-34s %10s %9s %10s %9s %9s %9s %9s %8s' %
            ('implementation', 'train i/s', 'GFLOP/s', 'infer i/s', 'GFLOP/s', 'lat1 ms',
             'trainMB', 'inferMB', 'MFLOP/i'))
    lines += [head, '-' * len(head)]
    for key, d in rep['implementations'].items():
        tg = d.get('train_gflops')
        ig = d.get('infer_gflops')
        lines.append('%-34s %10s %9s %10s %9s %9s %9s %9s %8s' % (
            (d['name'] if key != 'dmrnet' else '%s (ours, %s/%s)' % (
                d['name'], d.get('train_form') or '-', d.get('infer_form') or '-'))[:34],
            _f(d.get('train_images_per_sec')),
            '%s%s' % (_f(tg), ' %2.0f%%' % (100 * d['train_fraction_of_gemm_peak'])
                      if d.get('train_fraction_of_gemm_peak') else ''),
            _f(d.get('infer_images_per_sec')),
            '%s%s' % (_f(ig), ' %2.0f%%' % (100 * d['infer_fraction_of_gemm_peak'])
                      if d.get('infer_fraction_of_gemm_peak') else ''),
            _f(d.get('latency_ms')), _f(d.get('train_peak_rss_mb'), 0),
            _f(d.get('infer_peak_rss_mb'), 0),
            _f(d['flops_per_image'] / 1e6 if d.get('flops_per_image') else None, 1)))
        if d.get('int8_images_per_sec'):
            lines.append('%-34s %10s %9s %10s %9s %9s %9s %9s %8s' % (
                '  INT8 (oneDNN, calibrated)', '', '', _f(d['int8_images_per_sec']), '',
                _f(d.get('int8_latency_ms')), '', _f(d.get('int8_peak_rss_mb'), 0), ''))
    fs = rep.get('form_selection')
    if fs:
        for phase in ('train', 'inference'):
            if phase in fs:
                lines.append('form (%s): %s  %s' % (phase, fs[phase]['chosen'], ', '.join(
                    '%s %.1f i/s' % kv for kv in sorted(fs[phase]['images_per_sec'].items()))))
    lines.append('ratios: ' + ', '.join('%s %s' % (k, v) for k, v in rep['ratios'].items()
                                        if v is not None))
    bd = rep.get('breakdown') or {}
    if bd:
        cols = ('conv', 'bnorm', 'eltwise', 'sum', 'reorder', 'pool', 'other')
        lines.append("where the time goes, ms per batch: oneDNN's own timing of each primitive "
                     "(verbose log, a separate run); wall from the timing run above; "
                     "outside = wall - oneDNN")
        head = '%-6s %-9s %8s' % ('phase', 'impl', 'wall') + ''.join(
            ' %7s' % c for c in cols) + ' %8s' % 'outside'
        lines += [head, '-' * len(head)]
        for phase in ('train', 'infer'):
            for impl, b in sorted(bd.get(phase, {}).items(), key=lambda kv: kv[0] != 'ours'):
                lines.append('%-6s %-9s %8.1f' % (phase, impl, b['wall_ms']) + ''.join(
                    ' %7.1f' % b['onednn_ms'].get(c, 0.0) for c in cols) +
                    ' %8.1f' % b['outside_ms'])
    for t in rep['targets']:
        lines.append('target %-45s %6s  %s%s' % (
            t['target'], t['ratio'], {True: 'MET', False: 'NOT MET', None: 'n/a'}[t['met']],
            '  (leaves %.0f ms for all but our convolutions, which now takes %.0f ms; ceiling '
            '%.2f)' % (t['non_conv_budget_ms'], t['non_conv_ms'], t['ceiling'])
            if t.get('ceiling') else ''))
    for k, v in rep['skipped'].items():
        lines.append('skipped %s: %s' % (k, v))
    for k, v in rep['errors'].items():
        lines.append('ERROR %s: %s' % (k, v))
    lines.append('(%s s; medians of %d timed iterations x %d round(s) after %d warm-up)' % (
        rep['seconds'], rep['repeats'], rep['rounds'], rep['warmup']))
    return '\n'.join(lines)


def _f(x, nd=1):
    return '-' if x is None else ('%.*f' % (nd, x))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('--model', default='dmrnet56', help='a preset or family of dmrnet.symbols')
    p.add_argument('--model-kwargs', default='', help='JSON keyword arguments for get_model')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--gpus', default='', help='a GPU index (the first is used); empty: CPU')
    p.add_argument('--amp', action='store_true', help='float16 mixed precision (GPUs)')
    p.add_argument('--form', default='auto', choices=['auto', 'branch', 'fused'],
                   help='auto: measure both merge-and-run forms and report the faster')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--rounds', type=int, default=2,
                   help='run the whole job list this many times, interleaved, pooling the timings')
    p.add_argument('--gluoncv-model', default='cifar_resnet110_v1')
    p.add_argument('--no-gluoncv', action='store_true')
    p.add_argument('--no-torch', action='store_true')
    p.add_argument('--no-int8', action='store_true')
    p.add_argument('--no-train', action='store_true')
    p.add_argument('--no-trace', action='store_true',
                   help='skip the oneDNN breakdown of where the time goes (CPU runs)')
    p.add_argument('--torch-variants', default='nchw,channels_last')
    p.add_argument('--calib-data-dir', default=None,
                   help='packed .rec folder whose training images calibrate INT8')
    p.add_argument('--calib-dataset', default='digits')
    p.add_argument('--num-calib', type=int, default=None)
    p.add_argument('--json', action='store_true', help='print one JSON object')
    p.add_argument('--out', help='also write the JSON report to this file')
    p.add_argument('--inprocess', action='store_true',
                   help='run every job in this process (quick checks; memory figures accumulate)')
    p.add_argument('--job', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.amp and not args.gpus:
        p.error('--amp (float16) needs --gpus')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.job:
        spec = json.loads(args.job)
        res = run_job_here(spec)
        print(JOB_TAG + json.dumps(res), flush=True)
        return 0
    _setup_env()
    sys.path.insert(0, HERE)
    import warnings
    warnings.filterwarnings('ignore')
    tic = time.time()
    jobs, forms, tk, gpu, kwargs = plan(args)
    if not args.no_int8 and gpu is None:
        jobs.append(('int8', None))  # placeholder: runs after the inference forms are measured
    rounds = {}
    if import_torch() is None and not args.no_torch:
        print('PyTorch is not installed: its columns are skipped (make bench installs it)',
              file=sys.stderr)
    chosen_form = None
    for rnd in range(args.rounds):
        # every other round runs the jobs in reverse order, so that a slow drift of the
        # machine's load does not favour the jobs that come first
        order = jobs if rnd % 2 == 0 else jobs[:1] + jobs[1:][::-1]
        for key, spec in order:
            if key == 'int8' and chosen_form is None and not any(k.startswith('infer:') for k in rounds):
                chosen_form = forms[0]
            if key == 'int8':
                infer = {f: _merge_rounds(rounds['infer:' + (f or 'single')])
                         for f in forms if 'infer:' + (f or 'single') in rounds}
                ok = {f: v['images_per_sec'] for f, v in infer.items() if 'images_per_sec' in v}
                if chosen_form is None:
                    chosen_form = max(ok, key=ok.get) if ok else forms[0]
                spec = dict(kind='mx_int8', source='dmrnet', model=args.model, kwargs=kwargs,
                            form=chosen_form, batch_size=args.batch_size, warmup=args.warmup,
                            repeats=args.repeats, gpu=gpu, calib_data_dir=args.calib_data_dir,
                            calib_dataset=args.calib_dataset)
                if args.num_calib:
                    spec['num_calib'] = args.num_calib
            print('[%d/%d] %s ...' % (rnd + 1, args.rounds, key), file=sys.stderr, flush=True)
            rounds.setdefault(key, []).append(run_job(spec, inprocess=args.inprocess))
    results = {k: _merge_rounds(v) for k, v in rounds.items()}
    if not args.no_trace and gpu is None:
        for key, spec in trace_plan(args, results, tk, kwargs):
            print('[trace] %s ...' % key, file=sys.stderr, flush=True)
            results[key] = run_job(spec, inprocess=args.inprocess)
    rep = assemble(args, jobs, results, forms, tk, gpu, kwargs, time.time() - tic)
    if 'int8' in results:
        rep['int8_form'] = chosen_form
    elif gpu is not None and not args.no_int8:
        rep['skipped']['int8'] = 'INT8 quantization in MXNet 1.9 runs on CPUs (oneDNN) only'
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rep, f, indent=1, sort_keys=True)
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print(format_table(rep))
    return 1 if rep['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
