"""tools/analysis/flow.py: M idempotent (Eq. 4-5) and per-branch gradient norms at
initialisation; tools/analysis/draw.py's text summaries."""
import json

import numpy as np
import pytest

from dmrnet.symbols import merge_and_run_matrix
from dmrnet.tools.analysis import flow


def test_merge_and_run_matrix_is_idempotent():
    for K in (2, 3, 4):
        M = merge_and_run_matrix(K, 3)
        P = M
        for _ in range(10):
            P = P @ M
            np.testing.assert_allclose(P, M, atol=1e-12)
    assert all(e < 1e-12 for e in flow.idempotence().values())


def test_cli_gradient_norms_one_per_branch(tmp_path, capsys):
    png = tmp_path / 'flow.png'
    assert flow.main(['--L', '6', '--batch', '2', '--json', '--plot', str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out['gradient_norms']) == {'resnet', 'dilnet', 'dmrnet'}
    for g in out['gradient_norms'].values():   # one norm per residual branch, all nonzero
        assert len(g) == 6 and all(np.isfinite(g)) and all(v > 0 for v in g)
    assert all(e < 1e-12 for e in out['idempotence_max_error'].values())
    # gradient reaching each block: one value per block (6 ResNet blocks, 3 two-branch blocks)
    bg = out['block_input_gradient_norms']
    assert [len(bg[f]) for f in ('resnet', 'dilnet', 'dmrnet')] == [6, 3, 3]
    assert out['branches_before_block']['dmrnet'] == [0, 2, 4]
    assert all(np.isfinite(v) and v > 0 for g in bg.values() for v in g)
    assert png.stat().st_size > 1000


def test_block_by_block_forward_is_the_network_forward():
    """The probes of block_input_gradients ride on flow.forward_by_blocks: it must compute what
    the network computes (single stream, two streams sharing a stem, two stems and heads)."""
    import mxnet as mx
    from dmrnet.symbols import get_model
    x = mx.nd.array(np.random.RandomState(0).randn(2, 3, 32, 32).astype('float32'))
    for name, kw in (('resnet', {'L': 6}), ('dmrnet', {'L': 12}),
                     ('identity', {'L': 6, 'share': False})):
        net = get_model(name, **kw)
        net.initialize()
        logits, shapes = flow.forward_by_blocks(net, x)
        np.testing.assert_allclose(logits.asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)
        assert len(shapes) == len(net.blocks)


def test_draw_text_summary(tmp_path, capsys):
    # tools/analysis/draw.py: without `dot` (or with --format blocks) a per-block table;
    # 'layers' is mx.viz.print_summary. The table's parameter total is the network's exact count.
    from dmrnet.tools.analysis import draw
    assert draw.main(['--model', 'dmrnet14', '--format', 'blocks']) == 0
    out = capsys.readouterr().out
    assert '349402 trainable parameters' in out and out.count('MergeAndRunBlock') == 6
    f = tmp_path / 'resnet26.txt'
    assert draw.main(['--model', 'resnet26', '--format', 'layers', '-o', str(f)]) == 0
    assert 'Total params: 369690' in f.read_text()


def test_draw_falls_back_to_text_without_graphviz(monkeypatch, capsys):
    from dmrnet.tools.analysis import draw
    monkeypatch.setattr(draw, 'graphviz_available', lambda: False)
    assert draw.main(['--model', 'dilnet14']) == 0            # auto -> block table
    out = capsys.readouterr().out
    assert '346650 trainable parameters' in out and 'stage3_block' in out
    with pytest.raises(SystemExit):                            # asked for a drawing: refused
        draw.main(['--model', 'dilnet14', '--format', 'graph'])
    assert 'graphviz' in capsys.readouterr().err
    for bad in (['--model', 'nope'], ['--model', 'dmrnet', '--arg', 'L=7'],
                ['--model', 'dmrnet', '--arg', 'L']):
        with pytest.raises(SystemExit):
            draw.main(bad)
        assert 'error:' in capsys.readouterr().err


def test_cli_bad_L(capsys):
    with pytest.raises(SystemExit):
        flow.main(['--L', '9'])
    assert 'multiple of 6' in capsys.readouterr().err
