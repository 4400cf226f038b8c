"""The experiment runner: one command per experiment of the paper, resumable, over GPU slots.

    python tools/experiments.py EXPERIMENT [--dataset D[,D..]] [--gpus 0,1,2,3] [--seeds N]
                                [--scale S] [--runs-dir runs] [--data-dir DIR | --data-root ROOT]
                                [--dry-run] [--gpus-per-run N]
                                [--filter GLOB] [--train-script PATH] [--epochs E] [--L N]
                                [--train-args '...'] [-- TRAIN-SCRIPT OPTIONS...]

Experiments (default datasets in brackets; default runs per configuration: 5 for table2 and
digits-compare, 1 elsewhere, as the paper reports means of 5 runs only in Table 2):
  table2            ResNet / DILNet / DMRNet x L in (12,..,96)              [cifar10,cifar100,svhn]
  table3            dmrnet56, dmrnet_wide32/50, resnet110, rir18            [cifar10,cifar100,svhn]
  table5            identity vs merge-and-run, w/ and w/o sharing, L=48,96  [cifar10,cifar100]
  figure6           pathnet, 3 and 6 blocks, L in FIGURE6_L                 [cifar10]
  imagenet-compare  resnet101_imagenet vs dmrnet44_imagenet                 [imagenet]
  digits-compare    ResNet / DILNet / DMRNet at equal L (--L, default 12)   [digits]

Every run is `python train/<script>.py --model NAME [--L N --width W --blocks B] --epochs E
--save-dir RUNS/EXPERIMENT/RUN --seed S [--gpus G] [--data-dir D] [--max-batches N]` (the CLI of
docs/CONTRACTS.md; `--blocks` only for the Figure 6 'pathnet' family; L and width are passed
even with a preset name, so that no train-script default can change the network). A run whose
`summary.json` exists is finished and skipped, so an interrupted experiment resumes by running
the same command again: a run folder that holds a checkpoint (last.json) but no summary.json is
continued with `--resume RUN` rather than started over. Runs are
scheduled one per GPU slot (`--gpus 0,1,2,3`: four at a time, each with one GPU; with
`--gpus-per-run 2`: two at a time on 0,1 and 2,3), or one at a time on the CPU. Each run's stdout/stderr go to RUN/train.out; its description to RUN/run.json.
Options after a lone `--` (or in --train-args) go to every train script unchanged.

`--scale S` (0 < S <= 1) shrinks the recipe: epochs -> max(1, round(E*S)) and, if S < 1,
batches per epoch -> max(1, ceil(N*S)) via --max-batches. `--dataset digits` runs any experiment
on the tiny digits set, so the whole pipeline runs on a CPU in minutes:
    python tools/experiments.py table2 --dataset digits --scale 0.05 --seeds 1

Results: after each run and at the end, every finished run under RUNS/EXPERIMENT (from this and any earlier
invocation) is collected into RUNS/EXPERIMENT/results.jsonl, one JSON object per line:
  experiment, name, dataset, family, model, L, width, branches, share, blocks, seed,
  epochs, max_batches, scale, test_error (= summary final_test_error, %), best_test_error,
  final_train_loss, final_train_error (last log.jsonl line, %), top5 (summary top5 or
  final_test_top5_error, if any), params,
  avg_path_length (figure6 only: L + 3, Section 4.3), run_dir.
tools/report.py reads these files.
"""
import argparse
import fnmatch
import json
import logging
import math
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading

log = logging.getLogger('dmrnet.experiments')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TABLE2_L = (12, 18, 24, 30, 36, 48, 54, 96)
FIGURE6_L = (6, 12, 18, 24, 30, 36, 48, 54)
FAMILIES = ('resnet', 'dilnet', 'dmrnet')

# dataset -> (train script relative to the repo, extra arguments). One place to adapt if the
# train scripts' CLI changes.
SCRIPTS = {
    'cifar10': ('train/cifar.py', ['--dataset', 'cifar10']),
    'cifar100': ('train/cifar.py', ['--dataset', 'cifar100']),
    'svhn': ('train/svhn.py', []),
    'imagenet': ('train/imagenet.py', []),
    'digits': ('train/digits.py', []),
}
# The paper's recipe (Section 4.2 / 4.5): epochs, training images, batch size. Digits: ours.
RECIPES = {
    'cifar10': (400, 50000, 64), 'cifar100': (400, 50000, 64), 'svhn': (40, 598388, 64),
    'imagenet': (100, 1281167, 256), 'digits': (20, 1437, 64),
}
DEFAULT_DATASETS = {
    'table2': ('cifar10', 'cifar100', 'svhn'), 'table3': ('cifar10', 'cifar100', 'svhn'),
    'table5': ('cifar10', 'cifar100'), 'figure6': ('cifar10',),
    'imagenet-compare': ('imagenet',), 'digits-compare': ('digits',),
}
DEFAULT_SEEDS = {'table2': 5, 'digits-compare': 5}
EXPERIMENTS = tuple(DEFAULT_DATASETS)


