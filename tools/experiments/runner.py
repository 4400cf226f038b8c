"""The experiment runner: one command per experiment of the paper, resumable, over GPU slots.

    python -m dmrnet.tools.experiments EXPERIMENT [--dataset D[,D..]] [--gpus 0,1,2,3]
                                [--seeds N] [--scale S] [--runs-dir runs]
                                [--data-dir DIR | --data-root ROOT] [--dry-run] [--gpus-per-run N]
                                [--filter GLOB] [--train-script PATH] [--epochs E] [--L N]
                                [--jobs N]
                                [--train-args '...'] [-- TRAIN-SCRIPT OPTIONS...]
    (the same: python tools/experiments/runner.py EXPERIMENT ...)

Experiments (default datasets in brackets; default runs per configuration: 5 for table2 and
the family comparisons on real data of our own, 1 elsewhere, as the paper reports means of 5
runs only in Table 2):
  table2            ResNet / DILNet / DMRNet x L in (12,..,96)              [cifar10,cifar100,svhn]
  table3            dmrnet56, dmrnet_wide32/50, resnet110, rir18            [cifar10,cifar100,svhn]
  table5            identity vs merge-and-run, w/ and w/o sharing, L=48,96  [cifar10,cifar100]
  figure6           pathnet, 3 and 6 blocks, L in FIGURE6_L                 [cifar10]
  imagenet-compare  resnet101_imagenet vs dmrnet44_imagenet                 [imagenet]
  digits-compare    ResNet / DILNet / DMRNet at equal L (--L, default 12)   [digits]
  fashion-compare   ResNet / DILNet / DMRNet at equal L (--L, default 12)   [fashion]
(The L values, families and Table 3 networks are dmrnet.paper's.)

Every run is `python train/<script>.py --model NAME [--L N --width W --blocks B] --epochs E
--save-dir RUNS/EXPERIMENT/RUN --seed S [--gpus G] [--data-dir D] [--max-batches N]` (the CLI of
docs/CONTRACTS.md; the script is the dataset's recipe's, dmrnet.train.recipes; `--blocks` only
for the Figure 6 'pathnet' family; L and width are passed even with a preset name, so that no
train-script default can change the network). A run whose `summary.json` exists is finished and
skipped, so an interrupted experiment resumes by running the same command again: a run folder
that holds a checkpoint (last.json) but no summary.json is continued with `--resume RUN` rather
than started over. Runs are scheduled one per GPU slot (`--gpus 0,1,2,3`: four at a time, each
with one GPU; with `--gpus-per-run 2`: two at a time on 0,1 and 2,3), or on the CPU one at a
time, or `--jobs N` at a time with the cores split between them (OMP_NUM_THREADS = cores / N
in each run, N capped at the runs left to run, unless OMP_NUM_THREADS is set: then each run
takes that many). Small networks use
two cores poorly, so two one-thread runs train more images per second than one two-thread run
(docs/EXPERIMENTS.md). Each run's stdout/stderr go to RUN/train.out; its description to
RUN/run.json.
Options after a lone `--` (or in --train-args) go to every train script unchanged.

`--scale S` (0 < S <= 1) shrinks the recipe: epochs -> max(1, round(E*S)) and, if S < 1,
batches per epoch -> max(1, ceil(N*S)) via --max-batches. `--dataset digits` runs any experiment
on the tiny digits set, so the whole pipeline runs on a CPU in minutes:
    python -m dmrnet.tools.experiments table2 --dataset digits --scale 0.05 --seeds 1

Results: after each run and at the end, every finished run under RUNS/EXPERIMENT (from this and
any earlier invocation) is collected into RUNS/EXPERIMENT/results.jsonl, one JSON object a line:
  experiment, name, dataset, family, model, L, width, branches, share, blocks, seed,
  epochs, max_batches, scale, test_error (= summary final_test_error, %), best_test_error,
  final_train_loss, final_train_error (last log.jsonl line, %), top5 (summary top5 or
  final_test_top5_error, if any), params,
  avg_path_length (figure6 only: L + 3, Section 4.3), run_dir.
The report (python -m dmrnet.tools.experiments.report) reads these files.
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

from dmrnet import paper
from dmrnet.data import dataset_info
from dmrnet.symbols import preset
from dmrnet.tools.experiments.layout import EXPERIMENTS, REPOSITORY, RESULTS_FILE, RUNS_DIR
from dmrnet.train import rundir
from dmrnet.train.recipes import recipe_for
from dmrnet.train.resume import RECIPE_FIELDS
from dmrnet.utils.devices import parse_devices
from dmrnet.utils.files import write_json, write_jsonl
from dmrnet.utils.process import end_with_parent
from dmrnet.utils import cuda, runtime

log = logging.getLogger('dmrnet.experiments')

RUN_FILE = 'run.json'   # the runner's description of a run, beside what the training writes
DEFAULT_DATASETS = {
    'table2': ('cifar10', 'cifar100', 'svhn'), 'table3': ('cifar10', 'cifar100', 'svhn'),
    'table5': ('cifar10', 'cifar100'), 'figure6': ('cifar10',),
    'imagenet-compare': ('imagenet',), 'digits-compare': ('digits',),
    'fashion-compare': ('fashion',),
}
DEFAULT_SEEDS = {'table2': 5, 'digits-compare': 5, 'fashion-compare': 5}
# ResNet, DILNet and DMRNet at one L of Table 2 on data the paper did not use (--L changes it).
FAMILY_COMPARISONS = ('digits-compare', 'fashion-compare')
COMPARISON_L = 12


def _family_comparison(Ls):
    """ResNet, DILNet and DMRNet at each L: Table 2's preset (depth in the name) where Table 2
    has one, else the family with L as an argument."""
    configurations = []
    for L in Ls:
        for family in paper.FAMILIES:
            if L in paper.TABLE2_L:
                model, model_args = paper.table2_preset(family, L), {}
            else:
                model, model_args = family, {'L': L}
            configurations.append(dict(model=model, model_args=model_args, family=family, L=L,
                                       width=1))
    return configurations


def _table3():
    """Table 3's networks as their presets define them (dmrnet.symbols); RiR is one fixed
    network, without the L and width the other families take."""
    configurations = []
    for model in paper.TABLE3_MODELS.values():
        entry = preset(model)
        L = entry['kwargs'].get('L')
        width = entry['kwargs'].get('width', 1) if L is not None else None
        configurations.append(dict(model=model, model_args={}, family=entry['family'], L=L,
                                   width=width))
    return configurations


def _table5():
    """Identity mappings against merge-and-run, with and without sharing the first conv and the
    classifier; the presets are named like Table 2's (depth L + 2)."""
    configurations = []
    for share in (True, False):
        for L in paper.TABLE5_L:
            suffix = '' if share else '_noshare'
            for family in ('identity', 'dmrnet'):
                configurations.append(dict(model=paper.table2_preset(family, L) + suffix,
                                           model_args={}, family=family, L=L, width=1,
                                           share=share))
    return configurations


