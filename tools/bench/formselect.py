"""Choose the faster form of a merge-and-run network (branch or fused grouped convolution) for a
device by measurement, and remember the choice.

    python -m dmrnet.tools.bench.formselect --model dmrnet56 [--batch-size 64] [--gpus 0]
        [--phase train]                  (or python tools/bench/formselect.py ...)

The two forms compute the same function (symbols/fuse.py converts weights between them); which
is faster depends on the device and its libraries (oneDNN on CPUs, cuDNN grouped convolutions on
GPUs). `choose()` returns the cached choice for (device, model, batch, phase) or measures both
forms and caches the answer in ~/.cache/dmrnet/form-selection.json ($DMRNET_CACHE_DIR overrides
the folder). The benchmark records its own measurement there too.
"""
import argparse
import json
import os
import time

from dmrnet.tools.bench.timing import median, time_calls
from dmrnet.utils.devices import contexts
from dmrnet.train.precision import cpu_model
from dmrnet.utils.files import cache_path, read_cache, write_json

FORMS = ('branch', 'fused')


def cache_file():
    return cache_path('form-selection.json')


cpu_name = cpu_model


def device_key(ctx_str):
    """'cpu:<model name>:<threads>' or 'gpu<i>:<name>' (a choice holds for that device only)."""
    if ctx_str.startswith('gpu'):
        name = ''
        try:
            import subprocess
            i = ctx_str[3:].strip('()')
            name = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader',
                                   '-i', i], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:
            pass
        return '%s:%s' % (ctx_str, name)
    return 'cpu:%s:%s' % (cpu_name(), os.environ.get('OMP_NUM_THREADS', ''))


def canonical(model, **kwargs):
    """One name for a network whatever it was called by: 'dmrnet(L=54,branches=2,...)'
    (preset or family resolved; `fused` and `classes` left out: the choice concerns both forms
    of the same network, whatever its classifier)."""
    import inspect
    from dmrnet.symbols import registry
    family, full = registry.resolve(model, **kwargs)
    params = inspect.signature(registry._FAMILIES[family]).parameters
    full = dict({k: p.default for k, p in params.items() if p.default is not p.empty}, **full)
    return '%s(%s)' % (family, ','.join('%s=%s' % kv for kv in sorted(full.items())
                                        if kv[0] not in ('fused', 'classes')))


def _key(device, model, batch_size, phase):
    try:
        model = canonical(model)
    except (ValueError, ImportError):
        pass
    return '%s|%s|%d|%s' % (device, model, batch_size, phase)


def auto_fused(family, kwargs, ctx_str='cpu', phase='train', batch_size=64):
    """For `get_model(..., fused='auto')`: True when the fused form measured faster on this
    device (the cached measurement at `batch_size`, else at any batch size); False (the branch
    form) when nothing was measured here yet."""
    name = canonical(family, **kwargs)
    device = device_key(ctx_str)
    cache = load_cache()
    entry = cache.get('%s|%s|%d|%s' % (device, name, batch_size, phase))
    if entry is None:
        prefix = '%s|%s|' % (device, name)
        hits = [v for k, v in cache.items() if k.startswith(prefix) and k.endswith('|' + phase)]
        entry = hits[0] if hits else None
    return bool(entry and entry['chosen'] == 'fused')


def load_cache():
    return read_cache('form-selection.json')


def record(device, model, batch_size, phase, figures, chosen=None):
    """Store measured images/s of both forms; returns the chosen form (the faster)."""
    chosen = chosen or max(figures, key=figures.get)
    cache = load_cache()
    cache[_key(device, model, batch_size, phase)] = dict(
        chosen=chosen, images_per_sec=figures, date=time.strftime('%Y-%m-%d %H:%M:%S'))
    try:
        write_json(cache_file(), cache)
    except OSError:
        pass  # a read-only home must not stop a benchmark
    return chosen


def cached(device, model, batch_size, phase):
    entry = load_cache().get(_key(device, model, batch_size, phase))
    return entry['chosen'] if entry else None


def measure(model, ctx, batch_size, phase='train', steps=3, warmup=1):
    """Images/s of both forms on `ctx` (an mx.Context) for `phase` ('train' or 'inference'):
    a training step as training takes it (dmrnet.train.step), or a forward pass."""
    from dmrnet.symbols import get_model
    from dmrnet.symbols.deploy import input_shape_for
    from dmrnet.train.step import synthetic_step
    import mxnet as mx
    figures = {}
    for form in FORMS:
        net = get_model(model, fused=(form == 'fused'))
        net.initialize(ctx=ctx)
        net.hybridize(static_alloc=True, static_shape=True)
        shape = input_shape_for(net, batch_size)
        if phase == 'train':
            # learning rate 0: the weights, and so the work of a step, stay as they are
            step = synthetic_step(net, ctx, shape, optimizer='nag',
                                  opt_params={'learning_rate': 0.0, 'momentum': 0.9})
        else:
            x = mx.nd.random.normal(shape=shape, ctx=ctx)

            def step():
                net(x)
                mx.nd.waitall()
        figures[form] = batch_size / median(time_calls(step, warmup, steps))
    return figures


def choose(model, ctx=None, batch_size=64, phase='train', remeasure=False):
    """'branch' or 'fused' for `model` on `ctx`, measured once per device and cached."""
    import mxnet as mx
    ctx = ctx or mx.cpu()
    device = device_key(str(ctx))
    if not remeasure:
        hit = cached(device, model, batch_size, phase)
        if hit:
            return hit
    return record(device, model, batch_size, phase, measure(model, ctx, batch_size, phase))


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    p.add_argument('--model', default='dmrnet56')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--gpus', default='', help='one GPU index, e.g. 0; empty: CPU')
    p.add_argument('--phase', default='train', choices=['train', 'inference'])
    p.add_argument('--remeasure', action='store_true')
    args = p.parse_args(argv)
    try:
        ctx = contexts(args.gpus)[0]
    except ValueError as e:
        p.error('--gpus: %s' % e)
    form = choose(args.model, ctx, args.batch_size, args.phase, args.remeasure)
    entry = load_cache().get(_key(device_key(str(ctx)), args.model, args.batch_size, args.phase))
    print(json.dumps(dict(model=args.model, device=device_key(str(ctx)), phase=args.phase,
                          batch_size=args.batch_size, chosen=form,
                          images_per_sec=(entry or {}).get('images_per_sec')), sort_keys=True))
    return form


if __name__ == '__main__':
    main()
