"""Throughput, latency, memory and FLOPs of a preset, side by side with GluonCV's ResNet-110 and a
PyTorch eager implementation of the same DMRNet, measured in one run.

    python -m dmrnet.tools.bench --model dmrnet56 --batch-size 64 [--json] [--gpus 0 [--amp]]
        [--repeats 3] [--warmup 2] [--rounds 2] [--no-gluoncv] [--no-torch] [--no-int8]
        [--calib-data-dir data/digits --calib-dataset digits] [--no-trace]
    (python tools/bench/benchmark.py takes the same flags)

What is measured (every job runs in its own process, so that peak memory is per job and no two
thread pools share a process; jobs run one after another):
  training   images/s of forward + backward + update (dmrnet.train.step's Trainer and step, as
             a training run takes them: NAG, momentum 0.9, wd 1e-4) on synthetic data,
             hybridized static_alloc/static_shape;
  inference  of the *exported* symbol (export -> load), images/s at the batch size and latency at
             batch 1; on CPUs both the plain graph and the oneDNN-fused graph are measured and the
             faster is used. The fused graph (dmrnet.symbols.deploy.optimize_exported): the
             merge's 1/K scale folded into the next layers' weights (same function, no
             element-wise multiply left), relu / add_n renamed to the operators oneDNN fuses,
             then MXNet's MKLDNN subgraph backend (Conv+BN folded, +sum, +ReLU in one oneDNN
             convolution);
  int8       the same fused graph quantized with mx.contrib.quantization (oneDNN, naive min/max
             calibration; on synthetic data unless --calib-data-dir gives training images: its
             accuracy is measured by tools/quantize.py on real data), CPU only;
  form       DMRNet's branch and fused (grouped convolution) forms are both measured for training
             and inference; the faster per phase is the figure reported, and the choice is
             recorded in the output and in form selection's cache (formselect.py);
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
import sys
import time
import warnings

from dmrnet.tools.bench import frameworks
from dmrnet.tools.bench.jobs import merge_rounds, round_order, run_job
from dmrnet.tools.bench.summary import assemble, bfloat16_section, fastest, format_table
from dmrnet.tools.bench.torch_jobs import torch_kwargs
from dmrnet.utils.devices import parse_devices
from dmrnet.utils.files import write_json


def plan(args):
    """(jobs, forms, torch_args, gpu, kwargs): the job list as (key, spec), the merge-and-run
    forms compared (both for multi-branch models, else [None]), the PyTorch equivalent's
    arguments (None without one), the GPU (None: CPU) and the model's keyword arguments."""
    from dmrnet.symbols import get_model
    gpus = parse_devices(args.gpus)
    gpu = gpus[0] if gpus else None
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    probe = get_model(args.model, **kwargs)
    forms = ['branch', 'fused'] if getattr(probe, 'multi', False) and probe.K > 1 else [None]
    if args.form != 'auto' and forms != [None]:
        forms = [args.form]
    common = dict(batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats, gpu=gpu,
                  amp=args.amp)
    # the GEMM probe stays first in every round (round_order's fixed=1)
    jobs = [('gemm', dict(kind='gemm', repeats=max(3, args.repeats), torch=not args.no_torch))]
    ours = dict(common, source='dmrnet', model=args.model, kwargs=kwargs)
    for form in forms:
        tag = form or 'single'
        if not args.no_train:
            jobs.append(('train:' + tag, dict(ours, kind='mx_train', form=form)))
        jobs.append(('infer:' + tag, dict(ours, kind='mx_infer', form=form)))
    if not args.no_gluoncv:
        gluoncv = dict(common, source='gluoncv', model=args.gluoncv_model,
                       classes=probe.config.get('classes', 10) if hasattr(probe, 'config') else 10)
        if not args.no_train:
            jobs.append(('gluoncv:train', dict(gluoncv, kind='mx_train')))
        jobs.append(('gluoncv:infer', dict(gluoncv, kind='mx_infer')))
    torch_args = torch_kwargs(args.model, kwargs)
    pytorch = None
    if not args.no_torch and torch_args is not None:
        pytorch = dict(common, torch_kwargs=torch_args,
                       torch_variants=args.torch_variants.split(','))
        if not args.no_train:
            jobs.append(('torch:train', dict(pytorch, kind='torch_train')))
        jobs.append(('torch:infer', dict(pytorch, kind='torch_infer')))
    if gpu is None and not args.no_bf16 and not bf16_skipped(args):
        jobs += bfloat16_jobs(args, ours, forms, pytorch)
    return jobs, forms, torch_args, gpu, kwargs


