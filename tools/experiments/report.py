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

The paper's numbers come from paper-numbers.json beside this file; `--reference` overrides. Std
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
import csv
import json
import logging
import math
import os
import sys

from dmrnet import paper
from dmrnet.tools.analysis.params import AUTHORS_TABLE2
from dmrnet.tools.analysis.paths import pathnet_mean
from dmrnet.tools.experiments.layout import EXPERIMENTS, REPOSITORY, RESULTS_FILE, RUNS_DIR
from dmrnet.tools.experiments.reference import paper_numbers, table2_by_L
from dmrnet.utils.files import atomic_path, save_figure, write_text

log = logging.getLogger('dmrnet.report')

# Family comparisons on real data the paper did not use (each its own table, no paper numbers).
OWN_DATASETS = ('digits', 'fashion', 'fashion_val')
TABLES = ('table2', 'table3', 'table4', 'table5', 'figure6') + OWN_DATASETS
# The datasets of Tables 2 and 3, the ones with paper numbers to compare with.
PAPER_DATASETS = ('cifar10', 'cifar100', 'svhn')
# Printed names: the families' (dmrnet.paper), the datasets' and Table 5's mapping column.
LABELS = dict(paper.LABELS, merge_and_run='Merge-and-run', cifar10='CIFAR-10',
              cifar100='CIFAR-100', svhn='SVHN', digits='digits', imagenet='ImageNet',
              fashion='Fashion-MNIST', fashion_val='Fashion-MNIST validation split')


# ---------------------------------------------------------------------------------------------
# Input.

def _locate_run_dir(record, results_path):
    """Where a record's run folder is now. Its run_dir as written wins when it exists (the
    runner's, absolute or relative to where it ran); otherwise, beside the results file: a
    published file names runs relative to itself (results/fashion/results.jsonl names runs/...),
    and a runner's results.jsonl sits in the folder that holds its runs, so runs kept in a
    repository are found from any working folder and in a checkout at any path."""
    run_dir = record.get('run_dir') if isinstance(record, dict) else None
    if not run_dir or os.path.isdir(run_dir):
        return
    here = os.path.dirname(os.path.abspath(results_path))
    for beside in ([] if os.path.isabs(run_dir) else [os.path.join(here, run_dir)]) \
            + [os.path.join(here, os.path.basename(os.path.normpath(run_dir)))]:
        if os.path.isdir(beside):
            record['run_dir'] = os.path.normpath(beside)
            return


def load_results(paths, missing_ok=True):
    """Records from JSON-lines or JSON-list files. Missing files are skipped when missing_ok (the
    default locations of experiments not run yet), an error otherwise (files the user named)."""
    records = []
    for path in paths:
        if not os.path.exists(path):
            if missing_ok:
                continue
            raise FileNotFoundError('results file %s does not exist' % path)
        with open(path) as f:
            text = f.read()
        try:
            if text.lstrip().startswith('['):
                found = json.loads(text)
            else:
                found = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise ValueError('%s: not JSON lines or a JSON list (%s)' % (path, e)) from None
        for record in found:
            _locate_run_dir(record, path)
        records.extend(found)
    for record in records:
        for field in ('dataset', 'family', 'test_error'):
            if field not in record:
                raise ValueError('result record without %r: %r' % (field, record))
    return records


# ---------------------------------------------------------------------------------------------
# Statistics and formatting.

