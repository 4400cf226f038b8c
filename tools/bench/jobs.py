"""Running the benchmark's jobs: every job in its own process, so that peak memory is per job
and no two thread pools share a process; jobs run one after another.

    python tools/bench/jobs.py '<job spec as JSON>'   (run_job starts it; prints JOB_TAG + result)

Besides the runner: the float32 GEMM peak job (the machine's reference for achieved GFLOP/s)
and the trace job (one phase of one implementation under oneDNN's verbose log).
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

from dmrnet.tools.bench import frameworks, mx_jobs, step_parts, torch_jobs
from dmrnet.tools.bench.onednn_trace import (TRACE_BEGIN, TRACE_END, TRACE_ENV, kernels,
                                             parse_trace)
from dmrnet.tools.bench.timing import choose_fastest_variant, median, time_calls

JOB_TAG = 'BENCHJOB '


def job_gemm(spec):
    """float32 GEMM peak: numpy (OpenBLAS), MXNet and PyTorch products of n x n matrices, the
    best median."""
    import mxnet as mx
    import numpy as np
    n = spec.get('n', 2048)
    flops = 2.0 * n ** 3
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    t_np = median(time_calls(lambda: np.dot(a, b), 1, spec['repeats']))
    ma, mb = mx.nd.array(a), mx.nd.array(b)
    t_mx = median(time_calls(lambda: mx.nd.dot(ma, mb).wait_to_read(), 1, spec['repeats']))
    res = dict(n=n, numpy_gflops=round(flops / t_np / 1e9, 2),
               mxnet_gflops=round(flops / t_mx / 1e9, 2))
    torch = frameworks.import_torch() if spec.get('torch', True) else None
    if torch is not None:  # PyTorch's BLAS (MKL on x86) may use wider vector units than OpenBLAS
        torch_jobs.torch_threads(torch)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        t_torch = median(time_calls(lambda: torch.mm(ta, tb), 1, spec['repeats']))
        res['torch_gflops'] = round(flops / t_torch / 1e9, 2)
    res['peak_gflops'] = max(v for k, v in res.items() if k.endswith('_gflops'))
    return res


def job_trace(spec):
    """One phase of one implementation ('target': mx_train, mx_infer, mx_infer_bf16, mx_int8,
    torch_train or torch_infer) run with oneDNN's verbose log on (run_job sets TRACE_ENV): warm-up
    iterations, then TRACE_BEGIN, `repeats` timed iterations and TRACE_END on stdout."""
    target = spec['target']
    if target == 'mx_train':
        fn = mx_jobs.training_step(spec)[0]
    elif target in ('mx_infer', 'mx_infer_bf16', 'mx_int8'):
        import mxnet as mx
        ctx = mx_jobs.context(spec)
        with tempfile.TemporaryDirectory() as folder:
            if target == 'mx_infer':
                variants, aux_params, shape, _ = mx_jobs.inference_variants(spec, ctx, folder)
                sym, arg_params = variants[spec.get('variant', 'onednn')]
            elif target == 'mx_int8':
                (sym, arg_params, aux_params), _, shape = mx_jobs.int8_model(spec, ctx, folder,
                                                                             {})
            else:
                (sym, arg_params, aux_params), _, shape = mx_jobs.bfloat16_model(spec, ctx,
                                                                                 folder)
        block = mx_jobs.hybridized_block(sym, arg_params, aux_params, ctx)
        x = mx.nd.random.normal(shape=shape, ctx=ctx)

        def fn():
            block(x).wait_to_read()
    else:
        torch, dev, _, res = torch_jobs.setup(spec)
        if torch is None:
            return res
        variant = spec.get('variant', 'channels_last')
        if target == 'torch_train':
            fn = torch_jobs.training_step(spec, torch, dev, variant)[0]
        else:
            run, x, _ = torch_jobs.inference_run(spec, torch, dev, variant,
                                                 torch_jobs.network(spec, torch))

            def fn():
                run(x)
    time_calls(fn, spec['warmup'], 0)
    print(TRACE_BEGIN, flush=True)
    times = time_calls(fn, 0, spec['repeats'])
    print(TRACE_END, flush=True)
    return dict(times=times, images_per_sec=spec['batch_size'] / median(times))


JOBS = {'gemm': job_gemm, 'mx_train': mx_jobs.job_mx_train, 'mx_infer': mx_jobs.job_mx_infer,
        'mx_infer_bf16': mx_jobs.job_mx_infer_bf16, 'mx_int8': mx_jobs.job_mx_int8, 'torch_train': torch_jobs.job_torch_train,
        'torch_infer': torch_jobs.job_torch_infer, 'trace': job_trace,
        'step_part': step_parts.job_step_part}


def run_job_here(spec):
    frameworks.configure_mxnet()
    amx = None
    if spec.get('amx'):  # an inference job's own process, before its first operator
        from dmrnet.utils.amx import enable_amx_for_inference
        amx = enable_amx_for_inference()
    if spec['kind'].startswith('mx') or spec['kind'] == 'gemm':
        warnings.filterwarnings('ignore')
    res = JOBS[spec['kind']](spec)
    if amx is not None:
        res['amx'] = amx
    return res


def own_process(spec):
    """Whether a job must run in a process of its own even with --inprocess: oneDNN's verbose
    log (trace), AMP (amp.init changes the process for good; the bfloat16 export is AMP's
    conversion) and AMX (oneDNN fixes its instruction set at its first primitive)."""
    return (spec['kind'] in ('trace', 'mx_infer_bf16') or bool(spec.get('amx'))
            or (bool(spec.get('amp')) and spec['kind'].startswith('mx')))


def _imports_torch(spec):
    return (spec['kind'].startswith('torch') or spec.get('target', '').startswith('torch')
            or (spec['kind'] == 'gemm' and spec.get('torch', True)))


def run_job(spec, timeout=3600, inprocess=False):
    """Run one job in a fresh process; returns its result dict (or dict(error=...)).
    inprocess=True runs it here instead (quicker, for tests; memory figures then accumulate),
    except a job that needs the bench site's PyTorch (only a job process has it on its path)
    and the jobs of own_process. A trace job runs with oneDNN's verbose log switched on, and
    its result gets 'onednn_ms' (parse_trace) and 'kernels' (which convolutions ran)."""
    trace = spec['kind'] == 'trace'
    torch_elsewhere = _imports_torch(spec) and not frameworks.torch_importable()
    if inprocess and not own_process(spec) and not (torch_elsewhere and
                                                    frameworks.torch_in_bench_site()):
        try:
            return json.loads(json.dumps(run_job_here(spec)))
        except Exception as e:  # reported like a failed child
            return dict(error='%s: %s' % (type(e).__name__, e))
    env = frameworks.job_environment(TRACE_ENV[spec['target'].split('_')[0]] if trace else None)
    cmd = [sys.executable, os.path.abspath(__file__), json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                           cwd=frameworks.REPO)
    except subprocess.TimeoutExpired:
        return dict(error='timed out after %d s' % timeout)
    lines = p.stdout.splitlines()
    for line in lines:
        if line.startswith(JOB_TAG):
            res = json.loads(line[len(JOB_TAG):])
            if trace and 'times' in res:
                res['onednn_ms'] = parse_trace(lines, len(res['times']))
                res['kernels'] = kernels(lines, len(res['times']))
            return res
    tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
    return dict(error='job failed (exit %d): %s' % (p.returncode, ' | '.join(tail)))


def _pooled(results, get):
    """The timed iterations of every round, pooled, and images/s at their median."""
    last = get(results[-1])
    batch_size = last['images_per_sec'] * median(last['times'])
    times = [t for r in results for t in get(r)['times']]
    return times, batch_size / median(times)


def round_order(jobs, rnd, fixed=0):
    """The jobs of round `rnd` (from 0): every other round runs them in reverse order, so that a
    slow drift of the machine's load does not favour the jobs that come first. The first
    `fixed` jobs (a machine probe) keep their place."""
    jobs = list(jobs)
    return jobs if rnd % 2 == 0 else jobs[:fixed] + jobs[fixed:][::-1]


def merge_rounds(results):
    """Several rounds of one job: pool the timed iterations and take their median."""
    ok = [r for r in results if 'error' not in r and 'skipped' not in r]
    if not ok:
        return results[0]
    out = dict(ok[-1])
    if 'times' in out and len(ok) > 1:
        out['times'], out['images_per_sec'] = _pooled(ok, lambda r: r)
    if 'variants' in out and len(ok) > 1:
        # new dicts: the rounds' own results stay as they were measured
        out['variants'] = {name: dict(v) for name, v in out['variants'].items()}
        for name, v in out['variants'].items():
            if 'times' in v:
                v['times'], v['images_per_sec'] = _pooled(ok, lambda r: r['variants'][name])
            if 'latency_ms' in v:
                v['latency_ms'] = median([r['variants'][name]['latency_ms'] for r in ok])
        choose_fastest_variant(out)
    if 'peak_rss_mb' in out:
        out['peak_rss_mb'] = max(r['peak_rss_mb'] for r in ok)
        out['peak_rss_delta_mb'] = max(r['peak_rss_delta_mb'] for r in ok)
    out['rounds'] = len(ok)
    return out


def main(argv=None):
    spec = json.loads((argv or sys.argv[1:])[0])
    print(JOB_TAG + json.dumps(run_job_here(spec)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
