"""README's Fashion-MNIST table says what results/fashion/results.jsonl holds: every depth,
every family, its per-seed errors and their mean ± std (a rerun published without the README
following it fails here)."""
import collections
import os
import re

from dmrnet.tools.experiments.layout import REPOSITORY
from dmrnet.tools.experiments.results import load_results
from dmrnet.tools.experiments.stats import mean_std

FAMILIES = ('resnet', 'dilnet', 'dmrnet')


def _published():
    runs = collections.defaultdict(dict)
    for record in load_results([os.path.join(REPOSITORY, 'results', 'fashion', 'results.jsonl')]):
        runs[record['L']].setdefault(record['family'], {})[record['seed']] = record
    return runs


def _readme_blocks():
    """{L: {row label: [cell per family]}} from the table under README's Fashion-MNIST heading."""
    with open(os.path.join(REPOSITORY, 'README.md')) as f:
        text = f.read()
    section = text.split('### Fashion-MNIST', 1)[1].split('\n### ', 1)[0]
    blocks, L = {}, None
    for line in section.splitlines():
        if not line.startswith('|'):
            if blocks:
                break              # the first table with depth rows is the one
            continue
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        depth = re.fullmatch(r'\*\*L = (\d+)\*\*', cells[0])
        if depth:
            L = int(depth.group(1))
            blocks[L] = {'names': [cell.strip('*') for cell in cells[1:]]}
        elif L is not None:
            blocks[L][cells[0]] = cells[1:]
    return blocks


def test_the_readme_table_has_every_published_depth_and_its_numbers():
    published, readme = _published(), _readme_blocks()
    assert sorted(readme) == sorted(published)
    for L, families in published.items():
        block = readme[L]
        for column, family in enumerate(FAMILIES):
            seeds = families[family]
            errors = [seeds[seed]['test_error'] for seed in sorted(seeds)]
            mean, std, n = mean_std(errors)
            assert block['names'][column].lower().replace('-', '') == seeds[0]['model']
            assert block['test error (%%), mean \u00b1 std (%d seeds)' % n][column] == \
                '%.2f \u00b1 %.2f' % (mean, std), (L, family)
            assert block['seeds 0-%d' % (n - 1)][column] == ', '.join('%.2f' % e for e in errors)
            assert block['parameters'][column] == '{:,}'.format(seeds[0]['params'])