def stats(values):
    """(mean, sample std, n) of the non-missing values; (None, None, 0) if none."""
    present = [float(value) for value in values if value is not None]
    n = len(present)
    if not n:
        return None, None, 0
    mean = sum(present) / n
    std = math.sqrt(sum((value - mean) ** 2 for value in present) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def fmt_ours(mean, std, n, digits=2):
    if not n:
        return '-'
    return '%.*f \u00b1 %.*f (%d)' % (digits, mean, digits, std, n)


def fmt_paper(paper_mean, paper_std=None):
    if paper_mean is None:
        return '-'
    if paper_std is None:
        return '%.2f' % paper_mean
    return '%.2f \u00b1 %.2f' % (paper_mean, paper_std)


def fmt_diff(mean, paper_mean):
    return '-' if mean is None or paper_mean is None else '%+.2f' % (mean - paper_mean)


class Table:
    """Cells keyed by (row, column) with ours/paper, rendered as a pivot (Markdown) or long CSV."""

    def __init__(self, name, title, row_names, col_names, note='', with_paper=True):
        # with_paper=False: a table with nothing to compare against (digits) shows only ours
        self.name, self.title, self.note, self.with_paper = name, title, note, with_paper
        self.row_names, self.col_names = row_names, col_names
        self.cells = []   # dicts: dataset, row, column, mean, std, n, paper, paper_std
        self.rows, self.cols = [], []

    def add(self, row, col, values, paper_mean=None, paper_std=None, dataset='', digits=2):
        mean, std, n = stats(values)
        if row not in self.rows:
            self.rows.append(row)
        if col not in self.cols:
            self.cols.append(col)
        self.cells.append(dict(dataset=dataset, row=row, column=col, mean=mean, std=std, n=n,
                               paper=paper_mean, paper_std=paper_std, digits=digits,
                               diff=None if mean is None or paper_mean is None
                               else mean - paper_mean))

    def cell(self, row, col):
        for cell in self.cells:
            if cell['row'] == row and cell['column'] == col:
                return cell
        return None

    def has_results(self):
        return any(cell['n'] for cell in self.cells)

    def markdown(self):
        head = list(self.row_names)
        for col in self.cols:
            parts = col if isinstance(col, tuple) else (col,)
            label = ' '.join(LABELS.get(part, part) for part in parts)
            head += ['%s ours' % label, 'paper', '\u0394'] if self.with_paper else [label]
        lines = ['### %s' % self.title, '']
        if self.note:
            lines += [self.note, '']
        lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for row in self.rows:
            parts = row if isinstance(row, tuple) else (row,)
            texts = [LABELS.get(str(part), str(part)) for part in parts]
            for col in self.cols:
                cell = self.cell(row, col)
                if cell is None:
                    texts += ['', '', ''] if self.with_paper else ['']
                elif self.with_paper:
                    texts += [fmt_ours(cell['mean'], cell['std'], cell['n'], cell['digits']),
                              fmt_paper(cell['paper'], cell['paper_std']),
                              fmt_diff(cell['mean'], cell['paper'])]
                else:
                    texts.append(fmt_ours(cell['mean'], cell['std'], cell['n'], cell['digits']))
            lines.append('| ' + ' | '.join(texts) + ' |')
        return '\n'.join(lines) + '\n'

    def write(self, out_dir):
        write_text(os.path.join(out_dir, self.name + '.md'), self.markdown())
        with atomic_path(os.path.join(out_dir, self.name + '.csv')) as tmp, \
                open(tmp, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['table', 'dataset', 'row', 'column', 'mean', 'std', 'n', 'paper',
                             'paper_std', 'diff'])
            for cell in self.cells:
                writer.writerow([self.name, cell['dataset'], _key(cell['row']),
                                 _key(cell['column'])] +
                                [_csv_value(cell[field]) for field in (
                                    'mean', 'std', 'n', 'paper', 'paper_std', 'diff')])


def _key(key):
    return '/'.join(map(str, key)) if isinstance(key, tuple) else key


def _csv_value(value):
    if value is None:
        return ''
    return round(value, 4) if isinstance(value, float) else value


def _select(records, **conditions):
    """Records whose fields match; a condition value may be a tuple of accepted values. A missing
    width counts as 1 and a missing share as True (the defaults of every network)."""
    defaults = {'width': 1, 'share': True}
    selected = []
    for record in records:
        for field, wanted in conditions.items():
            got = record.get(field, defaults.get(field))
            if got is None and field in defaults:
                got = defaults[field]
            if not (got in wanted if isinstance(wanted, tuple) else got == wanted):
                break
        else:
            selected.append(record)
    return selected


def _errors(records, **conditions):
    return [record['test_error'] for record in _select(records, **conditions)]


# ---------------------------------------------------------------------------------------------
# The tables.

def table2(records, numbers, datasets=PAPER_DATASETS, name='table2',
           title='Table 2: test error (%), ResNet vs DILNet vs DMRNet'):
    by_L = table2_by_L(numbers)
    table = Table(name, title, ['dataset', 'L'], [], note='ours: mean \u00b1 std (runs); paper: '
                  'mean \u00b1 std of 5 runs; \u0394 = ours - paper')
    for dataset in datasets:
        Ls = {record['L'] for record in _select(records, dataset=dataset, family=paper.FAMILIES,
                                                width=1, share=True)
              if record.get('L') is not None}
        if dataset in PAPER_DATASETS:
            Ls |= set(by_L)
        for L in sorted(Ls):
            for family in paper.FAMILIES:
                printed = by_L.get(L, {}).get(dataset, {}).get(family)
                errors = _errors(records, dataset=dataset, family=family, L=L, width=1,
                                 share=True)
                table.add((dataset, L), family, errors, printed[0] if printed else None,
                          printed[1] if printed else None, dataset=dataset)
    return table


class ComparisonTable(Table):
    """A family comparison on data the paper did not use: the pivot of Table, then a two-sided
    Welch t-test between each pair of families' test errors at each L."""

    def __init__(self, dataset, records):
        super().__init__(dataset, '%s: ResNet vs DILNet vs DMRNet at equal L'
                         % LABELS.get(dataset, dataset), ['dataset', 'L'], [],
                         note='final test error (%%), final training loss and parameters, mean '
                              '\u00b1 std (runs); the paper has no %s numbers' % dataset,
                         with_paper=False)
        self.tests = []   # (L, family a, family b, mean a - mean b, t, p)
        for L in sorted({record['L'] for record in records if record.get('L') is not None}):
            errors = {family: _errors(records, family=family, L=L) for family in paper.FAMILIES}
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'test error'), errors[family], dataset=dataset)
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'train loss'),
                         [record.get('final_train_loss')
                          for record in _select(records, family=family, L=L)],
                         dataset=dataset, digits=4)
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'params'),
                         [record.get('params') for record in _select(records, family=family,
                                                                     L=L)],
                         dataset=dataset, digits=0)
            for a, b in ((0, 1), (0, 2), (1, 2)):
                a, b = paper.FAMILIES[a], paper.FAMILIES[b]
                test = welch(errors[a], errors[b])
                if test is not None:
                    self.tests.append((L, a, b) + test)

    def markdown(self):
        text = super().markdown()
        if not self.tests:
            return text
        lines = ['', "Two-sided Welch t-test on the test errors (unequal variances):", '',
                 '| L | pair | difference of means | t | p |', '|---|---|---|---|---|']
        for L, a, b, diff, t, p in self.tests:
            lines.append('| %d | %s - %s | %+.3f | %.2f | %.3g |'
                         % (L, LABELS[a], LABELS[b], diff, t, p))
        return text + '\n'.join(lines) + '\n'


