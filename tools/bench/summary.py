"""The benchmark's report: figures per implementation (ours, GluonCV's, PyTorch's), the form
selection, ratios, targets with what the oneDNN breakdown says about them, and the table.

The report is one JSON object (schema SCHEMA_VERSION); `format_table` prints it for people.
"""
import os
import platform
import sys
import time

from dmrnet.tools.bench.flops import gflops
from dmrnet.tools.bench.onednn_trace import breakdown
from dmrnet.utils.runtime import usable_cores

SCHEMA_VERSION = 1
PYTORCH_NAME = 'DMRNet (PyTorch eager, tools/bench/torch_dmrnet.py)'


def fastest(results, prefix):
    """(key, result) of the fastest job whose key starts with `prefix`, or (None, None)."""
    found = [(k, v) for k, v in results.items() if k.startswith(prefix) and 'images_per_sec' in v]
    return max(found, key=lambda kv: kv[1]['images_per_sec']) if found else (None, None)


def target_list(gluoncv_model):
    """(name, ratio key, threshold) of each target the report checks."""
    return [('training >= 1.25x PyTorch eager', 'train_vs_pytorch', 1.25),
            ('training >= 1.0x GluonCV ' + gluoncv_model, 'train_vs_gluoncv', 1.0),
            ('inference (exported) >= 1.5x PyTorch eager', 'infer_vs_pytorch', 1.5),
            ('INT8 >= 2.5x fp32 PyTorch eager', 'int8_vs_pytorch_fp32', 2.5)]


def assemble(args, results, forms, torch_args, gpu, kwargs, seconds):
    """The report of a benchmark run from its merged job results."""
    from dmrnet.tools.bench.formselect import device_key
    gemm = results.get('gemm', {})
    device = 'gpu(%d)' % gpu if gpu is not None else 'cpu'
    device_name = device_key(device)
    out = dict(schema=SCHEMA_VERSION, date=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
               command=' '.join(['python', '-m', 'dmrnet.tools.bench'] + sys.argv[1:]),
               machine=dict(cpu=device_name.split(':')[1] if device == 'cpu' else device_name,
                            cores=usable_cores(), platform=platform.platform(),
                            python=platform.python_version(), device=device),
               model=args.model, model_kwargs=kwargs, batch_size=args.batch_size,
               dtype='float16 (AMP)' if args.amp else 'float32',
               warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
               gemm=gemm, seconds=round(seconds, 1), errors={}, skipped={})
    for key, res in results.items():
        if 'error' in res:
            out['errors'][key] = res['error']
        if 'skipped' in res:
            out['skipped'][key] = res['skipped']
    out['form_selection'] = form_selection(args, results, forms, device_name)
    impls = implementations(args, results, torch_args, gemm.get('peak_gflops'))
    out['implementations'] = impls
    out['ratios'] = ratios(impls)
    phases = phase_breakdowns(results, impls, args.batch_size)
    out['breakdown'] = phases or None
    checked = target_list(args.gluoncv_model)
    out['targets'] = [dict(target=name, ratio=out['ratios'][key], threshold=threshold,
                           met=(out['ratios'][key] >= threshold) if out['ratios'][key] else None,
                           **limits(phases, key, threshold))
                      for name, key, threshold in checked]
    out['ceilings'] = {key: target.get('ceiling')
                       for (_, key, _), target in zip(checked, out['targets'])
                       if key.endswith('_vs_pytorch')}
    ours = fastest(results, 'train:')[1] or fastest(results, 'infer:')[1] or {}
    out['threads'] = {k: v for k, v in ours.items()
                      if k in ('omp_num_threads', 'mxnet_engine', 'mkldnn')}
    torch_res = results.get('torch:train') or results.get('torch:infer') or {}
    if 'torch_threads' in torch_res:
        out['threads'].update(torch_threads=torch_res['torch_threads'],
                              torch_version=torch_res['torch_version'])
    out['env'] = {k: v for k, v in sorted(os.environ.items())
                  if k.startswith(('MXNET_', 'OMP_', 'KMP_', 'MKL', 'DNNL', 'ONEDNN', 'OPENBLAS'))}
    out['jobs'] = {k: {name: value for name, value in v.items() if name != 'times'}
                   for k, v in results.items()}
    return out