def _figure6():
    """The plain nets cut into 3 or 6 residual blocks; average path length L + 3 (Section
    4.3)."""
    return [dict(model='pathnet', model_args={'L': L, 'blocks': blocks}, family='pathnet', L=L,
                 blocks=blocks, avg_path_length=L + 3)
            for blocks in (3, 6) for L in paper.FIGURE6_L]


def configurations(experiment, L=None):
    """The networks of an experiment: dicts with model (preset or family), model_args (passed
    on the command line) and the descriptive fields the report groups by."""
    if experiment == 'table2':
        return _family_comparison(paper.TABLE2_L)
    if experiment in FAMILY_COMPARISONS:
        return _family_comparison((L or COMPARISON_L,))
    if experiment == 'table3':
        return _table3()
    if experiment == 'table5':
        return _table5()
    if experiment == 'figure6':
        return _figure6()
    if experiment == 'imagenet-compare':
        return [dict(model='resnet101_imagenet', model_args={}, family='resnet_imagenet'),
                dict(model='dmrnet44_imagenet', model_args={}, family='dmrnet_imagenet')]
    raise ValueError('unknown experiment %r: use one of %s' % (experiment, ', '.join(EXPERIMENTS)))


def run_name(dataset, configuration, seed):
    arguments = ''.join('-%s%s' % (key, value)
                        for key, value in sorted(configuration['model_args'].items()))
    return '%s-%s%s-s%d' % (dataset, configuration['model'], arguments, seed)