def welch(a, b):
    """(mean a - mean b, t, two-sided p) of Welch's t-test, or None with fewer than 2 runs a
    side or no spread at all."""
    a = [float(v) for v in a if v is not None]
    b = [float(v) for v in b if v is not None]
    if len(a) < 2 or len(b) < 2 or (stats(a)[1] == 0 and stats(b)[1] == 0):
        return None
    from scipy.stats import ttest_ind
    result = ttest_ind(a, b, equal_var=False)
    return stats(a)[0] - stats(b)[0], float(result.statistic), float(result.pvalue)


def comparison_table(records, dataset):
    return ComparisonTable(dataset, _select(records, dataset=dataset, family=paper.FAMILIES,
                                            width=1, share=True))


def table3(records, numbers):
    table = Table('table3', 'Table 3: DMRNet, DMRNet-Wide and baselines, test error (%)',
                  ['model'], [], note='params: ours (from the runs) / paper')
    rows = {}
    for row in numbers['table3_state_of_the_art']:
        rows[paper.TABLE3_MODELS.get((row['model'], row['depth']), row['model'])] = row
    for model, row in rows.items():
        params = [record.get('params') for record in _select(records, model=model)
                  if record.get('params')]
        ours = '%.2fM' % (params[0] / 1e6) if params else '-'
        label = '%s (%s / %s)' % (model, ours, row['params'])
        for dataset in PAPER_DATASETS:
            table.add(label, dataset, _errors(records, model=model, dataset=dataset),
                      row.get(dataset), dataset=dataset)
    return table


