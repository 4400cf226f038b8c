"""Parameter table: every preset's count beside the paper's printed number and the exact count
of the authors' own network.

    python tools/params.py [--markdown] [--json] [--pattern 'dmrnet*']

The paper prints rounded numbers (one per Table 2 row, evidently from the ResNet column); the
authors' exact counts come from building their MXNet symbols (authors-code-facts.md). Our counts
must equal the authors' exactly (tests/test_symbols.py); differences to the printed numbers are
shown, never tuned away.
"""
import argparse
import json
import os
import sys

# Exact trainable-parameter counts of the authors' networks (10 classes), from their release.
AUTHORS_TABLE2 = {  # L: (ResNet, DILNet, DMRNet)
    12: (369690, 346650, 349402), 18: (564122, 541082, 543834), 24: (758554, 735514, 738266),
    30: (952986, 929946, 932698), 36: (1147418, 1124378, 1127130),
    48: (1536282, 1513242, 1515994), 54: (1730714, 1707674, 1710426),
    96: (3091738, 3068698, 3071450),
}
AUTHORS_OTHER = {'dmrnet_wide32': 14851402, 'dmrnet_wide50': 24151882,
                 'resnet101_imagenet': 44549160, 'dmrnet44_imagenet': 43338024}

PAPER_NUMBERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'reference',
                             'paper-numbers.json')


def authors_counts():
    counts = dict(AUTHORS_OTHER)
    for L, (r, d, m) in AUTHORS_TABLE2.items():
        counts['resnet%d' % (2 * L + 2)] = r
        counts['dilnet%d' % (L + 2)] = d
        counts['dmrnet%d' % (L + 2)] = m
    return counts


def paper_printed(path=PAPER_NUMBERS):
    """Preset name -> (printed string, where it is printed)."""
    with open(path) as f:
        ref = json.load(f)
    printed = {}
    for row in ref['table2_resnet_dilnet_dmrnet']:
        L = row['L']
        for name in ('resnet%d' % (2 * L + 2), 'dilnet%d' % (L + 2), 'dmrnet%d' % (L + 2)):
            printed[name] = (row['params'], 'Table 2')
    table3 = {('dmrnet', 56): 'dmrnet56', ('dmrnet_wide', 32): 'dmrnet_wide32',
              ('dmrnet_wide', 50): 'dmrnet_wide50', ('resnet', 110): 'resnet110',
              ('rir', 18): 'rir18'}
    for row in ref['table3_state_of_the_art']:
        name = table3.get((row['model'], row['depth']))
        if name:
            printed[name] = (row['params'], 'Table 3')
    t4 = ref['table4_imagenet']
    printed['resnet101_imagenet'] = (t4['resnet101']['params'], 'Table 4')
    printed['dmrnet44_imagenet'] = (t4['dmrnet44']['params'], 'Table 4')
    return printed


def _millions(text):
    return float(text.rstrip('M')) * 1e6


def build_table(pattern=None):
    from dmrnet.symbols import count_params, get_model, get_model_list, preset
    authors, printed = authors_counts(), paper_printed()
    rows = []
    for name in get_model_list(pattern):
        ours = count_params(get_model(name))
        paper, where = printed.get(name, (None, None))
        note = ''
        if paper is not None and abs(ours - _millions(paper)) >= 0.05e6:
            note = 'printed %s, built %.2fM' % (paper, ours / 1e6)
        rows.append(dict(model=name, description=preset(name)['description'], paper=paper,
                         where=where, authors=authors.get(name), ours=ours,
                         equal_to_authors=None if name not in authors else ours == authors[name],
                         note=note))
    return rows


def format_table(rows, markdown=False):
    head = ['model', 'paper', 'authors (exact)', 'ours', 'ours = authors', 'note']
    lines = []
    cells = [[r['model'], '%s (%s)' % (r['paper'], r['where']) if r['paper'] else '-',
              '{:,}'.format(r['authors']) if r['authors'] else '-', '{:,}'.format(r['ours']),
              {True: 'yes', False: 'NO', None: '-'}[r['equal_to_authors']], r['note']]
             for r in rows]
    if markdown:
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        lines += ['| ' + ' | '.join(c) + ' |' for c in cells]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *cells)]
        fmt = '  '.join('%%-%ds' % w for w in widths)
        lines.append(fmt % tuple(head))
        lines += [fmt % tuple(c) for c in cells]
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pattern', help="fnmatch pattern over preset names, e.g. 'dmrnet*'")
    parser.add_argument('--markdown', action='store_true', help='print a Markdown table')
    parser.add_argument('--json', action='store_true', help='print the rows as JSON')
    args = parser.parse_args(argv)
    rows = build_table(args.pattern)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows, args.markdown))
    return 0 if all(r['equal_to_authors'] is not False for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
