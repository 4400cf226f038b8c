"""Put a finished family comparison into the repository: its results, its report and, for seed
0 of each family, the final model as kept weights (GluonCV's `pretrained=`).

    python -m dmrnet.tools.experiments.publish fashion-compare --runs-dir RUNS \
        --out results/fashion [--command 'make fashion-compare RUNS=...']

Writes OUT/results.jsonl (the experiment's, as collected, with run folders beneath OUT's
parent named relative to OUT), OUT/report.md + the report's figures
(the comparison table with Welch t-tests, Figure 7-style curves, error against parameters),
OUT/weights/<model>-symbol.json + -0000.params + -meta.json (seed 0's LAST epoch: nothing is
picked on the test set; the meta file records the run and its test error) and OUT/COMMAND.md
(what made them, when, and how long the runs took).
"""
import argparse
import datetime
import json
import os
import shutil
import sys

from dmrnet.tools.experiments import report
from dmrnet.tools.experiments.layout import RESULTS_FILE, RUNS_DIR
from dmrnet.tools.experiments.reference import paper_numbers
from dmrnet.utils.files import write_json, write_text

WEIGHTS_LIMIT = 2 << 20   # bytes a kept params file may take in the repository


def keep_weights(record, weights_dir):
    """Copy the final export of a run as weights_dir/<model>-*-0000 (epoch 0: the name
    get_model(pretrained=...) and train/evaluate.py look for); returns the prefix."""
    run_dir, model = record['run_dir'], record['model']
    with open(os.path.join(run_dir, 'last-meta.json')) as f:
        meta = json.load(f)
    source = os.path.join(run_dir, 'last-%04d.params' % meta['epoch'])
    if os.path.getsize(source) > WEIGHTS_LIMIT:
        raise ValueError('%s is %d bytes, more than the %d a kept weight file may take'
                         % (source, os.path.getsize(source), WEIGHTS_LIMIT))
    prefix = os.path.join(weights_dir, model)
    os.makedirs(weights_dir, exist_ok=True)
    shutil.copyfile(os.path.join(run_dir, 'last-symbol.json'), prefix + '-symbol.json')
    shutil.copyfile(source, prefix + '-0000.params')
    write_json(prefix + '-meta.json', dict(meta, trained_epochs=meta['epoch'], epoch=0,
                                           run=record['name'], seed=record['seed'],
                                           test_error=record['test_error']))
    return prefix


def portable(record, out):
    """The record with its run_dir relative to `out` when the run lies beneath out's parent
    (runs kept in the repository), so the published file names its runs on any checkout;
    report.load_results resolves such paths against the file's folder."""
    run_dir = os.path.abspath(record['run_dir'])
    home = os.path.dirname(os.path.abspath(out))
    if os.path.commonpath([run_dir, home]) == home:
        record = dict(record, run_dir=os.path.relpath(run_dir, os.path.abspath(out)))
    return record


def publish(experiment, runs_dir, out, command=None, dataset=None, at_a_time=None):
    """The files above; returns the records published. at_a_time: how many runs trained side
    by side, for the wall-clock estimate in COMMAND.md."""
    results = os.path.join(runs_dir, experiment, RESULTS_FILE)
    records = report.load_results([results], missing_ok=False)
    dataset = dataset or records[0]['dataset']
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, RESULTS_FILE), ''.join(
        json.dumps(portable(record, out), sort_keys=True) + '\n' for record in records))
    table, = report.build([dataset], records, paper_numbers(), out)
    write_text(os.path.join(out, 'report.md'), table.markdown())
    report.figure7(records, out, datasets=(dataset,))
    for record in records:
        if record['seed'] == 0:
            keep_weights(record, os.path.join(out, 'weights'))
    hours = sum(report_seconds(record['run_dir']) for record in records) / 3600
    # the logged seconds include epochs slowed by other work on the machine
    wall = ('; %d ran at a time, so about %.1f hours of wall-clock time'
            % (at_a_time, hours / at_a_time) if at_a_time and at_a_time > 1 else '')
    write_text(os.path.join(out, 'COMMAND.md'), (
        '# How these results were made\n\n'
        '    %s\n\n'
        'Published %s from %s: %d finished runs, %.1f hours of training summed over the runs%s.'
        '\n' % (command or 'python -m dmrnet.tools.experiments %s --runs-dir %s'
                % (experiment, runs_dir), datetime.date.today().isoformat(), results,
                len(records), hours, wall)))
    return records


def report_seconds(run_dir):
    """Training and evaluation seconds a run logged."""
    from dmrnet.train import rundir
    return sum(record.get('seconds', 0) for record in rundir.read_log(run_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('experiment', help='e.g. fashion-compare')
    parser.add_argument('--runs-dir', default=RUNS_DIR)
    parser.add_argument('--out', required=True, help='e.g. results/fashion')
    parser.add_argument('--dataset', help='default: the results\' dataset')
    parser.add_argument('--command', help='the command that made the runs, for COMMAND.md')
    parser.add_argument('--at-a-time', type=int, metavar='N',
                        help='runs that trained side by side (the runner\'s --jobs), for the '
                             'wall-clock time in COMMAND.md')
    args = parser.parse_args(argv)
    try:
        records = publish(args.experiment, args.runs_dir, args.out, args.command, args.dataset,
                          args.at_a_time)
    except (OSError, ValueError) as e:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, e))
    print('published %d runs to %s' % (len(records), args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