def scaled_recipe(dataset, scale=1.0, epochs=None):
    """(epochs, max_batches or None) of the dataset's recipe (dmrnet.train.recipes), scaled."""
    recipe = recipe_for(dataset)
    if epochs is None:
        epochs = max(1, int(round(recipe.epochs * scale)))
    if scale >= 1:
        return epochs, None
    batches = math.ceil(dataset_info(dataset)['num_train'] / recipe.batch_size)
    return epochs, max(1, int(math.ceil(batches * scale)))


def script_for(dataset):
    """The recipe's train script (absolute) and the arguments that choose `dataset` in it: a
    script that trains several datasets (train/cifar.py) takes --dataset."""
    recipe = recipe_for(dataset)
    arguments = ['--dataset', dataset] if len(recipe.datasets) > 1 else []
    return os.path.join(REPOSITORY, recipe.script), arguments


def build_runs(experiment, datasets=None, seeds=None, scale=1.0, epochs=None, runs_dir='runs',
               L=None, pattern=None):
    """Every run of an experiment, as dicts (the future run.json)."""
    datasets = datasets or DEFAULT_DATASETS[experiment]
    # absolute: the train scripts run with the repository as their working directory
    runs_dir = os.path.abspath(runs_dir)
    seed_count = seeds if seeds is not None else DEFAULT_SEEDS.get(experiment, 1)
    runs = []
    for dataset in datasets:
        run_epochs, max_batches = scaled_recipe(dataset, scale, epochs)
        # seed-major: a partly finished experiment has every configuration's first runs
        for seed in range(seed_count):
            for configuration in configurations(experiment, L):
                name = run_name(dataset, configuration, seed)
                if pattern and not fnmatch.fnmatch(name, pattern):
                    continue
                run = dict(configuration, experiment=experiment, dataset=dataset, seed=seed,
                           name=name, epochs=run_epochs, max_batches=max_batches, scale=scale,
                           run_dir=os.path.join(runs_dir, experiment, name))
                run.setdefault('share', True if configuration['family'] in ('dmrnet', 'identity')
                               else None)
                run.setdefault('blocks', None)
                runs.append(run)
    return runs


def command(run, python=sys.executable, train_script=None, gpu=None, data_dir=None,
            data_root=None, extra_args=()):
    script, dataset_args = script_for(run['dataset'])
    cmd = [python, train_script or script, '--model', run['model']]
    model_args = dict(run['model_args'])
    # Pin L and width even when the preset name implies them, so that the command line alone
    # says which network a run trained (the engine refuses a flag that contradicts a preset).
    if run.get('L') is not None:
        model_args.setdefault('L', run['L'])
    if run.get('width') is not None:
        model_args.setdefault('width', run['width'])
    for key, value in sorted(model_args.items()):
        cmd += ['--%s' % key.replace('_', '-'), str(value)]
    cmd += dataset_args + ['--epochs', str(run['epochs']), '--save-dir', run['run_dir'],
                           '--seed', str(run['seed'])]
    if run['max_batches'] is not None:
        cmd += ['--max-batches', str(run['max_batches'])]
    if gpu is not None:
        cmd += ['--gpus', str(gpu)]
    if data_root and not data_dir:  # a split of another dataset's pack shares its folder
        data_dir = os.path.join(data_root, dataset_info(run['dataset'])['folder'])
    if data_dir:
        cmd += ['--data-dir', data_dir]
    if resumable(run):
        # the engine does not pick up a half-done folder by itself; without this an interrupted
        # run would start again from epoch 1
        cmd += ['--resume', run['run_dir']]
    return cmd + list(extra_args)


def recipe_clashes(runs, **command_options):
    """[(run name, differences)] of the finished runs whose recorded recipe is not the one this
    command would train (train/resume.py's fields, epochs included: the runner never extends a
    finished run, so more epochs would leave the experiment with two lengths). Runs of a train
    script other than the dataset's own (--train-script) are not ours to read."""
    import importlib
    from dmrnet.train.cli import parse_config
    from dmrnet.train.config import command_line
    from dmrnet.train.resume import differences
    if command_options.get('train_script'):
        return []
    clashes = []
    for run in runs:
        if not finished(run):
            continue
        recorded = (rundir.read_summary(run['run_dir']) or {}).get('args') or {}
        module = 'dmrnet.' + recipe_for(run['dataset']).script[:-3].replace('/', '.')
        parser = importlib.import_module(module).parser()
        config = parse_config(parser, command(run, **command_options)[2:])
        with command_line():   # the differences are in the train scripts' flags
            found = differences(recorded, config, 0)
        if recorded.get('epochs') not in (None, config.epochs):
            found.append(('--epochs', recorded['epochs'], config.epochs))
        if found:
            clashes.append((run['name'], found))
    return clashes


