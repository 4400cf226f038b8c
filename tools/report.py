"""Our results next to the paper's: Tables 2-5 as "mean ± std (n runs)", the paper's number and
the difference; Figure 6 and Table 2 (error against parameters) as plots.

    python tools/report.py [table2 table3 table4 table5 figure6 digits | all]
                           [--runs-dir runs] [--results FILE ...] [--reference JSON] [--out DIR]

Input: results files, JSON lines (one object per line) or one JSON list of objects, one object
per finished training run. By default RUNS/<experiment>/results.jsonl for every experiment
(written by tools/experiments.py); `--results` reads the given files instead. Fields:
  required: dataset (cifar10|cifar100|svhn|imagenet|digits), family (resnet|dilnet|dmrnet|
            identity|pathnet|rir|resnet_imagenet|dmrnet_imagenet), test_error (final test error,
            percent; top-1 for ImageNet)
  used when present: experiment, model (preset name, e.g. dmrnet_wide32), L (as in Table 2),
            width, share (Table 5), blocks (Figure 6), seed, params, top5 (percent),
            final_train_error (percent; Table 4's training error), final_train_loss,
            avg_path_length (Figure 6; else computed as L + 3 by tools/paths.py)
Records are routed to tables by their fields, not by file: table2 = families resnet/dilnet/dmrnet
with width 1, sharing, on cifar10/cifar100/svhn; digits = the same on the digits set (no paper
numbers); table3 = models dmrnet56, dmrnet_wide32, dmrnet_wide50, resnet110, rir18; table4 =
ImageNet; table5 = identity and non-sharing dmrnet runs plus dmrnet at L=48/96 (sharing);
figure6 = pathnet.

The paper's numbers come from reference-numbers.json: by default <repo>/../shared/paper/, else the
copy in tools/reference/paper-numbers.json; `--reference` overrides. Std is the sample standard
deviation (n-1), 0 for a single run. Difference = our mean - the paper's.

Output (--out, default RUNS/report): per table NAME.md (the printed table) and NAME.csv (long
format: table, dataset, row, column, mean, std, n, paper, paper_std, diff), figure6.png and
table2_params_DATASET.png, and figure7_DATASET.png (training loss and test error against epochs
of the L=54 networks, drawn by the training engine's train/curves.py) for runs with a run_dir.
"""
import argparse
import csv
import json
import logging
import math
import os
import sys

from dmrnet.symbols.atomic import atomic_path, save_figure

log = logging.getLogger('dmrnet.report')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_CANDIDATES = (
    os.path.join(os.path.dirname(REPO), 'shared', 'paper', 'reference-numbers.json'),
    os.path.join(REPO, 'tools', 'reference', 'paper-numbers.json'),
)
TABLES = ('table2', 'table3', 'table4', 'table5', 'figure6', 'digits')
EXPERIMENT_DIRS = ('table2', 'table3', 'table5', 'figure6', 'imagenet-compare', 'digits-compare')
FAMILIES = ('resnet', 'dilnet', 'dmrnet')
LABELS = {'resnet': 'ResNet', 'dilnet': 'DILNet', 'dmrnet': 'DMRNet', 'identity': 'Identity',
          'merge_and_run': 'Merge-and-run', 'cifar10': 'CIFAR-10', 'cifar100': 'CIFAR-100',
          'svhn': 'SVHN', 'digits': 'digits', 'imagenet': 'ImageNet'}
TABLE3_MODELS = {('dmrnet', 56): 'dmrnet56', ('dmrnet_wide', 32): 'dmrnet_wide32',
                 ('dmrnet_wide', 50): 'dmrnet_wide50', ('resnet', 110): 'resnet110',
                 ('rir', 18): 'rir18'}


# ---------------------------------------------------------------------------------------------
# Input.

def find_reference(path=None):
    for p in ((path,) if path else REFERENCE_CANDIDATES):
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
    raise FileNotFoundError('reference numbers not found (tried %s); pass --reference'
                            % ', '.join((path,) if path else REFERENCE_CANDIDATES))


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
                records.extend(json.loads(text))
            else:
                for line in text.splitlines():
                    if line.strip():
                        records.append(json.loads(line))
        except ValueError as e:
            raise ValueError('%s: not JSON lines or a JSON list (%s)' % (path, e)) from None
    for r in records:
        for k in ('dataset', 'family', 'test_error'):
            if k not in r:
                raise ValueError('result record without %r: %r' % (k, r))
    return records


