"""The report's tables: Tables 2-5 and Figure 6's numbers beside the paper's, and the family
comparisons on data the paper did not use, each a Table that renders as Markdown (a pivot:
"mean ± std (n runs)", the paper's number, the difference) and as long-format CSV."""
import csv
import os

from dmrnet import paper
from dmrnet.paper.reference import table2_by_L
from dmrnet.tools.experiments.results import errors, matching, pathnet_groups
from dmrnet.tools.experiments.stats import mean_std, welch
from dmrnet.utils.files import atomic_path, write_text

# Family comparisons on real data the paper did not use (each its own table, no paper numbers).
OWN_DATASETS = ('digits', 'fashion', 'fashion_val')
# Printed names: the families' (dmrnet.paper), the datasets' and Table 5's mapping column.
LABELS = dict(paper.LABELS, merge_and_run='Merge-and-run', cifar10='CIFAR-10',
              cifar100='CIFAR-100', svhn='SVHN', digits='digits', imagenet='ImageNet',
              fashion='Fashion-MNIST', fashion_val='Fashion-MNIST validation split')


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
        mean, std, n = mean_std(values)
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


def table2(records, numbers, datasets=paper.TABLE2_DATASETS, name='table2',
           title='Table 2: test error (%), ResNet vs DILNet vs DMRNet'):
    by_L = table2_by_L(numbers)
    table = Table(name, title, ['dataset', 'L'], [], note='ours: mean \u00b1 std (runs); paper: '
                  'mean \u00b1 std of 5 runs; \u0394 = ours - paper')
    for dataset in datasets:
        Ls = {record['L'] for record in matching(records, dataset=dataset, family=paper.FAMILIES,
                                                 width=1, share=True)
              if record.get('L') is not None}
        if dataset in paper.TABLE2_DATASETS:
            Ls |= set(by_L)
        for L in sorted(Ls):
            for family in paper.FAMILIES:
                printed = by_L.get(L, {}).get(dataset, {}).get(family)
                measured = errors(records, dataset=dataset, family=family, L=L, width=1,
                                  share=True)
                table.add((dataset, L), family, measured, printed[0] if printed else None,
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
        self.depth_tests = []   # (family, smaller L, larger L, what, larger - smaller, t, p)
        Ls = sorted({record['L'] for record in records if record.get('L') is not None})
        for family in paper.FAMILIES:
            for low, high in zip(Ls, Ls[1:]):
                for what, field in (('test error', 'test_error'),
                                    ('train loss', 'final_train_loss')):
                    values = [[record.get(field) for record in matching(records, family=family,
                                                                        L=L)]
                              for L in (high, low)]
                    test = welch(*values)
                    if test is not None:
                        self.depth_tests.append((family, low, high, what) + test)
        for L in Ls:
            measured = {family: errors(records, family=family, L=L) for family in paper.FAMILIES}
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'test error'), measured[family], dataset=dataset)
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'train loss'),
                         [record.get('final_train_loss')
                          for record in matching(records, family=family, L=L)],
                         dataset=dataset, digits=4)
            for family in paper.FAMILIES:
                self.add((dataset, L), (family, 'params'),
                         [record.get('params') for record in matching(records, family=family,
                                                                      L=L)],
                         dataset=dataset, digits=0)
            for a, b in ((0, 1), (0, 2), (1, 2)):
                a, b = paper.FAMILIES[a], paper.FAMILIES[b]
                test = welch(measured[a], measured[b])
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
        if self.depth_tests:
            lines += ['', 'Between depths, each family on its own: two-sided Welch t-test of the '
                      'larger L against the smaller:', '',
                      '| family | L | measure | larger L - smaller L | t | p |',
                      '|---|---|---|---|---|---|']
            for family, low, high, what, diff, t, p in self.depth_tests:
                lines.append('| %s | %d -> %d | %s | %+.4g | %.2f | %.3g |'
                             % (LABELS[family], low, high, what, diff, t, p))
        return text + '\n'.join(lines) + '\n'


def comparison_table(records, dataset):
    return ComparisonTable(dataset, matching(records, dataset=dataset, family=paper.FAMILIES,
                                             width=1, share=True))


def table3(records, numbers):
    table = Table('table3', 'Table 3: DMRNet, DMRNet-Wide and baselines, test error (%)',
                  ['model'], [], note='params: ours (from the runs) / paper')
    rows = {}
    for row in numbers['table3_state_of_the_art']:
        rows[paper.TABLE3_MODELS.get((row['model'], row['depth']), row['model'])] = row
    for model, row in rows.items():
        params = [record.get('params') for record in matching(records, model=model)
                  if record.get('params')]
        ours = '%.2fM' % (params[0] / 1e6) if params else '-'
        label = '%s (%s / %s)' % (model, ours, row['params'])
        for dataset in paper.TABLE2_DATASETS:
            table.add(label, dataset, errors(records, model=model, dataset=dataset),
                      row.get(dataset), dataset=dataset)
    return table


def table4(records, numbers):
    table = Table('table4', 'Table 4: ImageNet, single-crop validation and training errors (%)',
                  ['model'], [])
    printed = numbers['table4_imagenet']
    for family, key, label in (('resnet_imagenet', 'resnet101', 'ResNet-101'),
                               ('dmrnet_imagenet', 'dmrnet44', 'DMRNet-44')):
        runs = matching(records, family=family, dataset='imagenet')
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
        for dataset in paper.TABLE5_DATASETS:
            for family, key in (('identity', 'identity'), ('dmrnet', 'merge_and_run')):
                table.add(('w/ sharing' if share else 'w/o sharing', row['L']), (dataset, key),
                          errors(records, family=family, dataset=dataset, L=row['L'],
                                 share=share, width=1),
                          row[dataset][key], dataset=dataset)
    return table


def figure6(records):
    """Figure 6's numbers: test error against the average path length (L + 3), 3 vs 6 blocks
    (Section 4.3); the plot is figures.figure6's."""
    table = Table('figure6', 'Figure 6: test error (%) against the average path length (L + 3)',
                  ['dataset', 'blocks', 'L', 'avg length'], ['test error'],
                  note='the paper gives Figure 6 only as a plot: no numbers to compare')
    for dataset, blocks, L, length, measured in pathnet_groups(records):
        table.add((dataset, blocks, L, '%g' % length), 'test error', measured, dataset=dataset)
    return table
