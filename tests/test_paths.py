"""tools/analysis/paths.py: exact path-length distributions against brute force and the
paper's closed forms (Section 3.2), and the Figure 6 nets' average length L + 3 (Section 4.3)."""
import collections
import json
from fractions import Fraction

import pytest

from dmrnet.tools.analysis import paths


@pytest.mark.parametrize('family', ['resnet', 'dilnet', 'dmrnet', 'identity'])
@pytest.mark.parametrize('L', [2, 4, 6, 8])
@pytest.mark.parametrize('B', [1, 2, 3])
def test_dp_equals_brute_force(family, L, B):
    blocks = paths.network_blocks(family, L, B)
    brute = collections.Counter(paths.brute_force_lengths(blocks))
    assert paths.chain_distribution(blocks) == dict(sorted(brute.items()))


def test_dp_equals_brute_force_once_head_and_three_branches():
    for blocks in (paths.network_blocks('dmrnet', 6, 2, head='once'),
                   paths.network_blocks('dmrnet', 6, 2, K=3),
                   paths.network_blocks('dilnet', 9, 2, K=3)):
        brute = collections.Counter(paths.brute_force_lengths(blocks))
        assert paths.chain_distribution(blocks) == dict(sorted(brute.items()))


@pytest.mark.parametrize('L', [12, 18, 24, 30, 36, 48, 54, 96])
@pytest.mark.parametrize('B', [1, 2, 3])
def test_closed_forms(L, B):
    Lp = L // 2
    expect = {'resnet': (B * Lp + 2, 2 ** (2 * Lp)),
              'dilnet': (Fraction(2 * B, 3) * Lp + 2, 3 ** Lp),
              'dmrnet': (Fraction(B, 3) * Lp + 2, 2 * 3 ** Lp)}
    for fam, (mean, count) in expect.items():
        n, m, var = paths.moments(paths.distribution(fam, L, B))
        assert (n, m) == (count, mean), fam
        assert (m, var) == paths.closed_form(fam, L, B), fam
    # the variances: B^2 L'/2 for ResNet, 2 B^2 L'/9 for DILNet and DMRNet
    assert paths.moments(paths.distribution('resnet', L, B))[2] == Fraction(B * B * Lp, 2)
    assert paths.moments(paths.distribution('dmrnet', L, B))[2] == Fraction(2 * B * B * Lp, 9)


def test_authors_once_head_is_B_over_6_longer():
    for L in (12, 54, 96):
        _, m, _ = paths.moments(paths.distribution('dmrnet', L, 2, head='once'))
        assert m == Fraction(2, 3) * (L // 2) + 2 + Fraction(2, 6)


def test_per_block_averages_of_the_introduction():
    # "The average length of two residual blocks is 2, ... inception-like block and
    # merge-and-run block are 4/3 and 2/3" (B = 2, without the 2 extra layers)
    assert paths.moments(paths.distribution('resnet', 2, 2))[1] - 2 == 2
    assert paths.moments(paths.distribution('dilnet', 2, 2))[1] - 2 == Fraction(4, 3)
    assert paths.moments(paths.distribution('dmrnet', 2, 2))[1] - 2 == Fraction(2, 3)


@pytest.mark.parametrize('L', [9, 18, 27, 54, 90])
def test_pathnet_average_is_L_plus_3(L):
    assert paths.pathnet_mean(L, 3) == L + 3
    assert paths.pathnet_mean(L, 6) == L + 3
    assert paths.pathnet_mean(L, 3, count_projections=False) == L + 2


def test_cli_json_and_plot(tmp_path, capsys):
    png = tmp_path / 'p.png'
    assert paths.main(['--L', '54', '--B', '2', '--json', '--plot', str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    fams = out['families']
    assert [fams[f]['mean'] for f in ('resnet', 'dilnet', 'dmrnet')] == [56.0, 38.0, 20.0]
    assert all(fams[f]['matches_closed_form'] for f in fams)
    assert sum(fams['dmrnet']['distribution'].values()) == 2 * 3 ** 27
    assert png.stat().st_size > 1000
    fig3 = tmp_path / 'f3.png'
    assert paths.main(['--figure3', str(fig3)]) == 0
    assert fig3.stat().st_size > 1000


@pytest.mark.parametrize('bad', [['--L', '7'], ['--L', '0'], ['--B', '-1'],
                                 ['--pathnet', '--L', '10']])
def test_cli_bad_input(bad, capsys):
    with pytest.raises(SystemExit) as e:
        paths.main(bad)
    assert e.value.code == 2 and 'error:' in capsys.readouterr().err
