"""`--amp` on a CPU: bfloat16 only where it trains faster than float32 here, found by measurement
and remembered, as the network form is chosen (dmrnet.tools.bench.formselect).

    python -m dmrnet.train.ampselect --model dmrnet56 --batch-size 64 [--remeasure]
        (--batch-size: per device; prints the choice and both figures as JSON)

Whether bfloat16 pays depends on the CPU: MXNet 1.9.1's oneDNN 2.4 trains faster in bfloat16 on
some CPUs with native bfloat16 and slower on others (docs/PERFORMANCE.md has the figures).
`choose` times the training step (dmrnet.train.step, as the run takes it) in float32 and in
bfloat16 on a synthetic batch of the run's per-device size, each dtype in a process of its own
(mx.contrib.amp.init changes the whole process for good), and caches the answer per CPU model,
thread count, network and batch in ~/.cache/dmrnet/amp-selection.json ($DMRNET_CACHE_DIR
overrides the folder). bfloat16 is chosen only when it is at least MARGIN faster: a tie goes
to float32, which needs no conversions and computes exactly what the CPU computes without --amp.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from dmrnet.train.precision import cpu_model
from dmrnet.utils.files import cache_path, read_cache, write_json

CACHE_NAME = 'amp-selection.json'
DTYPES = ('float32', 'bfloat16')
# bfloat16 must beat float32 by this factor: the two timings come from separate processes and
# move by a few percent, and a tie is not worth a lower-precision run.
MARGIN = 1.03
# Figures closer than this are measured a second time, in the other order.
CLOSE = 1.15
# The timed steps of a child stop after this many seconds (the first step, which builds the
# graph and oneDNN's primitives, is never timed), so a large network costs seconds, not minutes.
BUDGET_SECONDS = 4.0
MAX_STEPS = 4
CHILD_TIMEOUT = 600


def cache_file():
    return cache_path(CACHE_NAME)


def load_cache():
    return read_cache(CACHE_NAME)


def cache_key(family, kwargs, batch_size):
    """'cpu:<model name>:<threads>|family(k=v,...)|batch': a choice holds for that CPU model,
    OpenMP thread count, network and per-device batch only."""
    network = '%s(%s)' % (family, ','.join('%s=%s' % kv for kv in sorted(kwargs.items())))
    return 'cpu:%s:%s|%s|%d' % (cpu_model(), os.environ.get('OMP_NUM_THREADS', ''), network,
                                batch_size)


def record(key, figures):
    """Store both figures and the choice they imply; returns the entry."""
    entry = dict(chosen=pick(figures), images_per_sec={k: round(v, 2) for k, v in figures.items()},
                 date=time.strftime('%Y-%m-%d %H:%M:%S'))
    cache = load_cache()
    cache[key] = entry
    try:
        write_json(cache_file(), cache)
    except OSError:
        pass  # a read-only home must not stop a training run; it measures again next time
    return entry


def pick(figures):
    return 'bfloat16' if figures['bfloat16'] >= MARGIN * figures['float32'] else 'float32'


def measure(model, kwargs, batch_size):
    """{'float32': images/s, 'bfloat16': images/s} of the training step of get_model(model,
    **kwargs) at `batch_size`, each in a child process of this interpreter (the environment,
    with its thread count and engine, is this process's). A close result (within CLOSE) is
    measured once more in the other order, and each dtype keeps its better figure."""
    figures = {}
    for order in (DTYPES, DTYPES[::-1]):
        for dtype in order:
            figures[dtype] = max(figures.get(dtype, 0.0), _time_in_child(dtype, model, kwargs,
                                                                         batch_size))
        if not 1 / CLOSE < figures['bfloat16'] / figures['float32'] < CLOSE:
            break
    return figures


def _time_in_child(dtype, model, kwargs, batch_size):
    cmd = [sys.executable, '-m', 'dmrnet.train.ampselect', '--child', dtype, '--model', model,
           '--model-kwargs', json.dumps(kwargs), '--batch-size', str(batch_size)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    lines = [line for line in p.stdout.splitlines() if line.startswith('{')]
    if p.returncode != 0 or not lines:
        tail = ' | '.join((p.stderr or p.stdout).strip().splitlines()[-3:])
        raise RuntimeError('the %s training step could not be timed (exit %d): %s'
                           % (dtype, p.returncode, tail))
    return json.loads(lines[-1])['images_per_sec']


def choose(model, kwargs, family, full_kwargs, batch_size, remeasure=False):
    """The cache entry (chosen, images_per_sec, date, plus source 'cached' or 'measured') for
    training `model` at per-device `batch_size` on this CPU."""
    key = cache_key(family, full_kwargs, batch_size)
    if not remeasure:
        entry = load_cache().get(key)
        if entry and entry.get('chosen') in DTYPES:
            return dict(entry, source='cached')
    return dict(record(key, measure(model, kwargs, batch_size)), source='measured')


def time_step(dtype, model, kwargs, batch_size):
    """Images/s of the training step in `dtype` in this process (a child of `measure`)."""
    import dmrnet.utils  # noqa: F401  (threads before mxnet)
    import mxnet as mx
    from dmrnet.symbols import get_model
    from dmrnet.symbols.deploy import input_shape_for
    from dmrnet.train import precision
    from dmrnet.train.step import synthetic_step
    amp = dtype != 'float32'
    if amp:
        precision.init_amp(dtype)
    net = get_model(model, **kwargs)
    mx.random.seed(0)
    net.initialize(ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    opt_params = {'learning_rate': 0.0, 'momentum': 0.9, 'wd': 1e-4}  # the work stays the same
    if amp:
        opt_params['multi_precision'] = True
    step = synthetic_step(net, mx.cpu(), input_shape_for(net, batch_size),
                          classes=kwargs.get('classes', 10), opt_params=opt_params)
    step()  # builds the graph and oneDNN's primitives: not timed
    times, start = [], time.perf_counter()
    while len(times) < MAX_STEPS and (len(times) < 2 or
                                      time.perf_counter() - start < BUDGET_SECONDS):
        tic = time.perf_counter()
        step()
        times.append(time.perf_counter() - tic)
    # the second step can still be settling: the best of the timed steps
    return batch_size / min(times), len(times)


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    p.add_argument('--model', default='dmrnet56')
    p.add_argument('--model-kwargs', default='{}', help='JSON keyword arguments for get_model')
    p.add_argument('--batch-size', type=int, default=64, help='per device')
    p.add_argument('--remeasure', action='store_true')
    p.add_argument('--child', choices=DTYPES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        kwargs = json.loads(args.model_kwargs)
    except ValueError as e:
        p.exit(2, '%s: error: --model-kwargs: not JSON (%s)\n' % (p.prog, e))
    if args.batch_size < 1:
        p.exit(2, '%s: error: --batch-size %d: must be >= 1\n' % (p.prog, args.batch_size))
    if args.child:
        import warnings
        warnings.filterwarnings('ignore')
        images_per_sec, steps = time_step(args.child, args.model, kwargs, args.batch_size)
        print(json.dumps(dict(dtype=args.child, images_per_sec=images_per_sec, steps=steps)))
        return 0
    from dmrnet.symbols.registry import resolve
    from dmrnet.train.precision import no_bfloat16_reason
    if no_bfloat16_reason():
        p.exit(2, '%s: error: %s\n' % (p.prog, no_bfloat16_reason()))
    try:
        family, full = resolve(args.model, **kwargs)
    except (ValueError, TypeError) as e:
        p.exit(2, '%s: error: --model %s: %s\n' % (p.prog, args.model, str(e).split('\n')[0]))
    # the engine a CPU training run selects (dmrnet.utils.runtime), unless the user chose one
    os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
    entry = choose(args.model, kwargs, family, full, args.batch_size, args.remeasure)
    print(json.dumps(dict(entry, model=args.model, batch_size=args.batch_size), sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