# ---------------------------------------------------------------------------------------------
# Statistics and formatting.

def stats(values):
    """(mean, sample std, n) of the non-missing values; (None, None, 0) if none."""
    vals = [float(v) for v in values if v is not None]
    n = len(vals)
    if not n:
        return None, None, 0
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def fmt_ours(mean, std, n, digits=2):
    if not n:
        return '-'
    return '%.*f \u00b1 %.*f (%d)' % (digits, mean, digits, std, n)


def fmt_paper(paper, paper_std=None):
    if paper is None:
        return '-'
    return '%.2f \u00b1 %.2f' % (paper, paper_std) if paper_std is not None else '%.2f' % paper


def fmt_diff(mean, paper):
    return '-' if mean is None or paper is None else '%+.2f' % (mean - paper)


class Table:
    """Cells keyed by (row, column) with ours/paper, rendered as a pivot (Markdown) or long CSV."""

    def __init__(self, name, title, row_names, col_names, note='', with_paper=True):
        # with_paper=False: a table with nothing to compare against (digits) shows only ours
        self.name, self.title, self.note, self.with_paper = name, title, note, with_paper
        self.row_names, self.col_names = row_names, col_names
        self.cells = []   # dicts: dataset, row, column, mean, std, n, paper, paper_std
        self.rows, self.cols = [], []

    def add(self, row, col, values, paper=None, paper_std=None, dataset='', digits=2):
        mean, std, n = stats(values)
        if row not in self.rows:
            self.rows.append(row)
        if col not in self.cols:
            self.cols.append(col)
        self.cells.append(dict(dataset=dataset, row=row, column=col, mean=mean, std=std, n=n,
                               paper=paper, paper_std=paper_std, digits=digits,
                               diff=None if mean is None or paper is None else mean - paper))

    def cell(self, row, col):
        for c in self.cells:
            if c['row'] == row and c['column'] == col:
                return c
        return None

    def has_results(self):
        return any(c['n'] for c in self.cells)

    def markdown(self):
        head = list(self.row_names)
        for col in self.cols:
            parts = col if isinstance(col, tuple) else (col,)
            label = ' '.join(LABELS.get(p, p) for p in parts)
            head += ['%s ours' % label, 'paper', '\u0394'] if self.with_paper else [label]
        lines = ['### %s' % self.title, '']
        if self.note:
            lines += [self.note, '']
        lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for row in self.rows:
            parts = row if isinstance(row, tuple) else (row,)
            cells = [LABELS.get(str(v), str(v)) for v in parts]
            for col in self.cols:
                c = self.cell(row, col)
                if c is None:
                    cells += ['', '', ''] if self.with_paper else ['']
                elif self.with_paper:
                    cells += [fmt_ours(c['mean'], c['std'], c['n'], c['digits']),
                              fmt_paper(c['paper'], c['paper_std']),
                              fmt_diff(c['mean'], c['paper'])]
                else:
                    cells.append(fmt_ours(c['mean'], c['std'], c['n'], c['digits']))
            lines.append('| ' + ' | '.join(cells) + ' |')
        return '\n'.join(lines) + '\n'

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        with atomic_path(os.path.join(out_dir, self.name + '.md')) as tmp:
            with open(tmp, 'w') as f:
                f.write(self.markdown())
        with atomic_path(os.path.join(out_dir, self.name + '.csv')) as tmp, \
                open(tmp, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['table', 'dataset', 'row', 'column', 'mean', 'std', 'n', 'paper',
                        'paper_std', 'diff'])
            for c in self.cells:
                w.writerow([self.name, c['dataset'], _key(c['row']), _key(c['column'])] +
                           [_csv_value(c[k]) for k in ('mean', 'std', 'n', 'paper', 'paper_std',
                                                       'diff')])


def _key(k):
    return '/'.join(map(str, k)) if isinstance(k, tuple) else k


def _csv_value(v):
    if v is None:
        return ''
    return round(v, 4) if isinstance(v, float) else v