def finished(run):
    return rundir.is_finished(run['run_dir'])


def resumable(run):
    """An unfinished run that left a checkpoint pointer."""
    return not finished(run) and rundir.has_checkpoint(run['run_dir'])


# the training processes running now, so that an interrupted runner can stop them instead of
# leaving orphans that keep training (and writing into run folders) behind its back
_children = set()
_children_lock = threading.Lock()
_stopping = threading.Event()


def stop_children(timeout=30):
    """SIGTERM every running training process, then SIGKILL what is still alive."""
    _stopping.set()
    with _children_lock:
        processes = list(_children)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_threads(jobs):
    """OpenMP threads for each of `jobs` CPU runs at a time: the OMP_NUM_THREADS the user set
    (not the default that importing dmrnet put into this process's environment), else this
    machine's usable cores shared out (at least one each)."""
    if runtime.USER_OMP_THREADS:
        return int(runtime.USER_OMP_THREADS)
    return max(1, runtime.usable_cores() // jobs)


def launch(run, slot, threads=None, **command_options):
    """Run one training subprocess to the end; returns its exit code. `slot` is the run's
    --gpus value (None: the CPU); `threads`, the OpenMP threads of a CPU run."""
    os.makedirs(run['run_dir'], exist_ok=True)
    write_json(os.path.join(run['run_dir'], RUN_FILE), run)
    cmd = command(run, gpu=slot, **command_options)
    env, shown = dict(os.environ), ''
    if slot is None and threads:
        env['OMP_NUM_THREADS'] = str(threads)
        shown = 'OMP_NUM_THREADS=%d ' % threads
    log.info('[%s] %s %s', 'cpu' if slot is None else 'gpu %s' % slot,
             'resume' if resumable(run) else 'start', run['name'])
    with open(os.path.join(run['run_dir'], 'train.out'), 'ab') as out:
        out.write(('$ %s%s\n' % (shown, ' '.join(cmd))).encode())
        out.flush()
        # a runner killed outright takes its trainings with it: an orphan would train on
        # unwatched, holding the folder a rerun of the runner resumes
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPOSITORY,
                                   env=env, preexec_fn=end_with_parent())
        with _children_lock:
            _children.add(process)
        try:
            returncode = process.wait()
        finally:
            with _children_lock:
                _children.discard(process)
    if _stopping.is_set():
        log.info('stopped %s (resumable: run the same command again)', run['name'])
        return returncode or 1
    if returncode != 0 or not finished(run):
        log.error('%s failed (exit code %d, summary.json %s); see %s', run['name'], returncode,
                  'present' if finished(run) else 'missing',
                  os.path.join(run['run_dir'], 'train.out'))
        return returncode or 1
    log.info('done %s', run['name'])
    return 0


def schedule(runs, gpus=None, results_dir=None, jobs=1, **command_options):
    """Run every unfinished run, one per GPU slot (or `jobs` at a time on the CPU, the cores
    shared between them). Returns the names of the runs that failed. With results_dir,
    results.jsonl there is rewritten after every finished run, so a long experiment can be
    reported on while it is still running."""
    todo = [run for run in runs if not finished(run)]
    log.info('%d runs, %d finished, %d to run', len(runs), len(runs) - len(todo), len(todo))
    pending = queue.Queue()
    for run in todo:
        pending.put(run)
    failed = []
    lock = threading.Lock()

    def worker(slot):
        while not _stopping.is_set():
            try:
                run = pending.get_nowait()
            except queue.Empty:
                return
            returncode = launch(run, slot, threads=threads, **command_options)
            with lock:
                if returncode != 0:
                    failed.append(run['name'])
                elif results_dir:
                    collect(results_dir)

    # fewer runs left than jobs (the tail of a resumed experiment): the runs there are get
    # the cores the missing ones would have had
    jobs = max(1, min(jobs, len(todo)))
    threads = None if gpus else cpu_threads(jobs)
    if threads:
        log.info('%d run(s) at a time on the CPU, %d OpenMP thread(s) each', jobs, threads)
    workers = [threading.Thread(target=worker, args=(slot,), daemon=True)
               for slot in gpus or [None] * jobs]
    for thread in workers:
        thread.start()
    try:
        # join with a timeout: a plain join() would hold off KeyboardInterrupt / SIGTERM
        while any(thread.is_alive() for thread in workers):
            for thread in workers:
                thread.join(0.5)
    except KeyboardInterrupt:
        log.error('interrupted: stopping the running training processes')
        stop_children()
        for thread in workers:
            thread.join()
        raise
    return failed


