"""The MXNet jobs: the training step, inference of the exported model and its INT8 version,
for one of ours (a preset in a merge-and-run form) or a GluonCV network.

Each job function takes the job's spec (a JSON-able dict: kind, source, model, kwargs, form,
batch_size, warmup, repeats, gpu, ...) and returns its figures as a JSON-able dict.
"""
import os
import tempfile
import time

from dmrnet.tools.bench.flops import count_flops
from dmrnet.tools.bench.frameworks import import_gluoncv
from dmrnet.tools.bench.timing import choose_fastest_variant, median, peak_rss_mb, time_calls


def context(spec):
    import mxnet as mx
    return mx.gpu(spec['gpu']) if spec.get('gpu') is not None else mx.cpu()


def build(spec, ctx):
    """(network, input shape) of a job: one of ours (a preset + form) or GluonCV's."""
    import mxnet as mx
    if spec['source'] == 'gluoncv':
        gluoncv = import_gluoncv()
        net = gluoncv.model_zoo.get_model(spec['model'], classes=spec.get('classes', 10))
        shape = (spec['batch_size'], 3, 32, 32)
    else:
        from dmrnet.symbols import get_model
        from dmrnet.symbols.deploy import input_shape_for
        kwargs = dict(spec.get('kwargs', {}))
        if spec.get('form') == 'fused':
            kwargs['fused'] = True
        net = get_model(spec['model'], **kwargs)
        shape = input_shape_for(net, spec['batch_size'])
    mx.random.seed(0)
    net.initialize(ctx=ctx)
    return net, tuple(shape)


def threads_info():
    import mxnet as mx
    info = dict(omp_num_threads=int(os.environ.get('OMP_NUM_THREADS', '0') or 0),
                mxnet_engine=os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice'))
    try:
        info['mkldnn'] = bool(mx.runtime.Features().is_enabled('MKLDNN'))
    except Exception:
        pass
    return info


def memory_info(base_rss, ctx):
    """Peak resident set, its growth over `base_rss`, and on GPUs the device memory in use."""
    out = dict(peak_rss_mb=round(peak_rss_mb(), 1),
               peak_rss_delta_mb=round(peak_rss_mb() - base_rss, 1))
    if ctx.device_type == 'gpu':
        import mxnet as mx
        free, total = mx.context.gpu_memory_info(ctx.device_id)
        out['gpu_mem_used_mb'] = round((total - free) / 2 ** 20, 1)
    return out


def training_step(spec):
    """(step, shape, info): one training iteration of the job's network as a training run
    takes it (its engine, dmrnet.train.step's Trainer and step; NAG, momentum 0.9, wd 1e-4),
    on a synthetic batch."""
    from dmrnet.train import precision
    from dmrnet.train.step import synthetic_step
    from dmrnet.utils.runtime import select_engine
    ctx = context(spec)
    # The engine a training run uses on this device, chosen before the first operator creates it.
    engine = select_engine([ctx])
    amp = bool(spec.get('amp'))
    dtype = precision.amp_dtype([ctx]) if amp else None
    if amp:  # float16 on a GPU, bfloat16 on a CPU: as `--amp` trains (dmrnet.train.precision)
        precision.init_amp(dtype)
    net, shape = build(spec, ctx)
    # the variants of the step's breakdown (dmrnet.tools.bench.step_parts)
    from dmrnet.tools.bench.step_parts import drop_merge_scales, fuse_bn_relu
    fused = fuse_bn_relu(net) if spec.get('bn_relu') else 0
    unscaled = drop_merge_scales(net) if spec.get('unscaled') else 0
    net.hybridize(static_alloc=True, static_shape=True)
    opt_params = {'learning_rate': 0.01, 'momentum': 0.9, 'wd': 1e-4}
    if amp:
        opt_params['multi_precision'] = True
    step = synthetic_step(net, ctx, shape, optimizer='nag', opt_params=opt_params,
                          loss_scaling=amp and precision.needs_loss_scaling(dtype))
    return step, shape, dict(net=net, ctx=ctx, engine=engine, trainer='train.step',
                             bn_relu_fused=fused, merges_unscaled=unscaled)


def job_mx_train(spec):
    from dmrnet.symbols import count_params
    base = peak_rss_mb()
    step, shape, info = training_step(spec)
    times = time_calls(step, spec['warmup'], spec['repeats'])
    res = dict(times=times, images_per_sec=shape[0] / median(times), trainer=info['trainer'],
               engine=info['engine'], params=count_params(info['net']), **threads_info())
    res.update(memory_info(base, info['ctx']))
    return res


def export(spec, ctx, folder):
    """Export the job's network as the static symbol files users deploy, with non-trivial
    BatchNorm statistics as a trained model has (fresh ones are 0/1); returns (prefix, shape)."""
    import mxnet as mx
    from dmrnet.symbols.deploy import export_model
    net, shape = build(spec, ctx)
    net(mx.nd.zeros((1,) + shape[1:], ctx=ctx))  # completes deferred initialisation (GluonCV)
    for name, p in net.collect_params().items():
        if name.endswith('running_var'):
            p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape, ctx=ctx))
        elif name.endswith('running_mean'):
            p.set_data(mx.nd.random.normal(0, 0.1, shape=p.shape, ctx=ctx))
    prefix = os.path.join(folder, 'model')
    export_model(net, prefix, input_shape=(1,) + shape[1:], ctx=ctx)
    return prefix, shape