def table4(records, numbers):
    table = Table('table4', 'Table 4: ImageNet, single-crop validation and training errors (%)',
                  ['model'], [])
    printed = numbers['table4_imagenet']
    for family, key, label in (('resnet_imagenet', 'resnet101', 'ResNet-101'),
                               ('dmrnet_imagenet', 'dmrnet44', 'DMRNet-44')):
        runs = _select(records, family=family, dataset='imagenet')
        row = printed[key]
        table.add(label, 'top-1 val', [record['test_error'] for record in runs],
                  row['top1_val'], dataset='imagenet')
        table.add(label, 'top-5 val', [record.get('top5') for record in runs], row['top5_val'],
                  dataset='imagenet')
        table.add(label, 'top-1 train', [record.get('final_train_error') for record in runs],
                  row['top1_train'], dataset='imagenet')
    return table


def table5(records, numbers):
    table = Table('table5', 'Table 5: identity vs merge-and-run mappings, test error (%)',
                  ['sharing', 'L'], [], note='sharing = one first conv and one FC for both streams')
    for row in numbers['table5_identity_vs_merge_and_run']:
        share = row['sharing']
        for dataset in ('cifar10', 'cifar100'):
            for family, key in (('identity', 'identity'), ('dmrnet', 'merge_and_run')):
                table.add(('w/ sharing' if share else 'w/o sharing', row['L']), (dataset, key),
                          _errors(records, family=family, dataset=dataset, L=row['L'],
                                  share=share, width=1),
                          row[dataset][key], dataset=dataset)
    return table


def avg_path_length(record):
    if record.get('avg_path_length') is not None:
        return float(record['avg_path_length'])
    return float(pathnet_mean(record['L'], record.get('blocks') or 3))


def figure6(records, out_dir):
    """Test error against the average path length (L + 3), 3 vs 6 blocks (Section 4.3)."""
    pathnets = _select(records, family='pathnet')
    table = Table('figure6', 'Figure 6: test error (%) against the average path length (L + 3)',
                  ['dataset', 'blocks', 'L', 'avg length'], ['test error'],
                  note='the paper gives Figure 6 only as a plot: no numbers to compare')
    curves = {}
    for dataset, blocks, L in sorted({(record['dataset'], record.get('blocks') or 3, record['L'])
                                      for record in pathnets}):
        selected = _select(pathnets, dataset=dataset, blocks=blocks, L=L)
        length = avg_path_length(selected[0])
        errors = [record['test_error'] for record in selected]
        table.add((dataset, blocks, L, '%g' % length), 'test error', errors, dataset=dataset)
        mean, std, _ = stats(errors)
        curves.setdefault((dataset, blocks), []).append((length, mean, std))
    if curves:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for (dataset, blocks), points in sorted(curves.items()):
            lengths, means, stds = zip(*sorted(points))
            ax.errorbar(lengths, means, yerr=stds, marker='o', capsize=3,
                        label='%d blocks (%s)' % (blocks, LABELS.get(dataset, dataset)))
        ax.set_xlabel('average path length (L + 3)')
        ax.set_ylabel('test error (%)')
        ax.set_title('Figure 6')
        ax.legend()
        _save(fig, os.path.join(out_dir, 'figure6.png'))
    return table


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.tight_layout()
    save_figure(fig, path)
    log.info('wrote %s', path)


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
    """The Table objects (and plots) for the requested tables."""
    def mine(table):
        return of_table(records, table)

    def table2_datasets():
        extra = sorted({r['dataset'] for r in mine('table2')} - set(PAPER_DATASETS))
        return PAPER_DATASETS + tuple(extra)
    builders = {'table2': lambda: table2(mine('table2'), numbers, datasets=table2_datasets()),
                'table3': lambda: table3(mine('table3'), numbers),
                'table4': lambda: table4(mine('table4'), numbers),
                'table5': lambda: table5(mine('table5'), numbers),
                'figure6': lambda: figure6(mine('figure6'), out_dir)}
    builders.update({dataset: (lambda dataset=dataset: comparison_table(mine(dataset), dataset))
                     for dataset in OWN_DATASETS})
    tables = [builders[name]() for name in which if name in builders]
    deviation = batchnorm_note(records)
    for name, table in zip([name for name in which if name in builders], tables):
        notes = [deviation] if table.with_paper and deviation else []
        notes += [note for note in [recipe_note(mine(name))] if note]
        if notes:
            table.note = '; '.join(([table.note] if table.note else []) + notes)
    if 'table2' in which or set(OWN_DATASETS) & set(which):
        table2_params_plots(records, numbers, out_dir)
    error_vs_L_plots(records, numbers, out_dir, [name for name in which if name in OWN_DATASETS])
    return tables


