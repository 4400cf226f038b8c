"""The report (tools/experiments/report.py, tables.py, comparable.py) against a small hand-made
results file (tests/data/results_small.jsonl): mean ± std (n), the paper's numbers and the
differences, Markdown/CSV files and plots."""
import csv
import json
import os

import pytest

from dmrnet.paper import reference
from dmrnet.tools.experiments import comparable, report, results, tables

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = os.path.join(HERE, 'data', 'results_small.jsonl')


def test_formatting():
    assert tables.fmt_ours(5.2, 0.28284, 2) == '5.20 \u00b1 0.28 (2)'
    assert tables.fmt_ours(None, None, 0) == '-'
    assert tables.fmt_paper(5.24, 0.23) == '5.24 \u00b1 0.23'
    assert tables.fmt_paper(3.94) == '3.94' and tables.fmt_paper(None) == '-'
    assert tables.fmt_diff(5.2, 5.24) == '-0.04' and tables.fmt_diff(None, 5.24) == '-'


def test_tables_from_small_file():
    recs = results.load_results([SMALL])
    ref = reference.paper_numbers()
    t2 = tables.table2(recs, ref)
    md = t2.markdown()
    assert ('| CIFAR-10 | 54 | 5.20 \u00b1 0.28 (2) | 5.24 \u00b1 0.23 | -0.04 '
            '| - | 5.02 \u00b1 0.17 | - '
            '| 4.90 \u00b1 0.00 (1) | 4.96 \u00b1 0.06 | -0.06 |') in md
    assert len(t2.rows) == 3 * 8
    t3 = tables.table3(recs, ref).markdown()
    assert '| dmrnet_wide32 (14.85M / 14.9M) | 4.00 \u00b1 0.00 (1) | 3.94 | +0.06 |' in t3
    t4 = tables.table4(recs, ref).markdown()
    assert ('| ResNet-101 | 26.00 \u00b1 0.00 (1) | 26.41 | -0.41 '
            '| 8.00 \u00b1 0.00 (1) | 8.50 | -0.50 '
            '| 25.00 \u00b1 0.00 (1) | 25.75 | -0.75 |') in t4
    t5 = tables.table5(recs, ref).markdown()
    assert '| w/o sharing | 48 | 4.70 \u00b1 0.00 (1) | 4.67 | +0.03 |' in t5
    dg = tables.comparison_table(recs, 'digits').markdown()
    # test errors then final training losses, ours only (no paper numbers for digits)
    assert ('| digits | 12 | - | - | 2.50 \u00b1 0.00 (1) | - | - | 0.0500 \u00b1 0.0000 (1) |'
            in dg), dg
    assert 'paper' not in dg.splitlines()[4]


def test_cli_writes_markdown_csv_and_plots(tmp_path, capsys):
    out = tmp_path / 'rep'
    assert report.main(['--results', SMALL, '--out', str(out)]) == 0
    text = capsys.readouterr().out
    for title in ('Table 2', 'Table 3', 'Table 4', 'Table 5', 'Figure 6', 'digits'):
        assert title in text
    for name in ('table2', 'table3', 'table4', 'table5', 'figure6', 'digits'):
        assert (out / (name + '.md')).exists()
    rows = list(csv.DictReader(open(out / 'table2.csv')))
    r = [x for x in rows if x['row'] == 'cifar10/54' and x['column'] == 'resnet'][0]
    got = (r['mean'], r['std'], r['n'], r['paper'], r['diff'])
    assert got == ('5.2', '0.2828', '2', '5.24', '-0.04')
    f6 = list(csv.DictReader(open(out / 'figure6.csv')))
    assert [x['row'] for x in f6] == ['cifar10/3/12/15', 'cifar10/6/12/15']
    for png in ('figure6.png', 'table2_params_cifar10.png', 'table2_params_digits.png'):
        assert (out / png).stat().st_size > 1000


def test_json_list_input_and_missing_field(tmp_path):
    recs = results.load_results([SMALL])
    p = tmp_path / 'r.json'
    p.write_text(json.dumps(recs))
    assert results.load_results([str(p)]) == recs
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"dataset": "cifar10", "family": "resnet"}\n')
    with pytest.raises(ValueError):
        results.load_results([str(bad)])