def hybridized_block(sym, arg_params, aux_params, ctx):
    """A runnable block of a graph, fp32 or INT8, hybridized as deployment runs it."""
    from dmrnet.symbols.deploy import to_block
    block = to_block(sym, arg_params, aux_params, ctx)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def inference_figures(make_block, shape, ctx, spec):
    """(figures, output): images/s at the batch size and batch-1 latency of blocks made by
    make_block(), and the output of the batch."""
    import mxnet as mx
    mx.random.seed(0)  # the same input for every variant, so their outputs compare
    x = mx.nd.random.normal(shape=shape, ctx=ctx)
    big = make_block()
    times = time_calls(lambda: big(x).wait_to_read(), spec['warmup'], spec['repeats'])
    out = big(x).asnumpy()
    big = None  # free its memory before the batch-1 block is built
    one = make_block()
    x1 = x[:1]
    latency = time_calls(lambda: one(x1).wait_to_read(), max(spec['warmup'], 3),
                         max(4 * spec['repeats'], 10))
    return dict(images_per_sec=shape[0] / median(times), times=times,
                latency_ms=1000 * median(latency)), out


def inference_variants(spec, ctx, folder):
    """The job's network exported into `folder` and loaded back as the graphs the inference
    job runs: ({'plain': (sym, args)[, 'onednn': (sym, args)]}, aux, shape, info). The oneDNN
    graph (CPUs): merge scales folded, operators renamed, MXNet's MKLDNN subgraph pass."""
    import mxnet as mx
    from dmrnet.symbols.deploy import optimize_exported
    prefix, shape = export(spec, ctx, folder)
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    info = dict(flops=count_flops(sym, (1,) + shape[1:]))
    variants = {'plain': (sym, arg_params)}
    if ctx.device_type == 'cpu' and spec.get('onednn', True):
        fast, fast_params, info['merge_scale_folded'] = optimize_exported(sym, arg_params)
        variants['onednn'] = (fast.get_backend_symbol('MKLDNN'), fast_params)
    return variants, aux_params, shape, info


def job_mx_infer(spec):
    """The exported model: plain graph and (CPU) the oneDNN-fused graph."""
    import numpy as np
    ctx = context(spec)
    base = peak_rss_mb()
    res = dict(variants={}, **threads_info())
    with tempfile.TemporaryDirectory() as folder:
        variants, aux_params, shape, info = inference_variants(spec, ctx, folder)
        res.update(info)
        outs = {}
        for name, (sym, arg_params) in variants.items():
            res['variants'][name], outs[name] = inference_figures(
                lambda: hybridized_block(sym, arg_params, aux_params, ctx), shape, ctx, spec)
    if 'onednn' in outs:
        scale = float(np.abs(outs['plain']).max()) or 1.0
        res['onednn_max_rel_diff'] = float(np.abs(outs['onednn'] - outs['plain']).max()) / scale
    choose_fastest_variant(res)
    res.update(memory_info(base, ctx))
    return res