def _select(records, **conds):
    """Records whose fields match; a condition value may be a tuple of accepted values. A missing
    width counts as 1 and a missing share as True (the defaults of every network)."""
    defaults = {'width': 1, 'share': True}
    out = []
    for r in records:
        ok = True
        for k, v in conds.items():
            got = r.get(k, defaults.get(k))
            if got is None and k in defaults:
                got = defaults[k]
            if not (got in v if isinstance(v, tuple) else got == v):
                ok = False
                break
        if ok:
            out.append(r)
    return out


def _errors(records, **conds):
    return [r['test_error'] for r in _select(records, **conds)]


# ---------------------------------------------------------------------------------------------
# The tables.

def table2(records, ref, datasets=('cifar10', 'cifar100', 'svhn'), name='table2',
           title='Table 2: test error (%), ResNet vs DILNet vs DMRNet'):
    paper = {row['L']: row for row in ref['table2_resnet_dilnet_dmrnet']}
    t = Table(name, title, ['dataset', 'L'], [], note='ours: mean \u00b1 std (runs); paper: mean '
              '\u00b1 std of 5 runs; \u0394 = ours - paper')
    for ds in datasets:
        Ls = sorted({r['L'] for r in _select(records, dataset=ds, family=FAMILIES, width=1,
                                             share=True) if r.get('L') is not None})
        if ds in ('cifar10', 'cifar100', 'svhn'):
            Ls = sorted(set(Ls) | set(paper))
        for L in Ls:
            for fam in FAMILIES:
                p = paper.get(L, {}).get(ds, {}).get(fam)
                errs = _errors(records, dataset=ds, family=fam, L=L, width=1, share=True)
                t.add((ds, L), fam, errs, p[0] if p else None, p[1] if p else None, dataset=ds)
    return t


def digits_table(records, ref):
    """The digits experiment (no paper numbers): per L and family, the final test error and the
    final training loss, each as mean \u00b1 std (runs)."""
    t = Table('digits', 'digits: ResNet vs DILNet vs DMRNet at equal L', ['dataset', 'L'], [],
              note='final test error (%) and final training loss, mean \u00b1 std (runs); '
                   'the paper has no digits numbers', with_paper=False)
    recs = _select(records, dataset='digits', family=FAMILIES, width=1, share=True)
    for L in sorted({r['L'] for r in recs if r.get('L') is not None}):
        for fam in FAMILIES:
            t.add(('digits', L), (fam, 'test error'),
                  _errors(recs, family=fam, L=L), dataset='digits')
        for fam in FAMILIES:
            t.add(('digits', L), (fam, 'train loss'),
                  [r.get('final_train_loss') for r in _select(recs, family=fam, L=L)],
                  dataset='digits', digits=4)
    return t


def table3(records, ref):
    t = Table('table3', 'Table 3: DMRNet, DMRNet-Wide and baselines, test error (%)', ['model'], [],
              note='params: ours (from the runs) / paper')
    rows = {}
    for row in ref['table3_state_of_the_art']:
        rows[TABLE3_MODELS.get((row['model'], row['depth']), row['model'])] = row
    for model, row in rows.items():
        params = [r.get('params') for r in _select(records, model=model) if r.get('params')]
        ours = '%.2fM' % (params[0] / 1e6) if params else '-'
        label = '%s (%s / %s)' % (model, ours, row['params'])
        for ds in ('cifar10', 'cifar100', 'svhn'):
            t.add(label, ds, _errors(records, model=model, dataset=ds), row.get(ds), dataset=ds)
    return t


def table4(records, ref):
    t = Table('table4', 'Table 4: ImageNet, single-crop validation and training errors (%)',
              ['model'], [])
    paper = ref['table4_imagenet']
    for fam, key, label in (('resnet_imagenet', 'resnet101', 'ResNet-101'),
                            ('dmrnet_imagenet', 'dmrnet44', 'DMRNet-44')):
        recs = _select(records, family=fam, dataset='imagenet')
        p = paper[key]
        t.add(label, 'top-1 val', [r['test_error'] for r in recs], p['top1_val'],
              dataset='imagenet')
        t.add(label, 'top-5 val', [r.get('top5') for r in recs], p['top5_val'], dataset='imagenet')
        t.add(label, 'top-1 train', [r.get('final_train_error') for r in recs], p['top1_train'],
              dataset='imagenet')
    return t