def bf16_skipped(args):
    """Why the bfloat16 columns are left out on this CPU (None: they are measured)."""
    from dmrnet.train.precision import no_bfloat16_reason
    return no_bfloat16_reason()


def amx_skipped():
    from dmrnet.utils.amx import no_amx_reason
    return no_amx_reason()


def bfloat16_jobs(args, ours, forms, pytorch):
    """The bfloat16 columns (CPUs with bfloat16): ours trained through the training step with
    AMP in bfloat16 (as --amp force trains), the bfloat16 export without and with AMX, INT8
    with AMX (its spec, like INT8's, is made once the float32 inference forms are measured:
    the 'int8:amx' placeholder), and PyTorch under autocast bfloat16. In the branch form
    (the faster on CPUs so far), whatever --form measures for float32."""
    form = 'branch' if 'branch' in forms else forms[0]
    bf16 = dict(ours, form=form, amp=False)
    jobs = []
    if not args.no_train:
        jobs.append(('bf16:train', dict(bf16, kind='mx_train', amp=True)))
    jobs.append(('bf16:infer', dict(bf16, kind='mx_infer_bf16')))
    if amx_skipped() is None:
        jobs.append(('bf16:infer:amx', dict(bf16, kind='mx_infer_bf16', amx=True)))
        if not args.no_int8:
            jobs.append(('int8:amx', None))
    if pytorch is not None:
        autocast = dict(pytorch, autocast='bfloat16', amp=False)
        if not args.no_train:
            jobs.append(('torch:train:bf16', dict(autocast, kind='torch_train')))
        jobs.append(('torch:infer:bf16', dict(autocast, kind='torch_infer')))
    return jobs


# The bfloat16 section's rows: (label, job key, phase) in the order printed.
BF16_ROWS = (('ours float32 train (train.step)', 'train:', 'train'),
             ('ours bfloat16 train (AMP, train.step)', 'bf16:train', 'train'),
             ('ours float32 exported', 'infer:', 'infer'),
             ('ours bfloat16 exported', 'bf16:infer', 'infer'),
             ('ours bfloat16 exported + AMX', 'bf16:infer:amx', 'infer'),
             ('ours INT8', 'int8', 'infer'),
             ('ours INT8 + AMX', 'int8:amx', 'infer'),
             ('PyTorch float32 train', 'torch:train', 'train'),
             ('PyTorch autocast bf16 train', 'torch:train:bf16', 'train'),
             ('PyTorch float32 inference_mode', 'torch:infer', 'infer'),
             ('PyTorch autocast bf16 inference_mode', 'torch:infer:bf16', 'infer'))


def bf16_trace_plan(args, results, kwargs, torch_args, forms, int8_form):
    """Trace jobs (which oneDNN kernels ran, and for how long) for the rows of the bfloat16
    section that were measured; the float32 rows come from trace_plan."""
    common = dict(kind='trace', batch_size=args.batch_size, warmup=args.warmup,
                  repeats=args.repeats)
    jobs = []
    for _, key, _ in BF16_ROWS:
        res = results.get(key)
        if not res or 'images_per_sec' not in res or key in ('train:', 'infer:', 'torch:train',
                                                              'torch:infer'):
            continue
        if key.startswith('torch'):
            spec = dict(common, target='torch_' + key.split(':')[1], torch_kwargs=torch_args,
                        variant=res.get('best', 'nchw'), autocast='bfloat16')
        else:
            target = {'bf16:train': 'mx_train', 'int8': 'mx_int8', 'int8:amx': 'mx_int8'}.get(
                key, 'mx_infer_bf16')
            spec = dict(common, target=target, source='dmrnet', model=args.model,
                        kwargs=kwargs, form=int8_form if key.startswith('int8') else
                        ('branch' if 'branch' in forms else forms[0]), amp=key == 'bf16:train',
                        amx=key.endswith(':amx'), calib_data_dir=args.calib_data_dir,
                        calib_dataset=args.calib_dataset)
            if args.num_calib:
                spec['num_calib'] = args.num_calib
        jobs.append(('trace:bf16:' + key, spec))
    return jobs


