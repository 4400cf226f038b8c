"""The float32 training step taken apart: what each candidate for a leaner step would save,
measured the way the benchmark measures (every variant in its own process, rounds in
alternating order, medians of the pooled timed steps).

    python -m dmrnet.tools.bench.step_parts --model dmrnet56 --batch-size 64 [--rounds 2]
        [--trace] [--json] [--out FILE]

Variants of `mx_jobs.training_step` (NAG, hybridized, a synthetic batch):
  step      the step as training takes it
  bn_relu   every BatchNorm that a ReLU follows computed with it as one oneDNN primitive
            (MXNet's BatchNormReLU, parameters shared): the same numbers (the tests check)
  update    the optimizer's update alone (Trainer.step after one backward), repeated
  unscaled  the merge without its 1/K (not the paper's function): what the scaling costs with
            its layout conversions, so the most that any exact rewrite of it could save

--trace adds oneDNN's per-primitive time of `step`, `bn_relu` and `unscaled` (onednn_trace),
so that a difference, or its absence, shows in which kernels it lies.
"""
import argparse
import json
import sys
import time

from dmrnet.tools.bench.timing import median, time_calls

VARIANTS = ('step', 'bn_relu', 'update', 'unscaled')


def fuse_bn_relu(net):
    """Rewrite `net` in place (before it is hybridized): each BatchNorm directly followed by an
    Activation('relu') in a HybridSequential becomes one nn.BatchNormReLU sharing the
    BatchNorm's parameters, and the Activation is dropped. Returns how many pairs it fused."""
    from mxnet.gluon import nn
    fused = 0

    def fuse_children(block):
        nonlocal fused
        if not isinstance(block, nn.HybridSequential):
            return
        children = list(block._children.values())
        kept, i = [], 0
        while i < len(children):
            layer = children[i]
            nxt = children[i + 1] if i + 1 < len(children) else None
            if (type(layer) is nn.BatchNorm and isinstance(nxt, nn.Activation)
                    and nxt._act_type == 'relu'):
                kw = layer._kwargs
                kept.append(nn.BatchNormReLU(
                    axis=kw['axis'], momentum=kw['momentum'], epsilon=kw['eps'],
                    center=layer.beta.grad_req != 'null', scale=not kw['fix_gamma'],
                    use_global_stats=kw['use_global_stats'], in_channels=layer.gamma.shape[0],
                    prefix=layer.prefix, params=layer.params))
                fused += 1
                i += 2
            else:
                kept.append(layer)
                i += 1
        if len(kept) != len(children):
            block._children.clear()
            for j, layer in enumerate(kept):
                block.register_child(layer, str(j))

    # Block.apply visits children before their parent, so a Sequential's children are
    # rewritten after the walk below them has finished
    net.apply(fuse_children)
    return fused


def drop_merge_scales(net):
    """Leave out the 1/K of every merge in `net` (before it is hybridized); returns how many.
    Changes the function: for pricing the operator only."""
    from dmrnet.symbols.blocks import MergeAndRunBlock
    blocks = []
    net.apply(lambda b: blocks.append(b)
              if isinstance(b, MergeAndRunBlock) and b.mapping == 'merge' else None)
    for b in blocks:
        b.merge_scale = None
    return len(blocks)


def job_step_part(spec):
    """One variant's figures: seconds per timed iteration and images/s (for `update`, the
    images/s of a step that took only the update)."""
    from dmrnet.tools.bench import mx_jobs
    variant = spec['variant']
    step, shape, info = mx_jobs.training_step(dict(spec, bn_relu=variant == 'bn_relu',
                                                   unscaled=variant == 'unscaled'))
    if variant == 'update':
        times = _update_times(step, shape[0], spec['warmup'], spec['repeats'])
    else:
        times = time_calls(step, spec['warmup'], spec['repeats'])
    return dict(times=times, images_per_sec=shape[0] / median(times),
                bn_relu_fused=info.get('bn_relu_fused', 0),
                merges_unscaled=info.get('merges_unscaled', 0))


def _update_times(step, batch_size, warmup, repeats):
    """Seconds of the optimizer's update alone, after one full step has put gradients in
    place. The Trainer refuses to apply a gradient twice (it reads a flag on each weight that
    a backward sets), so the flag is set again, outside the timing, as a backward would."""
    import mxnet as mx
    step()
    trainer = step.trainer
    weights = [w for p in trainer._params if p.grad_req != 'null' for w in p.list_data()]
    times = []
    for i in range(warmup + repeats):
        for w in weights:
            w._fresh_grad = True
        tic = time.perf_counter()
        trainer.step(batch_size)
        mx.nd.waitall()
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return times


def plan(args):
    common = dict(kind='step_part', source='dmrnet', model=args.model, kwargs=args.kwargs,
                  batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats,
                  form=args.form, gpu=None, amp=False)
    return [(v, dict(common, variant=v)) for v in VARIANTS]


def trace_plan(args):
    common = dict(kind='trace', target='mx_train', source='dmrnet', model=args.model,
                  kwargs=args.kwargs, batch_size=args.batch_size, warmup=args.warmup,
                  repeats=args.repeats, form=args.form, gpu=None, amp=False)
    return [('trace:step', common), ('trace:bn_relu', dict(common, bn_relu=True)),
            ('trace:unscaled', dict(common, unscaled=True))]