def _table2_model(family, L):
    """The registered preset of a Table 2 network (depth in the name), else the family."""
    if L in TABLE2_L:
        return '%s%d' % (family, 2 * L + 2 if family == 'resnet' else L + 2), {}
    return family, {'L': L}


def configurations(experiment, L=None):
    """The networks of an experiment: dicts with model (preset or family), model_args (passed
    on the command line) and the descriptive fields report.py groups by."""
    cfgs = []
    if experiment in ('table2', 'digits-compare'):
        Ls = TABLE2_L if experiment == 'table2' else (L or 12,)
        for L_ in Ls:
            for fam in FAMILIES:
                model, args = _table2_model(fam, L_)
                cfgs.append(dict(model=model, model_args=args, family=fam, L=L_, width=1))
    elif experiment == 'table3':
        cfgs = [dict(model='dmrnet56', model_args={}, family='dmrnet', L=54, width=1),
                dict(model='dmrnet_wide32', model_args={}, family='dmrnet', L=30, width=4),
                dict(model='dmrnet_wide50', model_args={}, family='dmrnet', L=48, width=4),
                dict(model='resnet110', model_args={}, family='resnet', L=54, width=1),
                dict(model='rir18', model_args={}, family='rir', L=None, width=None)]
    elif experiment == 'table5':
        for share in (True, False):
            for L_ in (48, 96):
                tag = '' if share else '_noshare'
                cfgs.append(dict(model='identity%d%s' % (L_ + 2, tag), model_args={},
                                 family='identity', L=L_, width=1, share=share))
                cfgs.append(dict(model='dmrnet%d%s' % (L_ + 2, tag), model_args={},
                                 family='dmrnet', L=L_, width=1, share=share))
    elif experiment == 'figure6':
        for blocks in (3, 6):
            for L_ in FIGURE6_L:
                cfgs.append(dict(model='pathnet', model_args={'L': L_, 'blocks': blocks},
                                 family='pathnet', L=L_, blocks=blocks,
                                 avg_path_length=L_ + 3))
    elif experiment == 'imagenet-compare':
        cfgs = [dict(model='resnet101_imagenet', model_args={}, family='resnet_imagenet'),
                dict(model='dmrnet44_imagenet', model_args={}, family='dmrnet_imagenet')]
    else:
        raise ValueError('unknown experiment %r: use one of %s'
                         % (experiment, ', '.join(EXPERIMENTS)))
    return cfgs


def run_name(dataset, cfg, seed):
    extra = ''.join('-%s%s' % (k, v) for k, v in sorted(cfg['model_args'].items()))
    return '%s-%s%s-s%d' % (dataset, cfg['model'], extra, seed)


def recipe(dataset, scale=1.0, epochs=None):
    """(epochs, max_batches or None) of the (scaled) recipe."""
    full_epochs, n_train, batch = RECIPES[dataset]
    e = epochs if epochs is not None else max(1, int(round(full_epochs * scale)))
    mb = None if scale >= 1 else max(1, int(math.ceil(math.ceil(n_train / batch) * scale)))
    return e, mb


def build_runs(experiment, datasets=None, seeds=None, scale=1.0, epochs=None, runs_dir='runs',
               L=None, pattern=None):
    """Every run of an experiment, as dicts (the future run.json)."""
    datasets = datasets or DEFAULT_DATASETS[experiment]
    # absolute: the train scripts run with the repository as their working directory
    runs_dir = os.path.abspath(runs_dir)
    n_seeds = seeds if seeds is not None else DEFAULT_SEEDS.get(experiment, 1)
    runs = []
    for dataset in datasets:
        if dataset not in SCRIPTS:
            raise ValueError('unknown dataset %r: use one of %s' % (dataset, ', '.join(SCRIPTS)))
        e, mb = recipe(dataset, scale, epochs)
        # seed-major: a partly finished experiment has every configuration's first runs
        for seed in range(n_seeds):
            for cfg in configurations(experiment, L):
                name = run_name(dataset, cfg, seed)
                if pattern and not fnmatch.fnmatch(name, pattern):
                    continue
                run = dict(cfg, experiment=experiment, dataset=dataset, seed=seed, name=name,
                           epochs=e, max_batches=mb, scale=scale,
                           run_dir=os.path.join(runs_dir, experiment, name))
                run.setdefault('share', True if cfg['family'] in ('dmrnet', 'identity') else None)
                run.setdefault('blocks', None)
                runs.append(run)
    return runs