def form_selection(args, results, forms, device_name):
    """Per phase, the merge-and-run form that measured faster (recorded in form selection's
    cache when both were measured), or None for single-form models."""
    from dmrnet.tools.bench.formselect import record
    selection = {}
    for phase, prefix in (('train', 'train:'), ('inference', 'infer:')):
        figures = {f: results[prefix + f]['images_per_sec'] for f in forms
                   if f and prefix + f in results and 'images_per_sec' in results[prefix + f]}
        if len(figures) > 1:
            chosen = max(figures, key=figures.get)
            record(device_name, args.model, args.batch_size, phase, figures, chosen)
            selection[phase] = dict(chosen=chosen,
                                    images_per_sec={k: round(v, 2) for k, v in figures.items()})
        elif figures:
            selection[phase] = dict(chosen=next(iter(figures)), images_per_sec=figures,
                                    measured=False)
    return dict(device=device_name, **selection) if selection else None


def implementations(args, results, torch_args, peak):
    """Figures of ours (its faster form per phase), GluonCV's and PyTorch's network."""
    impls = {}
    train_key, train = fastest(results, 'train:')
    infer_key, infer = fastest(results, 'infer:')
    flops = (infer or {}).get('flops', {}).get('flops')
    impls['dmrnet'] = figures(args.model, train, infer, results.get('int8'), flops, peak,
                              train_form=train_key and train_key.split(':')[1],
                              infer_form=infer_key and infer_key.split(':')[1])
    if not args.no_gluoncv:
        gluoncv_infer = results.get('gluoncv:infer', {})
        impls['gluoncv'] = figures(args.gluoncv_model, results.get('gluoncv:train'),
                                   gluoncv_infer, None,
                                   gluoncv_infer.get('flops', {}).get('flops'), peak)
    if torch_args is not None and not args.no_torch:
        torch_infer = results.get('torch:infer', {})
        impls['pytorch'] = figures(PYTORCH_NAME, results.get('torch:train'), torch_infer, None,
                                   torch_infer.get('flops_per_image', flops), peak)
    return impls