def run(args, run_job):
    """{variant: merged result} after args.rounds rounds, each round in the reverse order of
    the one before, every job in its own process."""
    from dmrnet.tools.bench.jobs import merge_rounds, round_order
    jobs = plan(args)
    rounds = {key: [] for key, _ in jobs}
    for r in range(args.rounds):
        for key, spec in round_order(jobs, r):
            print('%s round %d: %s' % (time.strftime('%H:%M:%S'), r + 1, key),
                  file=sys.stderr, flush=True)
            rounds[key].append(run_job(spec, inprocess=args.inprocess))
    results = {key: merge_rounds(rs) for key, rs in rounds.items()}
    if args.trace:
        from dmrnet.tools.bench.onednn_trace import breakdown
        for key, spec in trace_plan(args):
            print('%s %s' % (time.strftime('%H:%M:%S'), key), file=sys.stderr, flush=True)
            res = run_job(spec)
            variant = key.split(':')[1]
            if 'onednn_ms' in res and 'images_per_sec' in results[variant]:
                results[variant]['breakdown'] = breakdown(
                    res, args.batch_size, results[variant]['images_per_sec'])
            else:
                results[variant]['breakdown_error'] = res.get('error', 'no trace')
    return results


def report(args, results):
    """The JSON-able report: per variant ms per step and images/s, and the two savings."""
    out = dict(model=args.model, model_kwargs=args.kwargs, batch_size=args.batch_size,
               form=args.form, rounds=args.rounds, warmup=args.warmup, repeats=args.repeats,
               date=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), variants={})
    for key, res in results.items():
        if 'error' in res:
            out['variants'][key] = dict(error=res['error'])
            continue
        entry = dict(ms=round(1000 * median(res['times']), 2),
                     images_per_sec=round(res['images_per_sec'], 2))
        for k in ('bn_relu_fused', 'merges_unscaled', 'breakdown', 'breakdown_error'):
            if k in res:
                entry[k] = res[k]
        out['variants'][key] = entry
    v = out['variants']
    if 'ms' in v.get('step', {}):
        if 'ms' in v.get('bn_relu', {}):
            out['bn_relu_saving'] = round(1 - v['bn_relu']['ms'] / v['step']['ms'], 4)
        if 'ms' in v.get('update', {}):
            out['update_share'] = round(v['update']['ms'] / v['step']['ms'], 4)
        if 'ms' in v.get('unscaled', {}):
            out['merge_scale_share'] = round(1 - v['unscaled']['ms'] / v['step']['ms'], 4)
    return out


def format_report(rep):
    lines = ['%s, batch %d, float32 training step taken apart (%s; %d round(s), medians of %d '
             'timed x rounds after %d warm-up)' % (rep['model'], rep['batch_size'], rep['date'],
                                                   rep['rounds'], rep['repeats'], rep['warmup']),
             '%-9s %10s %10s' % ('variant', 'ms', 'images/s')]
    for key, entry in rep['variants'].items():
        if 'error' in entry:
            lines.append('%-9s error: %s' % (key, entry['error']))
            continue
        note = {'bn_relu': ' (%d BatchNorm+ReLU pairs fused)' % entry.get('bn_relu_fused', 0),
                'unscaled': ' (%d merges without 1/K)' % entry.get('merges_unscaled', 0)
                }.get(key, '')
        lines.append('%-9s %10.1f %10.1f%s' % (key, entry['ms'], entry['images_per_sec'], note))
    if 'bn_relu_saving' in rep:
        lines.append('bn_relu saves %.1f%% of the step' % (100 * rep['bn_relu_saving']))
    if 'update_share' in rep:
        lines.append('the update is %.1f%% of the step' % (100 * rep['update_share']))
    if 'merge_scale_share' in rep:
        lines.append("the merges' 1/K costs %.1f%% of the step" % (100 * rep['merge_scale_share']))
    for key, entry in rep['variants'].items():
        b = entry.get('breakdown')
        if b:
            cols = ', '.join('%s %.1f' % kv for kv in sorted(b['onednn_ms'].items()))
            lines.append('%s oneDNN ms per step: %s; outside oneDNN %.1f of %.1f'
                         % (key, cols, b['outside_ms'], b['wall_ms']))
        elif 'breakdown_error' in entry:
            lines.append('%s trace: %s' % (key, entry['breakdown_error']))
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='python -m dmrnet.tools.bench.step_parts',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--model', default='dmrnet56')
    p.add_argument('--model-kwargs', default='{}',
                   help='JSON keyword arguments of the model, e.g. \'{"L": 6}\'')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--form', default='branch', choices=('branch', 'fused'),
                   help='merge-and-run form (the benchmark measures branch the faster on CPUs)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--trace', action='store_true', help="add oneDNN's per-primitive breakdown")
    p.add_argument('--json', action='store_true', help='print the report as one JSON object')
    p.add_argument('--out', help='also write the JSON report to this file')
    p.add_argument('--inprocess', action='store_true', help=argparse.SUPPRESS)  # tests
    args = p.parse_args(argv)
    try:
        args.kwargs = json.loads(args.model_kwargs)
    except ValueError as e:
        p.error('--model-kwargs must be a JSON object, e.g. \'{"L": 6}\': %s' % e)
    if not isinstance(args.kwargs, dict):
        p.error('--model-kwargs must be a JSON object, got %r' % args.model_kwargs)
    for name in ('batch_size', 'repeats', 'rounds'):
        if getattr(args, name) < 1:
            p.error('--%s must be at least 1, got %d' % (name.replace('_', '-'),
                                                         getattr(args, name)))
    if args.warmup < 1:
        p.error('--warmup must be at least 1 (the first step builds the graph), got %d'
                % args.warmup)
    return args


def main(argv=None):
    from dmrnet.tools.bench.jobs import run_job
    from dmrnet.utils.files import write_json
    args = parse_args(argv)
    rep = report(args, run(args, run_job))
    print(json.dumps(rep) if args.json else format_report(rep))
    if args.out:
        write_json(args.out, rep)
    return 0 if all('error' not in v for v in rep['variants'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
