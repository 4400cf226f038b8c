"""Our results next to the paper's: Tables 2-5 as "mean ± std (n runs)", the paper's number and
the difference; Figure 6 and Table 2 (error against parameters) as plots.

    python -m dmrnet.tools.experiments.report [table2 table3 table4 table5 figure6 digits fashion
                                               | all]
                           [--runs-dir runs] [--results FILE ...] [--reference JSON] [--out DIR]
    (the same: python tools/experiments/report.py ...)

Input: results files, JSON lines (one object per line) or one JSON list of objects, one object
per finished training run. By default RUNS/<experiment>/results.jsonl for every experiment
(written by the runner, python -m dmrnet.tools.experiments); `--results` reads the given files
instead. Fields:
  required: dataset (cifar10|cifar100|svhn|imagenet|digits|fashion), family (resnet|dilnet|dmrnet|
            identity|pathnet|rir|resnet_imagenet|dmrnet_imagenet), test_error (final test error,
            percent; top-1 for ImageNet)
  used when present: experiment, model (preset name, e.g. dmrnet_wide32), L (as in Table 2),
            width, share (Table 5), blocks (Figure 6), seed, params, top5 (percent),
            final_train_error (percent; Table 4's training error), final_train_loss,
            avg_path_length (Figure 6; else computed as L + 3 by dmrnet.tools.analysis.paths)
Records are routed to tables by their fields, not by file: table2 = families resnet/dilnet/dmrnet
with width 1, sharing, on cifar10/cifar100/svhn; digits = the same on the digits set (no paper
numbers); table3 = models dmrnet56, dmrnet_wide32, dmrnet_wide50, resnet110, rir18; table4 =
ImageNet; table5 = identity and non-sharing dmrnet runs plus dmrnet at L=48/96 (sharing);
figure6 = pathnet.

The paper's numbers come from dmrnet.paper (paper/numbers.json); `--reference` overrides. Std
is the sample standard deviation (n-1), 0 for a single run. Difference = our mean - the paper's.

Output (--out, default RUNS/report): per table NAME.md (the printed table) and NAME.csv (long
format: table, dataset, row, column, mean, std, n, paper, paper_std, diff), figure6.png and
table2_params_DATASET.png; error_vs_L_DATASET.png for a family comparison of our own measured at
two depths or more (ours beside the paper's CIFAR-10 Table 2 at the same L); and, for runs with a
run_dir, Figure 7-style curves (training loss and test error against epochs, drawn by
train/curves.py) at every depth: figure7_DATASET.png at L=54 (the paper's Figure 7) or, without
it, at the smallest L, figure7_DATASET_L<L>.png at the others, each with a _seeds variant where a
family has several seeds.

Importing this module loads neither MXNet nor the model zoo: the tables need neither, and the
Figure 7 curves, which read run folders, import them only when drawn.
"""
import argparse
import logging
import os
import sys

from dmrnet.paper import TABLE2_DATASETS
from dmrnet.paper.reference import paper_numbers
from dmrnet.tools.experiments import figures, tables
from dmrnet.tools.experiments.comparable import batchnorm_note, recipe_note
from dmrnet.tools.experiments.layout import EXPERIMENTS, RESULTS_FILE, RUNS_DIR
from dmrnet.tools.experiments.results import load_results, with_published
from dmrnet.tools.experiments.tables import OWN_DATASETS

log = logging.getLogger('dmrnet.report')

TABLES = ('table2', 'table3', 'table4', 'table5', 'figure6') + OWN_DATASETS

# The experiment (dmrnet.tools.experiments) whose runs make each table: a table reads only
# those, so that smoke runs of one experiment never pool with another's on the same data.
TABLE_EXPERIMENT = {'table2': 'table2', 'table3': 'table3', 'table4': 'imagenet-compare',
                    'table5': 'table5', 'figure6': 'figure6', 'digits': 'digits-compare',
                    'fashion': 'fashion-compare', 'fashion_val': 'fashion-compare'}