def result_record(run_dir):
    """One results.jsonl record from a finished run's run.json, summary.json and log.jsonl."""
    with open(os.path.join(run_dir, RUN_FILE)) as f:
        run = json.load(f)
    summary = rundir.read_summary(run_dir)
    last = rundir.last_record(run_dir)
    record = {key: run.get(key) for key in (
        'experiment', 'name', 'dataset', 'family', 'model', 'L', 'width', 'share', 'blocks',
        'seed', 'epochs', 'max_batches', 'scale')}
    record['branches'] = run['model_args'].get('branches', 2 if run.get('family') in (
        'dilnet', 'dmrnet', 'identity') else None)
    record.update(test_error=summary.get('final_test_error'),
                  best_test_error=summary.get('best_test_error'),
                  final_train_loss=summary.get('final_train_loss'),
                  final_train_error=last.get('train_error'),
                  top5=summary.get('top5', summary.get('final_test_top5_error')),
                  params=summary.get('params'),
                  epochs_trained=summary.get('epochs'), run_dir=run_dir,
                  batch_per_device=batch_per_device(summary.get('args') or {}),
                  recipe={field: (summary.get('args') or {}).get(field)
                          for field in RECIPE_FIELDS})
    # what the train script actually built; a script default overriding the preset (the reason
    # command() pins L) would show here
    trained = summary.get('model_kwargs') or {}
    if run.get('L') is not None and trained.get('L') not in (None, run['L']):
        log.warning('%s: run.json says L=%s but the network was built with L=%s', run_dir,
                    run['L'], trained['L'])
    record['trained_L'] = trained.get('L', run.get('L'))
    if 'avg_path_length' in run:
        record['avg_path_length'] = run['avg_path_length']
    return record


def batch_per_device(train_args):
    """Images BatchNorm normalised over on each device of a run (one worker), or None."""
    try:
        devices = len(parse_devices(train_args.get('gpus'))) or int(train_args.get('cpus') or 1)
        return int(train_args['batch_size']) // devices
    except (KeyError, TypeError, ValueError):
        return None


def collect(experiment_dir):
    """Write experiment_dir/results.jsonl from every finished run below it; returns the records
    (with their run folders' full paths)."""
    records = []
    if os.path.isdir(experiment_dir):
        for name in sorted(os.listdir(experiment_dir)):
            run_dir = os.path.join(experiment_dir, name)
            if os.path.exists(os.path.join(run_dir, RUN_FILE)) and rundir.is_finished(run_dir):
                records.append(result_record(run_dir))
    # run folders named beside the file (the report resolves them there): the same file on
    # every checkout, so a kept experiment's results stay as committed
    path = write_jsonl(os.path.join(experiment_dir, RESULTS_FILE),
                       [dict(record, run_dir=os.path.basename(record['run_dir']))
                        for record in records])
    log.info('wrote %s (%d finished runs)', path, len(records))
    return records


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def parse_gpus(text):
    """'0,1,3' or '0-3' (dmrnet.utils.devices) -> ['0', '1', '3'] or ['0', '1', '2', '3'];
    '' -> [] (CPU). One run per listed GPU at a time, so a GPU listed twice is refused: two
    runs would share it."""
    try:
        gpus = parse_devices(text)
    except ValueError:
        raise ValueError('--gpus %r: expected GPU numbers such as 0,1,2,3 or 0-3' % text) from None
    if len(set(gpus)) != len(gpus):
        raise ValueError('--gpus %r lists a GPU twice: two runs would share it' % text)
    return [str(gpu) for gpu in gpus]


# The authors trained CIFAR and SVHN on 2 GPUs x 32 images, so BatchNorm normalised over 32.
AUTHORS_IMAGES_PER_DEVICE = 32