def recipe_note(records):
    """A sentence naming the runs of a table trained with another recipe than most of its
    runs (per data set; the runner refuses to make such a mix, but results files can be
    combined by hand), or None. Runs recorded before recipes were recorded are not judged."""
    import collections
    marked = []
    for dataset in sorted({record.get('dataset') for record in records}, key=str):
        judged = [record for record in records
                  if record.get('dataset') == dataset and record.get('recipe')]
        if len(judged) < 2:
            continue
        key = (lambda record: json.dumps(record['recipe'], sort_keys=True))
        usual = json.loads(collections.Counter(map(key, judged)).most_common(1)[0][0])
        for record in judged:
            differ = ['%s %s (others %s)' % (field, record['recipe'].get(field), value)
                      for field, value in sorted(usual.items())
                      if record['recipe'].get(field) != value]
            if differ:
                marked.append('%s: %s' % (record.get('name') or record.get('run_dir'),
                                          ', '.join(differ)))
    if not marked:
        return None
    return ('NOT COMPARABLE: %d run(s) trained with another recipe than the rest of this table '
            '(%s)' % (len(marked), '; '.join(marked)))


# The authors' BatchNorm batch on CIFAR and SVHN (2 GPUs x 32 images).
AUTHORS_IMAGES_PER_DEVICE = 32


def batchnorm_note(records):
    """A sentence for the tables compared with the paper when runs on its datasets normalised
    BatchNorm over another number of images per device than the authors' 32 (one GPU with the
    whole batch of 64, say): the statistics, and so the results, are not quite theirs."""
    batches = {}
    for record in records:
        batch = record.get('batch_per_device')
        if record.get('dataset') in PAPER_DATASETS and batch not in (None,
                                                                     AUTHORS_IMAGES_PER_DEVICE):
            batches[batch] = batches.get(batch, 0) + 1
    if not batches:
        return ''
    return ('BatchNorm batch deviates from the authors\' %d images per device in %s'
            % (AUTHORS_IMAGES_PER_DEVICE, ', '.join('%d run(s) with %d' % (n, batch)
                                                    for batch, n in sorted(batches.items()))))


def table2_params_plots(records, numbers, out_dir):
    """Table 2 as error against parameters, one plot per dataset: ours (solid, error bars, at
    our runs' parameter counts) and the paper's means (dashed, at the authors' exact counts)."""
    paper_rows = numbers['table2_resnet_dilnet_dmrnet']
    written = []
    for dataset in PAPER_DATASETS + OWN_DATASETS:
        runs = _select(records, dataset=dataset, family=paper.FAMILIES, width=1, share=True)
        if not runs:
            continue
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for column, family in enumerate(paper.FAMILIES):
            points = []
            for L in sorted({record['L'] for record in runs if record['family'] == family}):
                selected = _select(runs, family=family, L=L)
                params = [record['params'] for record in selected if record.get('params')]
                count = params[0] if params else AUTHORS_TABLE2.get(L, (None,) * 3)[column]
                if count is None:
                    continue
                mean, std, _ = stats([record['test_error'] for record in selected])
                points.append((count / 1e6, mean, std))
            color = 'C%d' % column   # one colour per family, ours and the paper's alike
            if points:
                counts, means, stds = zip(*points)
                ax.errorbar(counts, means, yerr=stds, marker='o', capsize=3, color=color,
                            label='%s (ours)' % LABELS[family])
            if dataset in PAPER_DATASETS:
                ax.plot([AUTHORS_TABLE2[row['L']][column] / 1e6 for row in paper_rows],
                        [row[dataset][family][0] for row in paper_rows], '--', color=color,
                        alpha=0.7, label='%s (paper)' % LABELS[family])
        ax.set_xlabel('parameters (M)')
        ax.set_ylabel('test error (%)')
        ax.set_title('Table 2, %s: error against parameters' % LABELS.get(dataset, dataset))
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, 'table2_params_%s.png' % dataset)
        _save(fig, path)
        written.append(path)
    return written