def table5(records, ref):
    t = Table('table5', 'Table 5: identity vs merge-and-run mappings, test error (%)',
              ['sharing', 'L'], [], note='sharing = one first conv and one FC for both streams')
    for row in ref['table5_identity_vs_merge_and_run']:
        share = row['sharing']
        for ds in ('cifar10', 'cifar100'):
            for fam, key in (('identity', 'identity'), ('dmrnet', 'merge_and_run')):
                t.add(('w/ sharing' if share else 'w/o sharing', row['L']), (ds, key),
                      _errors(records, family=fam, dataset=ds, L=row['L'], share=share, width=1),
                      row[ds][key], dataset=ds)
    return t


def avg_path_length(r):
    if r.get('avg_path_length') is not None:
        return float(r['avg_path_length'])
    from dmrnet.tools.paths import pathnet_mean
    return float(pathnet_mean(r['L'], r.get('blocks') or 3))


def figure6(records, out_dir):
    """Test error against the average path length (L + 3), 3 vs 6 blocks (Section 4.3)."""
    recs = _select(records, family='pathnet')
    t = Table('figure6', 'Figure 6: test error (%) against the average path length (L + 3)',
              ['dataset', 'blocks', 'L', 'avg length'], ['test error'],
              note='the paper gives Figure 6 only as a plot: no numbers to compare')
    curves = {}
    for key in sorted({(r['dataset'], r.get('blocks') or 3, r['L']) for r in recs}):
        ds, blocks, L = key
        sel = _select(recs, dataset=ds, blocks=blocks, L=L)
        x = avg_path_length(sel[0])
        t.add((ds, blocks, L, '%g' % x), 'test error', [r['test_error'] for r in sel], dataset=ds)
        mean, std, _ = stats([r['test_error'] for r in sel])
        curves.setdefault((ds, blocks), []).append((x, mean, std))
    if curves:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for (ds, blocks), pts in sorted(curves.items()):
            xs, ms, ss = zip(*sorted(pts))
            ax.errorbar(xs, ms, yerr=ss, marker='o', capsize=3,
                        label='%d blocks (%s)' % (blocks, LABELS.get(ds, ds)))
        ax.set_xlabel('average path length (L + 3)')
        ax.set_ylabel('test error (%)')
        ax.set_title('Figure 6')
        ax.legend()
        _save(fig, os.path.join(out_dir, 'figure6.png'))
    return t


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.tight_layout()
    save_figure(fig, path)
    log.info('wrote %s', path)


def build(which, records, ref, out_dir):
    """The Table objects (and plots) for the requested tables."""
    builders = {'table2': lambda: table2(records, ref),
                'digits': lambda: digits_table(records, ref),
                'table3': lambda: table3(records, ref),
                'table4': lambda: table4(records, ref),
                'table5': lambda: table5(records, ref),
                'figure6': lambda: figure6(records, out_dir)}
    tables = [builders[name]() for name in which if name in builders]
    if 'table2' in which or 'digits' in which:
        table2_params_plots(records, ref, out_dir)
    return tables


def table2_params_plots(records, ref, out_dir):
    """Table 2 as error against parameters, one plot per dataset: ours (solid, error bars, at
    our runs' parameter counts) and the paper's means (dashed, at the authors' exact counts)."""
    global_rows = ref['table2_resnet_dilnet_dmrnet']
    from dmrnet.tools.params import AUTHORS_TABLE2
    written = []
    for ds in ('cifar10', 'cifar100', 'svhn', 'digits'):
        recs = _select(records, dataset=ds, family=FAMILIES, width=1, share=True)
        if not recs:
            continue
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, fam in enumerate(FAMILIES):
            pts = []
            for L in sorted({r['L'] for r in recs if r['family'] == fam}):
                sel = _select(recs, family=fam, L=L)
                params = [r['params'] for r in sel if r.get('params')]
                x = params[0] if params else AUTHORS_TABLE2.get(L, (None,) * 3)[i]
                if x is None:
                    continue
                mean, std, _ = stats([r['test_error'] for r in sel])
                pts.append((x / 1e6, mean, std))
            color = 'C%d' % i   # one colour per family, ours and the paper's alike
            if pts:
                xs, ms, ss = zip(*pts)
                ax.errorbar(xs, ms, yerr=ss, marker='o', capsize=3, color=color,
                            label='%s (ours)' % LABELS[fam])
            if ds in ('cifar10', 'cifar100', 'svhn'):
                pxs = [AUTHORS_TABLE2[row['L']][i] / 1e6 for row in global_rows]
                pys = [row[ds][fam][0] for row in global_rows]
                ax.plot(pxs, pys, '--', color=color, alpha=0.7, label='%s (paper)' % LABELS[fam])
        ax.set_xlabel('parameters (M)')
        ax.set_ylabel('test error (%)')
        ax.set_title('Table 2, %s: error against parameters' % LABELS.get(ds, ds))
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, 'table2_params_%s.png' % ds)
        _save(fig, path)
        written.append(path)
    return written