def authors_gpus_per_run(datasets, gpu_count):
    """GPUs a run needs for BatchNorm to see the authors' images per device with the recipe's
    total batch (64 -> 2), when every dataset's recipe divides that way and the listed GPUs
    split into such groups; else 1 (the report notes runs whose BatchNorm batch differs)."""
    wanted = {recipe_for(dataset).batch_size // AUTHORS_IMAGES_PER_DEVICE for dataset in datasets
              if recipe_for(dataset).batch_size % AUTHORS_IMAGES_PER_DEVICE == 0}
    if len(wanted) == 1 and len(wanted & {1, 2, 4, 8}) == 1:
        per_run = wanted.pop()
        if gpu_count and gpu_count % per_run == 0:
            return per_run
    return 1


def group_gpus(gpus, per_run):
    """['0','1','2','3'], 2 -> ['0,1', '2,3']: the slots, each a --gpus value for one run."""
    if per_run < 1:
        raise ValueError('--gpus-per-run must be >= 1, got %d' % per_run)
    if per_run > 1 and (not gpus or len(gpus) % per_run):
        raise ValueError('--gpus-per-run %d needs a multiple of %d GPUs in --gpus, got %d'
                         % (per_run, per_run, len(gpus)))
    return [','.join(gpus[i:i + per_run]) for i in range(0, len(gpus), per_run)]


