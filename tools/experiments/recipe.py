"""The recipe choice on a validation split: one seed of every family per candidate setting, the
setting with the lowest mean final validation error over the families wins (nothing is chosen
per family, nothing on the test set).

    python -m dmrnet.tools.experiments.recipe fashion_val RUNS/fashion-recipe

reads RUNS/fashion-recipe/<option><value>/<experiment>/results.jsonl (as `make fashion-recipe`
writes them, e.g. wd1e-4/fashion-compare/results.jsonl), prints a Markdown table (families x
candidates, final and best validation error, %) with the choice, and writes it to
RUNS/fashion-recipe/recipe.md.
"""
import argparse
import os
import re
import sys

from dmrnet.tools.experiments.layout import RESULTS_FILE
from dmrnet.tools.experiments.results import load_results
from dmrnet.utils.files import write_text

CANDIDATE = re.compile(r'^([a-z_]+?)([-+0-9.e]+)$')   # 'wd1e-4' -> ('wd', '1e-4')


def candidates(root):
    """{(option, value): [records]} of every candidate folder under root that has results."""
    found = {}
    for name in sorted(os.listdir(root)):
        match = CANDIDATE.match(name)
        folder = os.path.join(root, name)
        if not match or not os.path.isdir(folder):
            continue
        files = [os.path.join(folder, experiment, RESULTS_FILE)
                 for experiment in sorted(os.listdir(folder))
                 if os.path.exists(os.path.join(folder, experiment, RESULTS_FILE))]
        records = load_results(files, missing_ok=True) if files else []
        if records:
            found[match.groups()] = records
    return found


def choose(found, dataset):
    """(table rows, the chosen (option, value), families): per family its final/best error under
    each candidate; the candidate with the lowest mean final error over the families that every
    candidate has finished (a candidate missing a family cannot be compared and is refused)."""
    per = {key: {r['family']: r for r in records if r['dataset'] == dataset}
           for key, records in found.items()}
    families = sorted(set.union(*(set(v) for v in per.values()))) if per else []
    incomplete = {'%s%s' % key: sorted(set(families) - set(v)) for key, v in per.items()
                  if set(v) != set(families)}
    if not per or incomplete:
        raise ValueError('cannot choose yet: %s' % (
            '; '.join('%s lacks %s' % (k, ', '.join(v)) for k, v in sorted(incomplete.items()))
            if incomplete else 'no finished %s runs' % dataset))
    means = {key: sum(v[f]['test_error'] for f in families) / len(families)
             for key, v in per.items()}
    chosen = min(sorted(means), key=means.get)
    return per, means, chosen, families


def markdown(per, means, chosen, families, dataset):
    keys = sorted(per, key=lambda k: float(k[1]))
    head = '| family (model) | ' + ' | '.join('%s %s' % k for k in keys) + ' |'
    lines = ['Final (best) %s error, %%, one seed per family:' % dataset, '', head,
             '|' + '---|' * (len(keys) + 1)]
    for family in families:
        model = per[keys[0]][family]['model']
        lines.append('| %s (%s) | ' % (family, model) + ' | '.join(
            '%.2f (%.2f)' % (per[k][family]['test_error'], per[k][family]['best_test_error'])
            for k in keys) + ' |')
    lines.append('| mean | ' + ' | '.join('**%.2f**' % means[k] if k == chosen
                                          else '%.2f' % means[k] for k in keys) + ' |')
    epochs = {r['epochs'] for v in per.values() for r in v.values()}
    lines += ['', 'Chosen: %s %s (lowest mean final error over the %d families; %s epoch(s)).'
              % (chosen + (len(families), ', '.join(map(str, sorted(epochs)))))]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('dataset', help='the validation split the candidates were scored on')
    parser.add_argument('root', help='the folder of the candidates (RUNS/fashion-recipe)')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        parser.exit(2, '%s: error: %s is not a folder (run make fashion-recipe first)\n'
                    % (parser.prog, args.root))
    try:
        per, means, chosen, families = choose(candidates(args.root), args.dataset)
    except ValueError as e:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, e))
    text = markdown(per, means, chosen, families, args.dataset)
    write_text(os.path.join(args.root, 'recipe.md'), text)
    print(text, end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