def trace_plan(args, results, torch_args, kwargs):
    """The trace jobs (jobs.job_trace): ours and PyTorch, training and inference, each in the
    form, graph and memory layout that measured fastest in the timing rounds."""
    common = dict(kind='trace', batch_size=args.batch_size, warmup=args.warmup,
                  repeats=args.repeats)
    jobs = []
    phases = ((('train', 'train:'), ('infer', 'infer:')) if not args.no_train
              else (('infer', 'infer:'),))
    for phase, prefix in phases:
        best, res = fastest(results, prefix)
        if best is not None:
            form = best.split(':')[1]
            spec = dict(common, target='mx_' + phase, source='dmrnet', model=args.model,
                        kwargs=kwargs, form=None if form == 'single' else form)
            if phase == 'infer':
                spec['variant'] = res.get('best', 'onednn')
            jobs.append(('trace:ours:' + phase, spec))
        torch_res = results.get('torch:' + phase, {})
        if torch_args is not None and 'best' in torch_res:
            jobs.append(('trace:pytorch:' + phase, dict(
                common, target='torch_' + phase, torch_kwargs=torch_args,
                variant=torch_res['best'])))
    return jobs


def int8_spec(args, kwargs, gpu, form):
    """The INT8 job, for the merge-and-run form whose inference measured fastest."""
    spec = dict(kind='mx_int8', source='dmrnet', model=args.model, kwargs=kwargs, form=form,
                batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats, gpu=gpu,
                calib_data_dir=args.calib_data_dir, calib_dataset=args.calib_dataset)
    if args.num_calib:
        spec['num_calib'] = args.num_calib
    return spec