def of_table(records, table):
    """The records a table reads: its experiment's (records that name no experiment, from
    files given by hand, go to every table their fields fit)."""
    experiment = TABLE_EXPERIMENT.get(table)
    return [record for record in records
            if record.get('experiment') in (None, experiment) or experiment is None]


def build(which, records, numbers, out_dir):
    """The Table objects for the requested tables, their plots drawn into out_dir."""
    def mine(table):
        return of_table(records, table)

    def table2_datasets():
        extra = sorted({r['dataset'] for r in mine('table2')} - set(TABLE2_DATASETS))
        return TABLE2_DATASETS + tuple(extra)

    def figure6():
        figures.figure6(mine('figure6'), out_dir)
        return tables.figure6(mine('figure6'))
    builders = {'table2': lambda: tables.table2(mine('table2'), numbers,
                                                datasets=table2_datasets()),
                'table3': lambda: tables.table3(mine('table3'), numbers),
                'table4': lambda: tables.table4(mine('table4'), numbers),
                'table5': lambda: tables.table5(mine('table5'), numbers),
                'figure6': figure6}
    builders.update({dataset: (lambda dataset=dataset: tables.comparison_table(mine(dataset),
                                                                               dataset))
                     for dataset in OWN_DATASETS})
    built = [builders[name]() for name in which if name in builders]
    deviation = batchnorm_note(records)
    for name, table in zip([name for name in which if name in builders], built):
        notes = [deviation] if table.with_paper and deviation else []
        notes += [note for note in [recipe_note(mine(name))] if note]
        if notes:
            table.note = '; '.join(([table.note] if table.note else []) + notes)
    if 'table2' in which or set(OWN_DATASETS) & set(which):
        figures.table2_params_plots(records, numbers, out_dir)
    figures.error_vs_L_plots(records, numbers, out_dir,
                             [name for name in which if name in OWN_DATASETS])
    return built


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False,
                                     description=' '.join(__doc__.split('\n\n')[0].split()),
                                     prog='python -m dmrnet.tools.experiments.report',
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('tables', nargs='*', metavar='TABLE',
                        help='any of %s, or all (default)' % ', '.join(TABLES))
    parser.add_argument('--runs-dir', default=RUNS_DIR,
                        help='the runner\'s folder: RUNS/EXPERIMENT/results.jsonl are read '
                             '(default: runs/ of the repository)')
    parser.add_argument('--results', nargs='+',
                        help='results files (default: RUNS/*/%s and the published '
                             'results/*/%s of the repository)' % (RESULTS_FILE, RESULTS_FILE))
    parser.add_argument('--reference', help="the paper's numbers (default: dmrnet.paper's "
                                            'numbers.json)')
    parser.add_argument('--out', help='output folder (default RUNS/report)')
    parser.add_argument('--show-empty', action='store_true',
                        help='print tables without any result of ours too')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    unknown = sorted(set(args.tables) - set(TABLES + ('all',)))
    if unknown:
        parser.error('unknown table(s) %s: use %s or all'
                     % (', '.join(unknown), ', '.join(TABLES)))
    explicit = bool(args.tables) and 'all' not in args.tables
    which = args.tables if explicit else list(TABLES)
    paths = args.results or [os.path.join(args.runs_dir, experiment, RESULTS_FILE)
                             for experiment in EXPERIMENTS]
    try:
        records = load_results(paths, missing_ok=not args.results)
        if not args.results:
            records = with_published(records)
        numbers = paper_numbers(args.reference)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    log.info('%d result records from %d files', len(records), sum(map(os.path.exists, paths)))
    out_dir = args.out or os.path.join(args.runs_dir, 'report')
    for table in build(which, records, numbers, out_dir):
        table.write(out_dir)
        if table.has_results() or explicit or args.show_empty:
            print(table.markdown())
        else:
            log.info('%s: no results yet (written to %s anyway)', table.name, out_dir)
    if 'table2' in which or set(OWN_DATASETS) & set(which):
        figures.figure7(records, out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