def check_L(experiment, L):
    """A family comparison builds all three families at one L: a DILNet/DMRNet has L/6
    two-branch blocks a stage, so L must be a positive multiple of 6."""
    if L is None:
        return
    if experiment not in FAMILY_COMPARISONS:
        raise ValueError('--L applies to %s only (the other experiments use the '
                         "paper's L values)" % ' and '.join(FAMILY_COMPARISONS))
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
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0],
                                     prog='python -m dmrnet.tools.experiments',
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('experiment', choices=EXPERIMENTS)
    parser.add_argument('--dataset', help='comma-separated datasets replacing the default ones')
    parser.add_argument('--gpus', default='', help="e.g. '0,1,2,3': one run per GPU at a time")
    parser.add_argument('--gpus-per-run', type=int,
                        help='GPUs given to each run: --gpus 0,1,2,3 --gpus-per-run 2 runs two '
                             'at a time on 0,1 and 2,3. Default: what makes BatchNorm see the '
                             "authors' %d images a device (their 2 GPUs x 32 for CIFAR and SVHN) "
                             'where --gpus allows, else 1' % AUTHORS_IMAGES_PER_DEVICE)
    parser.add_argument('--jobs', type=int, default=1,
                        help='CPU runs at a time, the cores shared between them (default 1)')
    parser.add_argument('--seeds', type=int, help='runs per configuration (seeds 0..N-1)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='shrink epochs and batches per epoch')
    parser.add_argument('--epochs', type=int, help='override the (scaled) number of epochs')
    parser.add_argument('--L', type=int, help='%s: L of the three networks (default %d)'
                                              % (', '.join(FAMILY_COMPARISONS), COMPARISON_L))
    parser.add_argument('--runs-dir', default=RUNS_DIR,
                        help='runs go to RUNS/EXPERIMENT/RUN (default: runs/ of the repository)')
    parser.add_argument('--data-dir',
                        help='passed to the train scripts (one folder for every dataset)')
    parser.add_argument('--data-root', help='per-dataset folders: --data-dir ROOT/<dataset> (the '
                                            "Makefile's DATA layout, e.g. data/cifar10)")
    parser.add_argument('--filter', help='only runs whose name matches this glob')
    parser.add_argument('--train-script', default=os.environ.get('DMRNET_TRAIN_SCRIPT'),
                        help='use this script for every dataset (tests; env DMRNET_TRAIN_SCRIPT)')
    parser.add_argument('--python', default=sys.executable,
                        help='the interpreter of the training runs (default: this one)')
    parser.add_argument('--train-args', default='',
                        help="further options for every train script, e.g. "
                             "--train-args='--max-val-batches 2' (or put them after --)")
    parser.add_argument('--dry-run', action='store_true',
                        help='list the runs and their commands')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    if not 0 < args.scale <= 1:
        parser.error('--scale must be in (0, 1], got %g' % args.scale)
    if args.seeds is not None and args.seeds < 1:
        parser.error('--seeds must be >= 1, got %d' % args.seeds)
    if args.epochs is not None and args.epochs < 1:
        parser.error('--epochs must be >= 1, got %d' % args.epochs)
    if args.jobs < 1:
        parser.error('--jobs must be >= 1, got %d' % args.jobs)
    if args.jobs > 1 and args.gpus:
        parser.error('--jobs is for CPU runs; with --gpus, each GPU slot runs one at a time '
                     '(see --gpus-per-run)')
    try:
        check_L(args.experiment, args.L)
        datasets = ([name.strip() for name in args.dataset.split(',') if name.strip()]
                    if args.dataset else None)
        if args.dataset and not datasets:
            raise ValueError('--dataset %r names no dataset' % args.dataset)
        listed = parse_gpus(args.gpus)
        per_run = args.gpus_per_run if args.gpus_per_run is not None else \
            authors_gpus_per_run(datasets or DEFAULT_DATASETS[args.experiment], len(listed))
        gpus = group_gpus(listed, per_run)
        runs = build_runs(args.experiment, datasets, args.seeds, args.scale, args.epochs,
                          args.runs_dir, args.L, args.filter)
    except ValueError as e:
        parser.error(str(e))
    if not runs:
        parser.error('no run matches --filter %r' % args.filter if args.filter else 'no runs')
    train_script = os.path.abspath(args.train_script) if args.train_script else None
    scripts = {train_script} if train_script else {script_for(run['dataset'])[0] for run in runs}
    missing = sorted(script for script in scripts if not os.path.exists(script))
    if missing:
        parser.error('train script(s) not found: %s' % ', '.join(missing))
    if args.data_dir and args.data_root:
        parser.error('give --data-dir or --data-root, not both')
    if args.data_dir and not os.path.isdir(args.data_dir):
        parser.error('--data-dir %s is not a folder' % args.data_dir)
    if args.data_root and not os.path.isdir(args.data_root):
        parser.error('--data-root %s is not a folder' % args.data_root)
    # a missing ROOT/<dataset> is left to the train script: its error names the pack command
    command_options = dict(
        python=args.python, train_script=train_script,
        data_dir=os.path.abspath(args.data_dir) if args.data_dir else None,
        data_root=os.path.abspath(args.data_root) if args.data_root else None,
        extra_args=shlex.split(args.train_args) + passthrough)
    if args.dry_run:
        for i, run in enumerate(runs):
            gpu = gpus[i % len(gpus)] if gpus else None
            state = 'done' if finished(run) else 'part' if resumable(run) else 'todo'
            print('%s %s\n    %s' % (state, run['name'],
                                     ' '.join(command(run, gpu=gpu, **command_options))))
        print('%d runs (%d finished)' % (len(runs), sum(map(finished, runs))))
        return 0
    clashes = recipe_clashes(runs, **command_options)
    if clashes:
        name, found = clashes[0]
        parser.exit(2, '%s: error: %d finished run(s) of %s were trained with another recipe '
                       '(%s: %s; this command: %s): one experiment folder holds one recipe, so '
                       'give this one its own --runs-dir, or the options the runs were made '
                       'with\n' % (parser.prog, len(clashes), args.experiment, name,
                                    ' '.join('%s %s' % (flag, then) for flag, then, _ in found),
                                    ' '.join('%s %s' % (flag, now) for flag, _, now in found)))
    # every run would stop with the same line; say it once, before any run folder is made
    problem = cuda.gpu_problem(listed)
    if problem:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, problem))
    experiment_dir = os.path.join(os.path.abspath(args.runs_dir), args.experiment)
    try:
        # one runner per experiment folder: two would take each other's runs for failures
        runner_lock = rundir.FolderLock(experiment_dir)
    except rundir.FolderInUse as e:
        parser.exit(2, '%s: error: %s is being run by another runner (process %s): wait for it '
                       'to end, or give this one another --runs-dir\n'
                    % (parser.prog, experiment_dir, e.holder))
    try:
        return _run_experiment(args, runs, gpus, experiment_dir, command_options)
    finally:
        runner_lock.release()


def _run_experiment(args, runs, gpus, experiment_dir, command_options):
    if threading.current_thread() is threading.main_thread():
        # `kill RUNNER_PID` behaves like Ctrl-C: the children are stopped too
        signal.signal(signal.SIGTERM, _raise_interrupt)
    _stopping.clear()
    try:
        failed = schedule(runs, gpus, results_dir=experiment_dir, jobs=args.jobs,
                          **command_options)
    except KeyboardInterrupt:
        collect(experiment_dir)
        return 130
    collect(experiment_dir)
    if failed:
        log.error('%d runs failed: %s', len(failed), ', '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