def command(run, python=sys.executable, train_script=None, gpu=None, data_dir=None,
            data_root=None, extra_args=()):
    script, extra = SCRIPTS[run['dataset']]
    script = train_script or os.path.join(REPO, script)
    cmd = [python, script, '--model', run['model']]
    args = dict(run['model_args'])
    # Pin L and width even when the preset name implies them, so that the command line alone
    # says which network a run trained (the engine refuses a flag that contradicts a preset).
    if run.get('L') is not None:
        args.setdefault('L', run['L'])
    if run.get('width') is not None:
        args.setdefault('width', run['width'])
    for k, v in sorted(args.items()):
        cmd += ['--%s' % k.replace('_', '-'), str(v)]
    cmd += extra + ['--epochs', str(run['epochs']), '--save-dir', run['run_dir'],
                    '--seed', str(run['seed'])]
    if run['max_batches'] is not None:
        cmd += ['--max-batches', str(run['max_batches'])]
    if gpu is not None:
        cmd += ['--gpus', str(gpu)]
    if data_root and not data_dir:
        data_dir = os.path.join(data_root, run['dataset'])
    if data_dir:
        cmd += ['--data-dir', data_dir]
    if resumable(run):
        # the engine does not pick up a half-done folder by itself; without this an interrupted
        # run would start again from epoch 1
        cmd += ['--resume', run['run_dir']]
    return cmd + list(extra_args)


def finished(run):
    return os.path.exists(os.path.join(run['run_dir'], 'summary.json'))


def resumable(run):
    """An unfinished run that left a checkpoint pointer (train/checkpoint.py's last.json)."""
    return not finished(run) and os.path.exists(os.path.join(run['run_dir'], 'last.json'))


def _write_json(path, obj):
    tmp = path + '.partial'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# the training processes running now, so that an interrupted runner can stop them instead of
# leaving orphans that keep training (and writing into run folders) behind its back
_children = set()
_children_lock = threading.Lock()
_stopping = threading.Event()


def stop_children(timeout=30):
    """SIGTERM every running training process, then SIGKILL what is still alive."""
    _stopping.set()
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def launch(run, slot, **kw):
    """Run one training subprocess to the end; returns its exit code."""
    os.makedirs(run['run_dir'], exist_ok=True)
    _write_json(os.path.join(run['run_dir'], 'run.json'), run)
    cmd = command(run, gpu=slot, **kw)
    log.info('[%s] %s %s', 'cpu' if slot is None else 'gpu %s' % slot,
             'resume' if resumable(run) else 'start', run['name'])
    with open(os.path.join(run['run_dir'], 'train.out'), 'ab') as out:
        out.write(('$ %s\n' % ' '.join(cmd)).encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        with _children_lock:
            _children.add(proc)
        try:
            rc = proc.wait()
        finally:
            with _children_lock:
                _children.discard(proc)
    if _stopping.is_set():
        log.info('stopped %s (resumable: run the same command again)', run['name'])
        return rc or 1
    if rc != 0 or not finished(run):
        log.error('%s failed (exit code %d, summary.json %s); see %s', run['name'], rc,
                  'present' if finished(run) else 'missing',
                  os.path.join(run['run_dir'], 'train.out'))
        return rc or 1
    log.info('done %s', run['name'])
    return 0


def schedule(runs, gpus=None, results_dir=None, **kw):
    """Run every unfinished run, one per GPU slot (or one at a time on the CPU). Returns the
    names of the runs that failed. With results_dir, results.jsonl there is rewritten after every
    finished run, so a long experiment can be reported on while it is still running."""
    todo = [r for r in runs if not finished(r)]
    log.info('%d runs, %d finished, %d to run', len(runs), len(runs) - len(todo), len(todo))
    jobs = queue.Queue()
    for r in todo:
        jobs.put(r)
    failed = []
    lock = threading.Lock()

    def worker(slot):
        while not _stopping.is_set():
            try:
                r = jobs.get_nowait()
            except queue.Empty:
                return
            rc = launch(r, slot, **kw)
            with lock:
                if rc != 0:
                    failed.append(r['name'])
                elif results_dir:
                    collect(results_dir)

    slots = gpus or [None]
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in slots]
    for t in threads:
        t.start()
    try:
        # join with a timeout: a plain join() would hold off KeyboardInterrupt / SIGTERM
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.5)
    except KeyboardInterrupt:
        log.error('interrupted: stopping the running training processes')
        stop_children()
        for t in threads:
            t.join()
        raise
    return failed


