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
import logging
import os
import shlex
import sys

from dmrnet import paper
from dmrnet.tools.experiments.collect import collect, finished, resumable
from dmrnet.tools.experiments.commands import command, recipe_clashes, script_for
from dmrnet.tools.experiments.definitions import (COMPARISON_L, DEFAULT_DATASETS,
                                                  FAMILY_COMPARISONS, build_runs, check_L)
from dmrnet.tools.experiments.layout import EXPERIMENTS, RUNS_DIR
from dmrnet.tools.experiments.scheduler import (authors_gpus_per_run, group_gpus, parse_gpus,
                                                schedule)
from dmrnet.train import rundir
from dmrnet.utils import cuda
from dmrnet.utils.process import sigterm_as_interrupt

log = logging.getLogger('dmrnet.experiments')


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
                             'where --gpus allows, else 1' % paper.AUTHORS_IMAGES_PER_DEVICE)
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
    try:
        # `kill RUNNER_PID` behaves like Ctrl-C: the children are stopped too
        with sigterm_as_interrupt():
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
