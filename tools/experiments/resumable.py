"""The files that let an experiment's unfinished runs continue on another machine.

    python -m dmrnet.tools.experiments.resumable RUNS/EXPERIMENT

prints, one path a line, every file an interrupted run (a checkpoint, no summary.json) needs to
be resumed elsewhere by running the experiment's command again: its description, log and the
checkpoint its pointers name (last and best, parameters and optimizer states). Where a machine
keeps nothing but the repository, committing them carries a long experiment across machines:

    git add -f $(python -m dmrnet.tools.experiments.resumable results/fashion/runs/fashion-compare)

Stop the runner first (a checkpoint written while the list is read would leave it stale). A run
that has not finished an epoch has nothing to keep and starts again.
"""
import argparse
import os
import sys

from dmrnet.tools.experiments.collect import RUN_FILE
from dmrnet.train import rundir

KEPT = (RUN_FILE, rundir.LOG, rundir.TRAIN_LOG, rundir.OUTPUT)


def resume_files(experiment_dir):
    """Paths of the files above, for every interrupted run under experiment_dir."""
    paths = []
    for name in sorted(os.listdir(experiment_dir)):
        run_dir = os.path.join(experiment_dir, name)
        if not os.path.isdir(run_dir) or rundir.is_finished(run_dir) \
                or not rundir.has_checkpoint(run_dir):
            continue
        names = [n for n in KEPT if os.path.exists(os.path.join(run_dir, n))]
        paths += [os.path.join(run_dir, n) for n in names + rundir.checkpoint_files(run_dir)]
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError('a checkpoint pointer names a missing file (is a run still '
                                'writing? stop the runner first): %s' % ', '.join(missing))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('experiment_dir', help='RUNS/EXPERIMENT, e.g. results/fashion/runs/'
                                               'fashion-compare')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.experiment_dir):
        parser.exit(2, '%s: error: %s is not a folder\n' % (parser.prog, args.experiment_dir))
    try:
        paths = resume_files(args.experiment_dir)
    except FileNotFoundError as e:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, e))
    for path in paths:
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