def _last_log(run_dir):
    last = None
    path = os.path.join(run_dir, 'log.jsonl')
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    last = json.loads(line)
    return last or {}


def result_record(run_dir):
    """One results.jsonl record from a finished run's run.json, summary.json and log.jsonl."""
    with open(os.path.join(run_dir, 'run.json')) as f:
        run = json.load(f)
    with open(os.path.join(run_dir, 'summary.json')) as f:
        summary = json.load(f)
    last = _last_log(run_dir)
    rec = {k: run.get(k) for k in ('experiment', 'name', 'dataset', 'family', 'model', 'L',
                                    'width', 'share', 'blocks', 'seed', 'epochs', 'max_batches',
                                    'scale')}
    rec['branches'] = run['model_args'].get('branches', 2 if run.get('family') in (
        'dilnet', 'dmrnet', 'identity') else None)
    rec.update(test_error=summary.get('final_test_error'),
               best_test_error=summary.get('best_test_error'),
               final_train_loss=summary.get('final_train_loss'),
               final_train_error=last.get('train_error'),
               top5=summary.get('top5', summary.get('final_test_top5_error')),
               params=summary.get('params'),
               epochs_trained=summary.get('epochs'), run_dir=run_dir)
    # what the train script actually built; a script default overriding the preset (the reason
    # command() pins L) would show here
    trained = summary.get('model_kwargs') or {}
    if run.get('L') is not None and trained.get('L') not in (None, run['L']):
        log.warning('%s: run.json says L=%s but the network was built with L=%s', run_dir,
                    run['L'], trained['L'])
    rec['trained_L'] = trained.get('L', run.get('L'))
    if 'avg_path_length' in run:
        rec['avg_path_length'] = run['avg_path_length']
    return rec


def collect(experiment_dir):
    """Write experiment_dir/results.jsonl from every finished run below it; returns the records."""
    records = []
    if os.path.isdir(experiment_dir):
        for name in sorted(os.listdir(experiment_dir)):
            d = os.path.join(experiment_dir, name)
            if all(os.path.exists(os.path.join(d, f)) for f in ('run.json', 'summary.json')):
                records.append(result_record(d))
    os.makedirs(experiment_dir, exist_ok=True)
    path = os.path.join(experiment_dir, 'results.jsonl')
    tmp = path + '.partial'
    with open(tmp, 'w') as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + '\n')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    log.info('wrote %s (%d finished runs)', path, len(records))
    return records


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def parse_gpus(text):
    """'0,1,3' -> ['0', '1', '3']; '' -> [] (CPU). One run per listed GPU at a time."""
    gpus = [g.strip() for g in text.split(',') if g.strip()]
    bad = [g for g in gpus if not g.isdigit()]
    if bad:
        raise ValueError('--gpus %r: expected comma-separated GPU numbers such as 0,1,2,3'
                         % text)
    if len(set(gpus)) != len(gpus):
        raise ValueError('--gpus %r lists a GPU twice: two runs would share it' % text)
    return gpus


def group_gpus(gpus, per_run):
    """['0','1','2','3'], 2 -> ['0,1', '2,3']: the slots, each a --gpus value for one run."""
    if per_run < 1:
        raise ValueError('--gpus-per-run must be >= 1, got %d' % per_run)
    if per_run > 1 and (not gpus or len(gpus) % per_run):
        raise ValueError('--gpus-per-run %d needs a multiple of %d GPUs in --gpus, got %d'
                         % (per_run, per_run, len(gpus)))
    return [','.join(gpus[i:i + per_run]) for i in range(0, len(gpus), per_run)]


