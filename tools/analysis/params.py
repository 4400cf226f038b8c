"""Parameter table: every preset's count beside the paper's printed number and the exact count
of the authors' own network.

    python -m dmrnet.tools.analysis.params [--markdown] [--json] [--pattern 'dmrnet*']
                                           [--reference JSON]
    (the same: python tools/analysis/params.py ...)

The paper prints rounded numbers (one per Table 2 row, evidently from the ResNet column); the
authors' exact counts come from building the MXNet symbols of their release. Our counts must
equal the authors' exactly (tests/test_symbols.py); differences to the printed numbers are
shown, never tuned away.
"""
import argparse
import json
import sys

from dmrnet import paper
from dmrnet.paper.reference import paper_numbers
from dmrnet.symbols import count_params, get_model, get_model_list, preset


def paper_printed(reference=None):
    """Preset name -> (printed string, where it is printed)."""
    numbers = paper_numbers(reference)
    printed = {}
    for row in numbers['table2_resnet_dilnet_dmrnet']:
        for family in paper.FAMILIES:
            printed[paper.table2_preset(family, row['L'])] = (row['params'], 'Table 2')
    for row in numbers['table3_state_of_the_art']:
        name = paper.TABLE3_MODELS.get((row['model'], row['depth']))
        if name:
            printed[name] = (row['params'], 'Table 3')
    imagenet = numbers['table4_imagenet']
    printed['resnet101_imagenet'] = (imagenet['resnet101']['params'], 'Table 4')
    printed['dmrnet44_imagenet'] = (imagenet['dmrnet44']['params'], 'Table 4')
    return printed


def _millions(text):
    return float(text.rstrip('M')) * 1e6


def build_table(pattern=None, reference=None):
    authors, printed = paper.authors_counts(), paper_printed(reference)
    rows = []
    for name in get_model_list(pattern):
        ours = count_params(get_model(name))
        paper_count, where = printed.get(name, (None, None))
        note = ''
        if paper_count is not None and abs(ours - _millions(paper_count)) >= 0.05e6:
            note = 'printed %s, built %.2fM' % (paper_count, ours / 1e6)
        rows.append(dict(model=name, description=preset(name)['description'], paper=paper_count,
                         where=where, authors=authors.get(name), ours=ours,
                         equal_to_authors=None if name not in authors else ours == authors[name],
                         note=note))
    return rows


def format_table(rows, markdown=False):
    head = ['model', 'paper', 'authors (exact)', 'ours', 'ours = authors', 'note']
    cells = [[row['model'], '%s (%s)' % (row['paper'], row['where']) if row['paper'] else '-',
              '{:,}'.format(row['authors']) if row['authors'] else '-', '{:,}'.format(row['ours']),
              {True: 'yes', False: 'NO', None: '-'}[row['equal_to_authors']], row['note']]
             for row in rows]
    if markdown:
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        lines += ['| ' + ' | '.join(texts) + ' |' for texts in cells]
    else:
        widths = [max(len(str(text)) for text in column) for column in zip(head, *cells)]
        line_format = '  '.join('%%-%ds' % width for width in widths)
        lines = [line_format % tuple(head)] + [line_format % tuple(texts) for texts in cells]
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    parser.add_argument('--pattern', help="fnmatch pattern over preset names, e.g. 'dmrnet*'")
    parser.add_argument('--markdown', action='store_true', help='print a Markdown table')
    parser.add_argument('--json', action='store_true', help='print the rows as JSON')
    parser.add_argument('--reference', help="the paper's numbers (default: "
                                            "dmrnet.paper's numbers.json)")
    args = parser.parse_args(argv)
    rows = build_table(args.pattern, args.reference)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows, args.markdown))
    return 0 if all(row['equal_to_authors'] is not False for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
