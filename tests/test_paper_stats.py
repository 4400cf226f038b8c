"""dmrnet.paper (its constants, the reader of numbers.json, and that the two agree) and the
report's statistics (tools/experiments/stats.py): fast, no training, no MXNet."""
import json
import math
import subprocess
import sys

import pytest

from dmrnet import paper
from dmrnet.paper import reference
from dmrnet.tools.experiments.stats import mean_std, welch


def test_mean_std_is_the_sample_std_over_present_values():
    mean, std, n = mean_std([5.0, 5.4])
    assert (round(mean, 6), round(std, 4), n) == (5.2, 0.2828, 2)
    assert mean_std([1, None, 2, 3]) == (2.0, 1.0, 3)      # n - 1 in the denominator
    assert mean_std([4.9]) == (4.9, 0.0, 1)
    assert mean_std([]) == mean_std([None]) == (None, None, 0)


def test_welch_against_the_formula():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    diff, t, p = welch(a, b)
    # t = (mean a - mean b) / sqrt(var a / n_a + var b / n_b), variances with n - 1
    assert diff == pytest.approx(-3.5)
    assert t == pytest.approx(-3.5 / math.sqrt(1 / 3 + (5 / 3) / 4))
    assert 0.001 < p < 0.05
    swapped = welch(b, a)
    assert swapped[0] == pytest.approx(3.5) and swapped[1] == pytest.approx(-t)
    assert swapped[2] == pytest.approx(p)


# SciPy warns about the side without spread; the test is still the one Welch defines
@pytest.mark.filterwarnings('ignore:Precision loss')
def test_welch_needs_two_values_a_side_and_some_spread():
    assert welch([1.0], [2.0, 3.0]) is None
    assert welch([1.0, None], [2.0, 3.0]) is None           # missing values do not count
    assert welch([2.0, 2.0], [2.0, 2.0]) is None
    assert welch([2.0, 2.0], [1.0, 3.0]) is not None        # spread on one side is enough


def test_the_reader_finds_the_numbers_and_refuses_a_missing_file(tmp_path):
    numbers = reference.paper_numbers()
    assert numbers['table2_resnet_dilnet_dmrnet'][6]['L'] == 54
    assert reference.table2_by_L(numbers)[54]['cifar10']['dmrnet'] == [4.96, 0.06]
    with pytest.raises(FileNotFoundError):
        reference.paper_numbers(str(tmp_path / 'nonexistent.json'))
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'table2_resnet_dilnet_dmrnet': [{'L': 6}]}))
    assert reference.table2_by_L(reference.paper_numbers(str(other))) == {6: {'L': 6}}


def test_the_constants_agree_with_the_printed_numbers():
    """The constants and numbers.json say the same facts twice (the constants are what code
    imports cheaply): they must not drift apart."""
    numbers = reference.paper_numbers()
    table2 = numbers['table2_resnet_dilnet_dmrnet']
    assert tuple(row['L'] for row in table2) == paper.TABLE2_L == tuple(paper.AUTHORS_TABLE2)
    for row in table2:
        assert set(paper.TABLE2_DATASETS) <= set(row)
        assert set(row['cifar10']) == set(paper.FAMILIES)
        assert row['resnet_depth'] == paper.table2_depth('resnet', row['L'])
        assert row['dmrnet_depth'] == paper.table2_depth('dmrnet', row['L'])
    table5 = numbers['table5_identity_vs_merge_and_run']
    assert sorted({row['L'] for row in table5}) == list(paper.TABLE5_L)
    assert all(set(paper.TABLE5_DATASETS) <= set(row) for row in table5)
    assert {(row['model'], row['depth']) for row in numbers['table3_state_of_the_art']} == \
        set(paper.TABLE3_MODELS)
    authors = numbers['training']['cifar_svhn']
    assert authors['batch_size'] // authors['devices'] == paper.AUTHORS_IMAGES_PER_DEVICE


def test_authors_counts_by_preset():
    counts = paper.authors_counts()
    assert len(counts) == 3 * len(paper.TABLE2_L) + len(paper.AUTHORS_OTHER)
    assert counts['resnet110'] == 1730714 and counts['dmrnet14'] == 349402
    assert counts['dmrnet_wide32'] == paper.AUTHORS_OTHER['dmrnet_wide32']


def test_paper_and_the_report_load_without_mxnet():
    code = ('import sys, dmrnet.paper.reference, dmrnet.tools.experiments.report; '
            'print(sorted(m for m in ("mxnet", "dmrnet.symbols") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == '[]'