def figure7(records, out_dir, datasets=('cifar10', 'cifar100', 'svhn', 'digits')):
    """Figure 7-style curves (training loss and test error against epochs) by the training
    engine's train/curves.py: per dataset, the families at L=54 (else the largest L where
    ResNet and DMRNet both have runs), the lowest seed whose run folders all exist."""
    try:
        from dmrnet.train.curves import plot_runs
    except ImportError:
        log.info('train/curves.py not importable: no Figure 7 curves')
        return []
    written = []
    for ds in datasets:
        recs = [r for r in _select(records, dataset=ds, family=FAMILIES, width=1, share=True)
                if r.get('run_dir') and os.path.exists(os.path.join(r['run_dir'], 'log.jsonl'))]
        common = sorted({r['L'] for r in recs if r['family'] == 'resnet'} &
                        {r['L'] for r in recs if r['family'] == 'dmrnet'})
        if not common:
            continue
        L = 54 if 54 in common else common[-1]
        for seed in sorted({r.get('seed') for r in recs if r['L'] == L}, key=str):
            chosen = [(LABELS[f], _select(recs, family=f, L=L, seed=seed)) for f in FAMILIES]
            chosen = [(label, sel[0]['run_dir']) for label, sel in chosen if sel]
            if {'ResNet', 'DMRNet'} <= {label for label, _ in chosen}:
                path = os.path.join(out_dir, 'figure7_%s.png' % ds)
                os.makedirs(out_dir, exist_ok=True)
                plot_runs([d for _, d in chosen], path, labels=[lb for lb, _ in chosen],
                          title='%s, L = %d, seed %s' % (LABELS.get(ds, ds), L, seed))
                log.info('wrote %s', path)
                written.append(path)
                break
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('tables', nargs='*', metavar='TABLE',
                   help='any of %s, or all (default)' % ', '.join(TABLES))
    p.add_argument('--runs-dir', default=os.path.join(REPO, 'runs'))
    p.add_argument('--results', nargs='+', help='results files (default: RUNS/*/results.jsonl)')
    p.add_argument('--reference', help='reference-numbers.json of the paper')
    p.add_argument('--out', help='output folder (default RUNS/report)')
    p.add_argument('--show-empty', action='store_true',
                   help='print tables without any result of ours too')
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    bad = sorted(set(a.tables) - set(TABLES + ('all',)))
    if bad:
        p.error('unknown table(s) %s: use %s or all' % (', '.join(bad), ', '.join(TABLES)))
    explicit = bool(a.tables) and 'all' not in a.tables
    which = a.tables if explicit else list(TABLES)
    paths = a.results or [os.path.join(a.runs_dir, e, 'results.jsonl') for e in EXPERIMENT_DIRS]
    try:
        records = load_results(paths, missing_ok=not a.results)
    except (OSError, ValueError) as e:
        p.error(str(e))
    log.info('%d result records from %d files', len(records), sum(map(os.path.exists, paths)))
    ref = find_reference(a.reference)
    out_dir = a.out or os.path.join(a.runs_dir, 'report')
    for t in build(which, records, ref, out_dir):
        t.write(out_dir)
        if t.has_results() or explicit or a.show_empty:
            print(t.markdown())
        else:
            log.info('%s: no results yet (written to %s anyway)', t.name, out_dir)
    if 'table2' in which or 'digits' in which:
        figure7(records, out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