def figures(name, train, infer, int8, flops, peak, train_form=None, infer_form=None):
    """One implementation's row: images/s, GFLOP/s (and their share of the GEMM peak),
    latency, memory; INT8 figures when it was quantized."""
    train, infer = train or {}, infer or {}
    row = dict(name=name, flops_per_image=flops,
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
    if flops and row['train_images_per_sec']:
        row['train_gflops'] = _round(gflops(3 * flops, row['train_images_per_sec']))
    if flops and row['infer_images_per_sec']:
        row['infer_gflops'] = _round(gflops(flops, row['infer_images_per_sec']))
    if peak:
        for k in ('train_gflops', 'infer_gflops'):
            if row.get(k):
                row[k.replace('gflops', 'fraction_of_gemm_peak')] = round(row[k] / peak, 3)
    if int8 is not None:
        row['int8_images_per_sec'] = _round(int8.get('images_per_sec'))
        row['int8_latency_ms'] = _round(int8.get('latency_ms'))
        row['int8_peak_rss_mb'] = int8.get('peak_rss_mb')
        row['int8_top1_agreement_with_fp32'] = int8.get('top1_agreement_with_fp32')
        row['int8_calibration'] = int8.get('calibration')
    return row


def ratios(impls):
    def ratio(a, b):
        return round(a / b, 3) if a and b else None
    ours = impls.get('dmrnet', {})
    gluoncv = impls.get('gluoncv', {})
    pytorch = impls.get('pytorch', {})
    return dict(
        train_vs_pytorch=ratio(ours.get('train_images_per_sec'),
                               pytorch.get('train_images_per_sec')),
        train_vs_gluoncv=ratio(ours.get('train_images_per_sec'),
                               gluoncv.get('train_images_per_sec')),
        infer_vs_pytorch=ratio(ours.get('infer_images_per_sec'),
                               pytorch.get('infer_images_per_sec')),
        infer_vs_gluoncv=ratio(ours.get('infer_images_per_sec'),
                               gluoncv.get('infer_images_per_sec')),
        latency_pytorch_over_ours=ratio(pytorch.get('latency_ms'), ours.get('latency_ms')),
        int8_vs_pytorch_fp32=ratio(ours.get('int8_images_per_sec'),
                                   pytorch.get('infer_images_per_sec')),
        int8_vs_fp32=ratio(ours.get('int8_images_per_sec'), ours.get('infer_images_per_sec')))


BF16_TARGETS = (
    ('--amp (auto) training >= 0.95x float32', 'auto_amp_train_vs_fp32', 0.95),
    ('bfloat16+AMX exported >= 1.5x float32 exported', 'bf16_amx_vs_fp32_infer', 1.5),
    ('bfloat16+AMX exported >= 1.0x PyTorch autocast bf16', 'bf16_amx_vs_torch_bf16_infer', 1.0),
    ('INT8+AMX >= 1.15x INT8', 'int8_amx_vs_int8', 1.15))


def bfloat16_section(args, results, gpu):
    """The bfloat16 columns: per row images/s and which oneDNN convolution kernels ran (from
    its trace job), the ratios the targets of issue 29 read, or why they were skipped."""
    from dmrnet.tools.bench.benchmark import BF16_ROWS, amx_skipped, bf16_skipped
    from dmrnet.train.ampselect import MARGIN
    if gpu is not None:
        return dict(skipped='bfloat16 columns are CPU figures; on GPUs --amp is float16')
    if args.no_bf16:
        return dict(skipped='--no-bf16')
    if bf16_skipped(args):
        return dict(skipped=bf16_skipped(args))
    traces = {'train:': 'trace:ours:train', 'infer:': 'trace:ours:infer',
              'torch:train': 'trace:pytorch:train', 'torch:infer': 'trace:pytorch:infer'}
    same_form = 'train:branch' if 'train:branch' in results else 'train:single'
    rows, figures = [], {}
    for label, key, phase in BF16_ROWS:
        if key == 'train:':
            res = results.get(same_form)  # the form the bfloat16 step trains in
        elif key == 'infer:':
            res = fastest(results, 'infer:')[1]  # the float32 export users run
        else:
            res = results.get(key)
        if not res:
            continue
        trace = results.get(traces.get(key, 'trace:bf16:' + key), {})
        row = dict(row=label, key=key, phase=phase,
                   images_per_sec=_round(res.get('images_per_sec')),
                   latency_ms=_round(res.get('latency_ms')), amx=res.get('amx'),
                   top1_agreement_with_fp32=res.get('top1_agreement_with_fp32'),
                   max_rel_diff_vs_fp32=res.get('max_rel_diff_vs_fp32'),
                   conv_kernels=trace.get('kernels'),
                   error=res.get('error') or trace.get('error'), skipped=res.get('skipped'))
        rows.append({k: v for k, v in row.items() if v is not None})
        figures[key] = res.get('images_per_sec')

    def ratio(a, b):
        a, b = figures.get(a), figures.get(b)
        return round(a / b, 3) if a and b else None
    bf16_train = ratio('bf16:train', 'train:')
    ratios = dict(
        bf16_train_vs_fp32=bf16_train,
        # what plain --amp trains at: bfloat16 only where it measured MARGIN faster
        auto_amp_train_vs_fp32=None if bf16_train is None else (
            bf16_train if bf16_train >= MARGIN else 1.0),
        bf16_vs_fp32_infer=ratio('bf16:infer', 'infer:'),
        bf16_amx_vs_fp32_infer=ratio('bf16:infer:amx', 'infer:'),
        bf16_amx_vs_bf16_infer=ratio('bf16:infer:amx', 'bf16:infer'),
        bf16_amx_vs_torch_bf16_infer=ratio('bf16:infer:amx', 'torch:infer:bf16'),
        torch_bf16_vs_fp32_train=ratio('torch:train:bf16', 'torch:train'),
        torch_bf16_vs_fp32_infer=ratio('torch:infer:bf16', 'torch:infer'),
        int8_amx_vs_int8=ratio('int8:amx', 'int8'))
    out = dict(rows=rows, ratios=ratios,
               targets=[dict(target=name, ratio=ratios[key], threshold=threshold,
                             met=None if ratios[key] is None else ratios[key] >= threshold)
                        for name, key, threshold in BF16_TARGETS])
    if amx_skipped():
        out['amx_skipped'] = amx_skipped()
    return out


def phase_breakdowns(results, impls, batch_size):
    """{phase: {impl: breakdown}} of the trace jobs ('trace:<impl>:<phase>')."""
    phases = {}
    for key, res in results.items():
        if key.startswith('trace:') and not key.startswith('trace:bf16:') and \
                'onednn_ms' in res:
            _, impl, phase = key.split(':')
            images_per_sec = impls.get('dmrnet' if impl == 'ours' else impl, {}).get(
                phase + '_images_per_sec')
            if images_per_sec:
                phases.setdefault(phase, {})[impl] = breakdown(res, batch_size, images_per_sec)
    return phases


def limits(phases, key, threshold):
    """For a target against PyTorch in a traced phase: the ratio ours would reach if all but
    its convolution primitives took no time (no graph on MXNet 1.9.1's oneDNN kernels does
    better), and what meeting the target leaves for all but our convolutions, against what
    that work takes now (ms per batch)."""
    phase, _, other = key.partition('_vs_')
    traced = phases.get(phase, {})
    conv = traced.get('ours', {}).get('onednn_ms', {}).get('conv')
    if other != 'pytorch' or not conv or 'pytorch' not in traced:
        return dict(ceiling=None)
    return dict(ceiling=round(traced['pytorch']['wall_ms'] / conv, 3),
                non_conv_budget_ms=round(traced['pytorch']['wall_ms'] / threshold - conv, 1),
                non_conv_ms=round(traced['ours']['wall_ms'] - conv, 1))


def _round(x, nd=2):
    return round(x, nd) if isinstance(x, (int, float)) else x


ROW = '%-34s %10s %9s %10s %9s %9s %9s %9s %8s'
BREAKDOWN_COLUMNS = ('conv', 'bnorm', 'eltwise', 'sum', 'reorder', 'pool', 'other')


def format_table(rep):
    """The report as a table for people."""
    lines = []
    machine = rep['machine']
    lines.append('%s, batch %d, %s, %s: %s, %d usable cores; %s' % (
        rep['model'], rep['batch_size'], rep['dtype'], machine['device'], machine['cpu'],
        machine['cores'], rep['date']))
    threads = rep.get('threads', {})
    lines.append('threads: MXNet OpenMP %s (%s), PyTorch %s; float32 GEMM peak %s GFLOP/s '
                 '(numpy %s, MXNet %s, PyTorch %s; n=%s)' % (
                     threads.get('omp_num_threads'), threads.get('mxnet_engine'),
                     threads.get('torch_threads', '-'), rep['gemm'].get('peak_gflops'),
                     rep['gemm'].get('numpy_gflops'), rep['gemm'].get('mxnet_gflops'),
                     rep['gemm'].get('torch_gflops', '-'), rep['gemm'].get('n')))
    head = ROW % ('implementation', 'train i/s', 'GFLOP/s', 'infer i/s', 'GFLOP/s', 'lat1 ms',
                  'trainMB', 'inferMB', 'MFLOP/i')
    lines += [head, '-' * len(head)]
    for key, row in rep['implementations'].items():
        lines.append(ROW % (
            (row['name'] if key != 'dmrnet' else '%s (ours, %s/%s)' % (
                row['name'], row.get('train_form') or '-', row.get('infer_form') or '-'))[:34],
            _f(row.get('train_images_per_sec')),
            _with_share(row.get('train_gflops'), row.get('train_fraction_of_gemm_peak')),
            _f(row.get('infer_images_per_sec')),
            _with_share(row.get('infer_gflops'), row.get('infer_fraction_of_gemm_peak')),
            _f(row.get('latency_ms')), _f(row.get('train_peak_rss_mb'), 0),
            _f(row.get('infer_peak_rss_mb'), 0),
            _f(row['flops_per_image'] / 1e6 if row.get('flops_per_image') else None, 1)))
        if row.get('int8_images_per_sec'):
            lines.append(ROW % (
                '  INT8 (oneDNN, calibrated)', '', '', _f(row['int8_images_per_sec']), '',
                _f(row.get('int8_latency_ms')), '', _f(row.get('int8_peak_rss_mb'), 0), ''))
    selection = rep.get('form_selection')
    if selection:
        for phase in ('train', 'inference'):
            if phase in selection:
                lines.append('form (%s): %s  %s' % (
                    phase, selection[phase]['chosen'], ', '.join(
                        '%s %.1f i/s' % kv
                        for kv in sorted(selection[phase]['images_per_sec'].items()))))
    lines.append('ratios: ' + ', '.join('%s %s' % (k, v) for k, v in rep['ratios'].items()
                                        if v is not None))
    lines += _breakdown_lines(rep.get('breakdown') or {})
    for target in rep['targets']:
        lines.append('target %-45s %6s  %s%s' % (
            target['target'], target['ratio'],
            {True: 'MET', False: 'NOT MET', None: 'n/a'}[target['met']],
            '  (leaves %.0f ms for all but our convolutions, which now takes %.0f ms; ceiling '
            '%.2f)' % (target['non_conv_budget_ms'], target['non_conv_ms'], target['ceiling'])
            if target.get('ceiling') else ''))
    lines += _bfloat16_lines(rep.get('bfloat16') or {})
    for k, v in rep['skipped'].items():
        lines.append('skipped %s: %s' % (k, v))
    for k, v in rep['errors'].items():
        lines.append('ERROR %s: %s' % (k, v))
    lines.append('(%s s; medians of %d timed iterations x %d round(s) after %d warm-up)' % (
        rep['seconds'], rep['repeats'], rep['rounds'], rep['warmup']))
    return '\n'.join(lines)


def _breakdown_lines(phases):
    if not phases:
        return []
    lines = ["where the time goes, ms per batch: oneDNN's own timing of each primitive "
             "(verbose log, a separate run); wall from the timing run above; "
             "outside = wall - oneDNN"]
    head = '%-6s %-9s %8s' % ('phase', 'impl', 'wall') + ''.join(
        ' %7s' % c for c in BREAKDOWN_COLUMNS) + ' %8s' % 'outside'
    lines += [head, '-' * len(head)]
    for phase in ('train', 'infer'):
        for impl, b in sorted(phases.get(phase, {}).items(), key=lambda kv: kv[0] != 'ours'):
            lines.append('%-6s %-9s %8.1f' % (phase, impl, b['wall_ms']) + ''.join(
                ' %7.1f' % b['onednn_ms'].get(c, 0.0) for c in BREAKDOWN_COLUMNS) +
                ' %8.1f' % b['outside_ms'])
    return lines


def _bfloat16_lines(section):
    if 'skipped' in section:
        return ['skipped bfloat16 columns: %s' % section['skipped']]
    if not section.get('rows'):
        return []
    lines = ['bfloat16 (this CPU computes it): images/s; the oneDNN convolution kernels that '
             'ran, ms per batch (verbose log, a separate run)']
    head = '%-40s %9s %8s  %s' % ('row', 'i/s', 'lat1 ms', 'convolution kernels')
    lines += [head, '-' * len(head)]
    for row in section['rows']:
        kernels = ', '.join('%s %.1f' % kv for kv in list((row.get('conv_kernels') or
                                                            {}).items())[:3])
        note = row.get('error') or row.get('skipped') or ''
        lines.append('%-40s %9s %8s  %s%s' % (row['row'][:40], _f(row.get('images_per_sec')),
                                             _f(row.get('latency_ms')), kernels or '-',
                                             ('  ' + note[:80]) if note else ''))
    lines.append('bfloat16 ratios: ' + ', '.join('%s %s' % kv for kv in
                                                 section['ratios'].items() if kv[1] is not None))
    for target in section['targets']:
        lines.append('target %-52s %6s  %s' % (target['target'], target['ratio'], {
            True: 'MET', False: 'NOT MET', None: 'n/a'}[target['met']]))
    if section.get('amx_skipped'):
        lines.append('skipped AMX rows: %s' % section['amx_skipped'])
    return lines


def _with_share(gflops_value, fraction):
    """'12.3 45%': GFLOP/s and its share of the GEMM peak."""
    return '%s%s' % (_f(gflops_value), ' %2.0f%%' % (100 * fraction) if fraction else '')


def _f(x, nd=1):
    return '-' if x is None else ('%.*f' % (nd, x))
