"""The report reads each experiment's own results, covers the results the repository keeps, and
a runner's results file is the same on every checkout."""
import os
import shutil

from dmrnet.paper.reference import paper_numbers
from dmrnet.tools.experiments import report
from dmrnet.tools.experiments import runner as ex
from dmrnet.tools.experiments.collect import collect
from dmrnet.tools.experiments.layout import REPOSITORY
from dmrnet.tools.experiments.results import load_results

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, 'data', 'fake_train.py')


def _runner(experiment, runs, *extra):
    return ex.main([experiment, '--runs-dir', str(runs), '--train-script', FAKE,
                    '--dataset', 'digits', '--epochs', '1'] + list(extra))


def test_smoke_runs_of_another_experiment_do_not_pool(tmp_path, capsys):
    """README's `make table2 SCALE=0.05 DATASET=digits SEEDS=1` then `make digits-compare`:
    the digits comparison counted the table2 runs too (6 runs a family, p = 0.97), and table2
    said it had no results."""
    assert _runner('table2', tmp_path, '--seeds', '1', '--filter', '*-s0') == 0
    assert _runner('digits-compare', tmp_path, '--seeds', '2') == 0
    capsys.readouterr()
    assert report.main(['digits', 'table2', '--runs-dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    digits_rows = [line for line in out.splitlines() if line.startswith('| digits | 12 |')]
    assert len(digits_rows) == 2, out          # the comparison's row, table2's digits row
    comparison = [row for row in digits_rows if '(2)' in row]
    assert comparison and '(3)' not in comparison[0]   # 2 seeds, no table2 run pooled in
    assert '| digits | 24 |' in out                    # table2 has its own digits rows


def test_the_report_covers_the_published_results(tmp_path, capsys):
    assert report.main(['fashion', '--runs-dir', str(tmp_path / 'empty')]) == 0
    out = capsys.readouterr().out
    assert '| Fashion-MNIST | 12 | 7.61 \u00b1 0.13 (5) |' in out
    assert '| Fashion-MNIST | 24 | 7.97 \u00b1 0.31 (5) |' in out
    # and with RUNS where the published runs live, each run counts once
    runs = os.path.join(REPOSITORY, 'results', 'fashion', 'runs')
    assert report.main(['fashion', '--runs-dir', runs, '--out', str(tmp_path / 'r')]) == 0
    assert '| Fashion-MNIST | 12 | 7.61 \u00b1 0.13 (5) |' in capsys.readouterr().out


def test_a_results_file_is_the_same_on_every_checkout(tmp_path):
    first = tmp_path / 'one'
    assert _runner('digits-compare', first, '--seeds', '1') == 0
    results = (first / 'digits-compare' / 'results.jsonl').read_text()
    assert str(tmp_path) not in results               # no machine's path in it
    moved = tmp_path / 'elsewhere' / 'runs'
    shutil.copytree(str(first), str(moved))
    collect(str(moved / 'digits-compare'))
    assert (moved / 'digits-compare' / 'results.jsonl').read_text() == results
    records = load_results([str(moved / 'digits-compare' / 'results.jsonl')])
    assert all(os.path.isdir(record['run_dir']) for record in records)


def test_a_run_with_another_recipe_is_marked_in_its_table(tmp_path):
    """Results files combined by hand can mix recipes (the runner refuses to): the table says
    which run differs and how, instead of comparing it as an equal."""
    base = dict(lr=0.1, wd=5e-4, epochs=8, batch_size=128)
    records = [dict(experiment='fashion-compare', dataset='fashion', family=family, L=12,
                    seed=seed, test_error=7.0 + seed / 10, name='fashion-%s-s%d' % (family, seed),
                    recipe=dict(base, lr=0.9) if (family, seed) == ('dmrnet', 1) else base)
               for family in ('resnet', 'dilnet', 'dmrnet') for seed in range(2)]
    table, = report.build(['fashion'], records, paper_numbers(), str(tmp_path))
    text = table.markdown()
    assert 'NOT COMPARABLE: 1 run(s) trained with another recipe' in text
    assert 'fashion-dmrnet-s1: lr 0.9 (others 0.1)' in text
    for record in records:
        record['recipe'] = base
    table, = report.build(['fashion'], records, paper_numbers(), str(tmp_path))
    assert 'NOT COMPARABLE' not in table.markdown()