# The paper's data set that error_vs_L_plots sets our own comparisons beside: Table 2's CIFAR-10
# column, the one the paper discusses.
DEPTH_REFERENCE = 'cifar10'


def error_vs_L_plots(records, numbers, out_dir, datasets=OWN_DATASETS):
    """Test error against L for each family comparison of our own measured at two depths or
    more, as error_vs_L_<dataset>.png. Left, ours: the mean over seeds and a bar from the lowest
    to the highest seed. Right, the paper's Table 2 on CIFAR-10 at the same L: mean and std of
    its 5 runs. Two panels with their own error axes, because the data sets differ: what can be
    compared is the order of the families and how it changes with L, not the error levels."""
    by_L = table2_by_L(numbers)
    written = []
    for dataset in datasets:
        runs = _select(records, dataset=dataset, family=paper.FAMILIES, width=1, share=True)
        depths = sorted({record['L'] for record in runs if record.get('L') is not None})
        if len(depths) < 2:
            continue
        plt = _pyplot()
        fig, (ours, theirs) = plt.subplots(1, 2, figsize=(10, 4.4))
        measured = error_by_L(runs)
        # the families side by side at each L, so that their bars do not hide each other
        step = 0.015 * (depths[-1] - depths[0])
        for column, family in enumerate(paper.FAMILIES):
            color, shift = 'C%d' % column, (column - 1) * step
            points = measured[family]
            if points:
                Ls, means, lows, highs, counts = zip(*points)
                ours.errorbar([L + shift for L in Ls], means, marker='o', capsize=3, color=color,
                              yerr=[[mean - low for mean, low in zip(means, lows)],
                                    [high - mean for mean, high in zip(means, highs)]],
                              label='%s (seeds: %s)' % (LABELS[family],
                                                        ', '.join(map(str, counts))))
            printed = [(L, by_L[L][DEPTH_REFERENCE][family]) for L in depths if L in by_L]
            if printed:
                theirs.errorbar([L + shift for L, _ in printed], [mean for _, (mean, _) in printed],
                                yerr=[std for _, (_, std) in printed], marker='s', ls='--',
                                capsize=3, color=color, label=LABELS[family])
        ours.set_title('%s, ours: mean, bar from lowest to highest seed'
                       % LABELS.get(dataset, dataset), fontsize=9)
        theirs.set_title('%s, the paper (Table 2): mean \u00b1 std of 5 runs'
                         % LABELS[DEPTH_REFERENCE], fontsize=9)
        if not any(L in by_L for L in depths):
            theirs.text(0.5, 0.5, 'Table 2 has none of these L', ha='center',
                        transform=theirs.transAxes)
        for ax in (ours, theirs):
            ax.set_xticks(depths)
            ax.set_xlabel('L (ResNet-(2L+2), DILNet-(L+2), DMRNet-(L+2))')
            ax.set_ylabel('%s test error (%%)' % LABELS.get(
                dataset if ax is ours else DEPTH_REFERENCE, dataset))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.suptitle('Test error against L on two different data sets: compare the order of the '
                     'families, not the levels', fontsize=10)
        path = os.path.join(out_dir, 'error_vs_L_%s.png' % dataset)
        _save(fig, path)
        written.append(path)
    return written


def error_by_L(records):
    """{family: [(L, mean, lowest, highest, runs), ...]} of the final test errors, by L."""
    points = {}
    for family in paper.FAMILIES:
        points[family] = []
        for L in sorted({record['L'] for record in _select(records, family=family)
                         if record.get('L') is not None}):
            errors = _errors(records, family=family, L=L)
            mean, _, n = stats(errors)
            points[family].append((L, mean, min(errors), max(errors), n))
    return points


# The depth of the paper's Figure 7 (ResNet-110 against DMRNet-56).
FIGURE7_L = 54