def parse_args(argv=None, prog=None):
    head, rest = __doc__.split('\n\n', 1)
    p = argparse.ArgumentParser(allow_abbrev=False, prog=prog, description=head,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=rest)
    p.add_argument('--model', default='dmrnet56', help='a preset or family of dmrnet.symbols')
    p.add_argument('--model-kwargs', default='', help='JSON keyword arguments for get_model')
    p.add_argument('--batch-size', type=int, default=64,
                   help='images per training step and per inference batch (default: 64)')
    p.add_argument('--gpus', default='', help='a GPU index (the first is used); empty: CPU')
    p.add_argument('--amp', action='store_true',
                   help='mixed precision as --amp trains: float16 on GPUs, bfloat16 on CPUs')
    p.add_argument('--form', default='auto', choices=['auto', 'branch', 'fused'],
                   help='auto: measure both merge-and-run forms and report the faster')
    p.add_argument('--warmup', type=int, default=2,
                   help='untimed iterations before the timed ones (default: 2)')
    p.add_argument('--repeats', type=int, default=3,
                   help='timed iterations per job; the median is reported (default: 3)')
    p.add_argument('--rounds', type=int, default=2,
                   help='run the whole job list this many times, interleaved, pooling the timings')
    p.add_argument('--gluoncv-model', default='cifar_resnet110_v1',
                   help='the GluonCV model zoo network to compare with (default: '
                        'cifar_resnet110_v1)')
    p.add_argument('--no-gluoncv', action='store_true', help='skip the GluonCV columns')
    p.add_argument('--no-torch', action='store_true', help='skip the PyTorch columns')
    p.add_argument('--no-int8', action='store_true', help='skip the INT8 inference job')
    p.add_argument('--no-train', action='store_true', help='skip the training jobs')
    p.add_argument('--no-bf16', action='store_true',
                   help='skip the bfloat16 columns (measured on CPUs with native bfloat16)')
    p.add_argument('--no-trace', action='store_true',
                   help='skip the oneDNN breakdown of where the time goes (CPU runs)')
    p.add_argument('--torch-variants', default='nchw,channels_last',
                   help='PyTorch memory layouts to measure, comma-separated; the faster is the '
                        'reference (default: nchw,channels_last)')
    p.add_argument('--calib-data-dir', default=None,
                   help='packed .rec folder whose training images calibrate INT8')
    p.add_argument('--calib-dataset', default='digits',
                   help='the data set of --calib-data-dir (default: digits)')
    p.add_argument('--num-calib', type=int, default=None,
                   help='images to calibrate INT8 on (default: 4 batches)')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    p.add_argument('--out', help='also write the JSON report to this file')
    p.add_argument('--inprocess', action='store_true',
                   help='run every job in this process (quick checks; memory figures accumulate)')
    args = p.parse_args(argv)
    if args.amp and not args.gpus:
        import mxnet as mx
        from dmrnet.train import precision
        reason = precision.check_amp([mx.cpu()])
        if reason:
            p.error(reason)
    try:
        parse_devices(args.gpus)
    except ValueError as e:
        p.error('--gpus: %s' % e)
    return args


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    frameworks.configure_mxnet()
    warnings.filterwarnings('ignore')
    tic = time.time()
    jobs, forms, torch_args, gpu, kwargs = plan(args)
    if not args.no_int8 and gpu is None:
        jobs.append(('int8', None))  # its spec is made after the inference forms are measured
    rounds = {}
    if not args.no_torch and not frameworks.torch_installed():
        print('PyTorch is not installed: its columns are skipped (make bench installs it)',
              file=sys.stderr)
    chosen_form = None
    for rnd in range(args.rounds):
        for key, spec in round_order(jobs, rnd, fixed=1):
            if key in ('int8', 'int8:amx'):
                if chosen_form is None:
                    chosen_form = _fastest_inference_form(rounds, forms)
                spec = dict(int8_spec(args, kwargs, gpu, chosen_form), amx=key == 'int8:amx')
            print('[%d/%d] %s ...' % (rnd + 1, args.rounds, key), file=sys.stderr, flush=True)
            rounds.setdefault(key, []).append(run_job(spec, inprocess=args.inprocess))
    results = {k: merge_rounds(v) for k, v in rounds.items()}
    if not args.no_trace and gpu is None:
        for key, spec in trace_plan(args, results, torch_args, kwargs):
            print('[trace] %s ...' % key, file=sys.stderr, flush=True)
            results[key] = run_job(spec, inprocess=args.inprocess)
        for key, spec in bf16_trace_plan(args, results, kwargs, torch_args, forms,
                                         chosen_form):
            print('[trace] %s ...' % key, file=sys.stderr, flush=True)
            results[key] = run_job(spec, inprocess=args.inprocess)
    rep = assemble(args, results, forms, torch_args, gpu, kwargs, time.time() - tic)
    rep['bfloat16'] = bfloat16_section(args, results, gpu)
    if 'int8' in results:
        rep['int8_form'] = chosen_form
    elif gpu is not None and not args.no_int8:
        rep['skipped']['int8'] = 'INT8 quantization in MXNet 1.9 runs on CPUs (oneDNN) only'
    if args.out:
        write_json(args.out, rep)
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print(format_table(rep))
    return 1 if rep['errors'] else 0


def _fastest_inference_form(rounds, forms):
    """The form whose inference measured fastest in the rounds so far (the first form when
    none was measured)."""
    measured = {f: merge_rounds(rounds['infer:' + (f or 'single')]) for f in forms
                if 'infer:' + (f or 'single') in rounds}
    speeds = {f: v['images_per_sec'] for f, v in measured.items() if 'images_per_sec' in v}
    return max(speeds, key=speeds.get) if speeds else forms[0]


if __name__ == '__main__':
    sys.exit(main())