def bfloat16_model(spec, ctx, folder):
    """The job's network exported, then converted to compute in bfloat16 as tools/export.py
    --bfloat16 writes it (dmrnet.symbols.deploy.export_bfloat16; parameters stay float32),
    loaded back: ((sym, args, aux) in bfloat16, (sym, args, aux) in float32, shape). The
    bfloat16 file is already the oneDNN inference graph, converted (export_bfloat16 says why)."""
    import mxnet as mx
    from dmrnet.symbols.deploy import export_bfloat16
    prefix, shape = export(spec, ctx, folder)
    export_bfloat16(prefix, prefix + '-bf16', 0, (1,) + shape[1:])
    return (mx.model.load_checkpoint(prefix + '-bf16', 0),
            mx.model.load_checkpoint(prefix, 0), shape)


def agreement(res, ref, out):
    """Top-1 agreement and largest relative difference of `out` against the float32 `ref`."""
    import numpy as np
    res['top1_agreement_with_fp32'] = float((ref.argmax(1) == out.argmax(1)).mean())
    res['max_rel_diff_vs_fp32'] = float(np.abs(ref - out).max() / (np.abs(ref).max() or 1.0))


def job_mx_infer_bf16(spec):
    """The exported model in bfloat16 (with AMX when the job process enabled it: spec 'amx')."""
    ctx = context(spec)
    if ctx.device_type != 'cpu':
        return dict(skipped='the bfloat16 export is the CPU inference path')
    base = peak_rss_mb()
    res = dict(**threads_info())
    with tempfile.TemporaryDirectory() as folder:
        (sym, args, aux), (sym32, args32, aux32), shape = bfloat16_model(spec, ctx, folder)
        figures, out = inference_figures(lambda: hybridized_block(sym, args, aux, ctx), shape,
                                         ctx, spec)
        res.update(figures)
    agreement(res, _output(sym32, args32, aux32, ctx, shape), out.astype('float32'))
    res.update(memory_info(base, ctx))
    return res


def _output(sym, args, aux, ctx, shape):
    """The float32 reference output on inference_figures' input (seed 0)."""
    import mxnet as mx
    mx.random.seed(0)
    x = mx.nd.random.normal(shape=shape, ctx=ctx)
    return hybridized_block(sym, args, aux, ctx)(x).asnumpy()


def int8_model(spec, ctx, folder, res):
    """The job's network exported, fused for oneDNN and quantized (calibrated); fills `res`
    with how; returns ((qsym, qargs, qaux), (sym, args, aux) in float32, shape)."""
    import mxnet as mx
    from dmrnet.symbols.deploy import DEFAULT_CALIB_MODE, optimize_exported, quantize
    from dmrnet.tools.quantize import calibration_data
    prefix, shape = export(spec, ctx, folder)
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    num_calib = spec.get('num_calib', 4 * shape[0])
    calib = calibration_data(spec.get('calib_data_dir'), spec.get('calib_dataset', 'digits'),
                             shape[0], num_calib, shape)
    tic = time.perf_counter()
    fast, fast_params, res['merge_scale_folded'] = optimize_exported(sym, arg_params)
    quantized = quantize(fast, fast_params, aux_params, calib,
                         spec.get('calib_mode', DEFAULT_CALIB_MODE), num_calib)
    res['quantize_seconds'] = time.perf_counter() - tic
    res['calibration'] = ('%d training images of %s' % (calib.seen, spec['calib_dataset'])
                          if spec.get('calib_data_dir') else
                          '%d synthetic images (timing only)' % calib.seen)
    return quantized, (sym, arg_params, aux_params), shape


def job_mx_int8(spec):
    """INT8 post-training quantization of the exported model (oneDNN), calibrated (with AMX
    when the job process enabled it: spec 'amx')."""
    ctx = context(spec)
    if ctx.device_type != 'cpu':
        return dict(skipped='INT8 quantization in MXNet 1.9 runs on CPUs (oneDNN) only')
    base = peak_rss_mb()
    res = dict(**threads_info())
    with tempfile.TemporaryDirectory() as folder:
        (qsym, qarg_params, qaux_params), (sym, arg_params, aux_params), shape = int8_model(
            spec, ctx, folder, res)
        figures, q = inference_figures(
            lambda: hybridized_block(qsym, qarg_params, qaux_params, ctx), shape, ctx, spec)
        res.update(figures)
        # agreement with the fp32 graph on the timing batch
        agreement(res, _output(sym, arg_params, aux_params, ctx, shape), q)
    res.update(memory_info(base, ctx))
    return res