def figure7_stem(dataset, L, depths):
    """The file name, without .png, of the Figure 7-style curves at depth L of `depths`:
    figure7_<dataset> at the paper's Figure 7 depth where it was measured, else at the smallest
    depth (the one a comparison starts with, so that its figures keep their names when deeper
    runs are added), figure7_<dataset>_L<L> at the others."""
    headline = FIGURE7_L if FIGURE7_L in depths else min(depths)
    return 'figure7_%s' % dataset + ('' if L == headline else '_L%d' % L)


def figure7(records, out_dir, datasets=PAPER_DATASETS + OWN_DATASETS):
    """Figure 7-style curves (training loss and test error against epochs) by train/curves.py,
    per dataset at every L where ResNet and DMRNet both have runs with a log: the families' runs
    of the lowest seed that has both, and, where a family has several seeds at that L, every
    seed as mean and range (<stem>_seeds.png). File names: figure7_stem. Returns the paths."""
    try:
        # here, not at the top: they load MXNet, which the tables do without
        from dmrnet.train import rundir
        from dmrnet.train.curves import plot_runs, plot_seeds
    except ImportError:
        log.info('train/curves.py not importable: no Figure 7 curves')
        return []
    written = []
    for dataset in datasets:
        runs = [record for record in _select(records, dataset=dataset, family=paper.FAMILIES,
                                             width=1, share=True)
                if record.get('run_dir') and rundir.read_log(record['run_dir'])]
        depths = sorted({record['L'] for record in runs if record['family'] == 'resnet'} &
                        {record['L'] for record in runs if record['family'] == 'dmrnet'})
        for L in depths:
            at_L = _select(runs, L=L)
            stem = os.path.join(out_dir, figure7_stem(dataset, L, depths))
            title = '%s, L = %d' % (LABELS.get(dataset, dataset), L)
            written += _figure7_one_seed(at_L, stem + '.png', title, plot_runs)
            written += _figure7_seeds(at_L, stem + '_seeds.png', title, plot_seeds)
    return written


def _figure7_one_seed(runs, path, title, plot_runs):
    """The families' runs of the lowest seed that has ResNet and DMRNet, overlaid."""
    for seed in sorted({record.get('seed') for record in runs}, key=str):
        chosen = [(LABELS[family], _select(runs, family=family, seed=seed))
                  for family in paper.FAMILIES]
        chosen = [(label, selected[0]['run_dir']) for label, selected in chosen if selected]
        if {LABELS['resnet'], LABELS['dmrnet']} <= {label for label, _ in chosen}:
            plot_runs([run_dir for _, run_dir in chosen], path,
                      labels=[label for label, _ in chosen], title='%s, seed %s' % (title, seed))
            log.info('wrote %s', path)
            return [path]
    return []


def _figure7_seeds(runs, path, title, plot_seeds):
    """Every seed of each family as mean and range, where a family has more than one."""
    groups = [(LABELS[family], [record['run_dir'] for record in _select(runs, family=family)])
              for family in paper.FAMILIES]
    groups = [(label, run_dirs) for label, run_dirs in groups if run_dirs]
    if not any(len(run_dirs) > 1 for _, run_dirs in groups):
        return []
    try:
        plot_seeds(groups, path, title=title)
    except ValueError as e:   # seeds trained for different epochs: no common curve
        log.info('no seeds figure %s: %s', path, e)
        return []
    log.info('wrote %s', path)
    return [path]


def published_results():
    """The results files kept in the repository (results/<dataset>/results.jsonl)."""
    import glob
    return sorted(glob.glob(os.path.join(REPOSITORY, 'results', '*', RESULTS_FILE)))


def with_published(records):
    """`records` and, for each experiment they have no run of, the repository's published
    results of it: the report then covers what is committed, while an experiment run under
    RUNS (the published one resumed there, or a smoke run of it) is never pooled with them."""
    present = {record.get('experiment') for record in records}
    extra = [record for record in load_results(published_results())
             if record.get('experiment') not in present]
    if extra:
        log.info('%d published results of %s (results/ of the repository)', len(extra),
                 ', '.join(sorted({record.get('experiment') for record in extra})))
    return records + extra


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
    parser.add_argument('--reference', help="the paper's numbers (default: paper-numbers.json "
                                            'beside this file)')
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
        figure7(records, out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