def check_L(experiment, L):
    """digits-compare builds all three families at one L: a DILNet/DMRNet has L/6 two-branch
    blocks a stage, so L must be a positive multiple of 6."""
    if L is None:
        return
    if experiment != 'digits-compare':
        raise ValueError('--L applies to digits-compare only (the other experiments use the '
                         "paper's L values)")
    if L <= 0 or L % 6:
        raise ValueError('--L %d: must be a positive multiple of 6 (L/6 two-branch blocks per '
                         'stage for DILNet and DMRNet)' % L)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after a lone '--' goes to the train scripts untouched (argparse would otherwise
    # take '--train-args --no-progress' for two options)
    passthrough = []
    if '--' in argv:
        cut = argv.index('--')
        argv, passthrough = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('experiment', choices=EXPERIMENTS)
    p.add_argument('--dataset', help='comma-separated datasets replacing the default ones')
    p.add_argument('--gpus', default='', help="e.g. '0,1,2,3': one run per GPU at a time")
    p.add_argument('--gpus-per-run', type=int, default=1,
                   help='GPUs given to each run (ImageNet): --gpus 0,1,2,3 --gpus-per-run 2 '
                        'runs two at a time on 0,1 and 2,3')
    p.add_argument('--seeds', type=int, help='runs per configuration (seeds 0..N-1)')
    p.add_argument('--scale', type=float, default=1.0, help='shrink epochs and batches per epoch')
    p.add_argument('--epochs', type=int, help='override the (scaled) number of epochs')
    p.add_argument('--L', type=int, help='digits-compare: L of the three networks (default 12)')
    p.add_argument('--runs-dir', default=os.path.join(REPO, 'runs'))
    p.add_argument('--data-dir', help='passed to the train scripts (one folder for every dataset)')
    p.add_argument('--data-root', help='per-dataset folders: --data-dir ROOT/<dataset> (the '
                                       "Makefile's DATA layout, e.g. data/cifar10)")
    p.add_argument('--filter', help='only runs whose name matches this glob')
    p.add_argument('--train-script', default=os.environ.get('DMRNET_TRAIN_SCRIPT'),
                   help='use this script for every dataset (tests; env DMRNET_TRAIN_SCRIPT)')
    p.add_argument('--python', default=sys.executable)
    p.add_argument('--train-args', default='',
                   help="further options for every train script, e.g. "
                        "--train-args='--max-val-batches 2' (or put them after --)")
    p.add_argument('--dry-run', action='store_true', help='list the runs and their commands')
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    if not 0 < a.scale <= 1:
        p.error('--scale must be in (0, 1], got %g' % a.scale)
    if a.seeds is not None and a.seeds < 1:
        p.error('--seeds must be >= 1, got %d' % a.seeds)
    if a.epochs is not None and a.epochs < 1:
        p.error('--epochs must be >= 1, got %d' % a.epochs)
    try:
        check_L(a.experiment, a.L)
        gpus = group_gpus(parse_gpus(a.gpus), a.gpus_per_run)
        datasets = [d.strip() for d in a.dataset.split(',') if d.strip()] if a.dataset else None
        if a.dataset and not datasets:
            raise ValueError('--dataset %r names no dataset' % a.dataset)
        runs = build_runs(a.experiment, datasets, a.seeds, a.scale, a.epochs, a.runs_dir, a.L,
                          a.filter)
    except ValueError as e:
        p.error(str(e))
    if not runs:
        p.error('no run matches --filter %r' % a.filter if a.filter else 'no runs')
    train_script = os.path.abspath(a.train_script) if a.train_script else None
    scripts = {train_script} if train_script else {
        os.path.join(REPO, SCRIPTS[r['dataset']][0]) for r in runs}
    missing = sorted(s for s in scripts if not os.path.exists(s))
    if missing:
        p.error('train script(s) not found: %s' % ', '.join(missing))
    if a.data_dir and a.data_root:
        p.error('give --data-dir or --data-root, not both')
    if a.data_dir and not os.path.isdir(a.data_dir):
        p.error('--data-dir %s is not a folder' % a.data_dir)
    if a.data_root and not os.path.isdir(a.data_root):
        p.error('--data-root %s is not a folder' % a.data_root)
    # a missing ROOT/<dataset> is left to the train script: its error names the pack command
    kw = dict(python=a.python, train_script=train_script,
              data_dir=os.path.abspath(a.data_dir) if a.data_dir else None,
              data_root=os.path.abspath(a.data_root) if a.data_root else None,
              extra_args=shlex.split(a.train_args) + passthrough)
    if a.dry_run:
        for i, r in enumerate(runs):
            gpu = gpus[i % len(gpus)] if gpus else None
            state = 'done' if finished(r) else 'part' if resumable(r) else 'todo'
            print('%s %s\n    %s' % (state, r['name'], ' '.join(command(r, gpu=gpu, **kw))))
        print('%d runs (%d finished)' % (len(runs), sum(map(finished, runs))))
        return 0
    exp_dir = os.path.join(os.path.abspath(a.runs_dir), a.experiment)
    if threading.current_thread() is threading.main_thread():
        # `kill RUNNER_PID` behaves like Ctrl-C: the children are stopped too
        signal.signal(signal.SIGTERM, _raise_interrupt)
    _stopping.clear()
    try:
        failed = schedule(runs, gpus, results_dir=exp_dir, **kw)
    except KeyboardInterrupt:
        collect(exp_dir)
        return 130
    collect(exp_dir)
    if failed:
        log.error('%d runs failed: %s', len(failed), ', '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