def test_named_results_file_missing_or_broken(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main(['--results', str(tmp_path / 'nope.jsonl'), '--out', str(tmp_path)])
    assert 'does not exist' in capsys.readouterr().err
    broken = tmp_path / 'broken.jsonl'
    broken.write_text('{"dataset": "digits",\n')
    with pytest.raises(SystemExit):
        report.main(['--results', str(broken), '--out', str(tmp_path)])
    assert 'broken.jsonl' in capsys.readouterr().err


def test_outputs_are_written_atomically(tmp_path):
    out = tmp_path / 'rep'
    assert report.main(['table2', 'digits', '--results', SMALL, '--out', str(out)]) == 0
    names = sorted(os.listdir(out))
    assert not [n for n in names if 'partial' in n], names
    assert {'table2.md', 'table2.csv', 'digits.md', 'digits.csv'} <= set(names)


def test_family_comparison_has_welch_tests_and_params():
    """A comparison on data of our own: per family mean ± std of test error, training loss and
    parameters, and a two-sided Welch t-test per pair (checked against the formula)."""
    errors = {'resnet': [1.0, 2.0, 3.0], 'dilnet': [4.0, 5.0, 6.0, 7.0], 'dmrnet': [2.0, 2.0]}
    recs = [dict(dataset='fashion', family=family, L=12, width=1, test_error=e, seed=i,
                 final_train_loss=0.1, params=1000 + len(family))
            for family, values in errors.items() for i, e in enumerate(values)]
    table = tables.comparison_table(recs, 'fashion')
    md = table.markdown()
    assert 'Fashion-MNIST: ResNet vs DILNet vs DMRNet at equal L' in md
    assert '1006 \u00b1 0 (3)' in md and '1006 \u00b1 0 (2)' in md
    tests = {(a, b): (diff, t, p) for _, a, b, diff, t, p in table.tests}
    diff, t, p = tests[('resnet', 'dilnet')]
    # Welch: t = (2 - 5.5) / sqrt(1/3 + (5/3)/4)
    assert diff == pytest.approx(-3.5) and t == pytest.approx(-3.5 / (1 / 3 + 5 / 12) ** 0.5)
    assert 0.001 < p < 0.05
    # DMRNet's runs have no spread but ResNet's do: still a test
    assert ('resnet', 'dmrnet') in tests
    assert '| 12 | ResNet - DILNet | -3.500 |' in md


def test_runs_with_another_batchnorm_batch_are_noted(tmp_path):
    """The authors' BatchNorm saw 32 images a device (2 GPUs x 32): runs that normalised over
    64 (one device) are named in the notes of the tables compared with the paper."""
    recs = [dict(dataset='cifar10', family='dmrnet', L=54, width=1, test_error=5.0,
                 batch_per_device=b) for b in (32, 64, 64, None)]
    note = "BatchNorm batch deviates from the authors' 32 images per device in 2 run(s) with 64"
    assert comparable.batchnorm_note(recs) == note and comparable.batchnorm_note(recs[:1]) == ''
    table, = report.build(['table2'], recs, reference.paper_numbers(), str(tmp_path))
    assert note in table.markdown()


def test_recipe_choice_lowest_mean_over_families(tmp_path, capsys):
    """tools/experiments/recipe.py: the candidate with the lowest mean final validation error
    over the families wins, even where one family alone prefers the other; a candidate that has
    not finished every family cannot be chosen yet."""
    from dmrnet.tools.experiments import recipe
    finals = {'1e-4': {'resnet': 7.0, 'dilnet': 6.8, 'dmrnet': 6.9},
              '5e-4': {'resnet': 6.5, 'dilnet': 6.9, 'dmrnet': 7.0}}   # means 6.90 / 6.80
    for wd, errors in finals.items():
        folder = tmp_path / ('wd' + wd) / 'fashion-compare'
        folder.mkdir(parents=True)
        folder.joinpath('results.jsonl').write_text(''.join(
            json.dumps(dict(dataset='fashion_val', family=f, model=f + '14', epochs=8,
                            test_error=e, best_test_error=e - 0.1)) + '\n'
            for f, e in errors.items()))
    assert recipe.main(['fashion_val', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'Chosen: wd 5e-4' in out and '**6.80**' in out
    assert '| resnet (resnet14) | 7.00 (6.90) | 6.50 (6.40) |' in out
    assert (tmp_path / 'recipe.md').read_text() == out
    # take dmrnet away from 1e-4: nothing can be chosen
    path = tmp_path / 'wd1e-4' / 'fashion-compare' / 'results.jsonl'
    path.write_text(''.join(line + '\n' for line in path.read_text().splitlines()
                            if '"dmrnet"' not in line))
    with pytest.raises(SystemExit):
        recipe.main(['fashion_val', str(tmp_path)])
    assert 'cannot choose yet: wd1e-4 lacks dmrnet' in capsys.readouterr().err


def test_comparison_at_two_depths(tmp_path, capsys):
    """A family comparison measured at L = 12 and 24: a row and three Welch tests per L (each
    on that L's runs only), and the error-against-L figure beside the paper's CIFAR-10; with one
    depth, no such figure."""
    errors = {(12, 'resnet'): [7.7, 7.5], (12, 'dilnet'): [7.4, 7.2], (12, 'dmrnet'): [7.3, 7.1],
              (24, 'resnet'): [7.0, 7.2], (24, 'dilnet'): [7.1, 6.8], (24, 'dmrnet'): [6.5, 6.6]}
    path = tmp_path / 'results.jsonl'
    path.write_text(''.join(json.dumps(dict(dataset='fashion', family=family, L=L, seed=seed,
                                            test_error=e)) + '\n'
                            for (L, family), values in errors.items()
                            for seed, e in enumerate(values)))
    out = tmp_path / 'rep'
    assert report.main(['fashion', '--results', str(path), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert '| Fashion-MNIST | 12 | 7.60 \u00b1 0.14 (2) | 7.30 \u00b1 0.14 (2) |' in text
    assert '| Fashion-MNIST | 24 | 7.10 \u00b1 0.14 (2) | 6.95 \u00b1 0.21 (2) |' in text
    table = tables.comparison_table(results.load_results([str(path)]), 'fashion')
    tests = {(L, a, b): diff for L, a, b, diff, _, _ in table.tests}
    assert len(tests) == 6
    assert tests[(12, 'resnet', 'dmrnet')] == pytest.approx(0.4)
    assert tests[(24, 'resnet', 'dmrnet')] == pytest.approx(0.55)
    assert '| 24 | DILNet - DMRNet | +0.400 |' in text
    assert (out / 'error_vs_L_fashion.png').stat().st_size > 10000
    path.write_text(''.join(line + '\n' for line in path.read_text().splitlines()
                            if '"L": 12' in line))
    assert report.main(['fashion', '--results', str(path), '--out', str(tmp_path / 'one')]) == 0
    assert not (tmp_path / 'one' / 'error_vs_L_fashion.png').exists()
    assert (tmp_path / 'one' / 'fashion.md').exists()
