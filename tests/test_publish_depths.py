"""A family comparison at two depths (L = 12 and 24), as `make fashion-compare` leaves it in a
runs folder, reported and published: the table's row and Welch tests per L, the recipe sentence,
Figure 7-style curves per L, error against L beside the paper's CIFAR-10, COMMAND.md per depth,
seed 0's kept weights at both depths (an L = 24 one loaded through pretrained='fashion'), and
the partly finished state (the report shows what exists, publish refuses in one line). The run
folders are written here, without training: what the engine writes, with chosen errors."""
import json
import os
import shutil
import subprocess

import pytest

from dmrnet.paper import reference
from dmrnet.tools.experiments import (collect, definitions, figures, publish, report, results,
                                      stats, tables)
from dmrnet.utils.files import write_json

from checkout import REPO  # noqa: E402
EPOCHS = 3
# final test errors of seeds 0, 1, 2: per depth a different order of the gaps between families
ERRORS = {12: {'resnet': [7.7, 7.6, 7.5], 'dilnet': [7.3, 7.6, 7.5], 'dmrnet': [7.3, 7.2, 6.9]},
          24: {'resnet': [7.2, 7.0, 7.1], 'dilnet': [6.9, 6.8, 7.2], 'dmrnet': [6.6, 6.8, 6.7]}}
RECIPE = dict(epochs=EPOCHS, batch_size=128, optimizer='nag', lr=0.1, momentum=0.9,
              lr_schedule='fractions', lr_steps=None, lr_factor=0.1, wd=5e-4, augmentation=None,
              max_batches=None)


def _export(run, run_dir, real):
    """RUN/last-* as train/loop.py exports them: a real network where `real`, else stand-in
    bytes (exporting a network takes seconds)."""
    identity = dict(model=run['model'], family=run['family'], dataset=run['dataset'],
                    model_kwargs=dict(L=run['L'], classes=10, width=1), classes=10)
    if real:
        from dmrnet.symbols import get_model
        from dmrnet.symbols.deploy import export_model
        net = get_model(run['model'], **identity['model_kwargs'])
        net.initialize()
        export_model(net, os.path.join(run_dir, 'last'), epoch=EPOCHS,
                     input_shape=(1, 3, 28, 28), metadata=identity)
        return
    with open(os.path.join(run_dir, 'last-%04d.params' % EPOCHS), 'wb') as f:
        f.write(b'params of ' + run['name'].encode())
    write_json(os.path.join(run_dir, 'last-symbol.json'), {'nodes': []})
    write_json(os.path.join(run_dir, 'last-meta.json'), dict(identity, epoch=EPOCHS))


def make_run(run, finished=True, real_export=False):
    """A run folder of the runner (run.json) and the engine (log, summary, final export)."""
    run_dir = run['run_dir']
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, collect.RUN_FILE), run)
    final = ERRORS[run['L']][run['family']][run['seed']]
    with open(os.path.join(run_dir, 'log.jsonl'), 'w') as f:
        for epoch in range(1, EPOCHS + 1):
            f.write(json.dumps(dict(epoch=epoch, lr=0.1, train_loss=0.2 * (EPOCHS + 1 - epoch),
                                    train_error=10.0, seconds=600.0,
                                    test_error=final + EPOCHS - epoch)) + '\n')
    if not finished:
        return
    write_json(os.path.join(run_dir, 'summary.json'), dict(
        args=dict(RECIPE, model=run['model'], L=run['L'], cpus=1, gpus=''),
        model_kwargs=dict(L=run['L'], classes=10, width=1), params=1000 * run['L'],
        epochs=EPOCHS, final_test_error=final, final_train_loss=0.2, best_test_error=final))
    if run['seed'] == 0:
        _export(run, run_dir, real_export)


def runs_at(runs_dir, L, seeds=3):
    return definitions.build_runs('fashion-compare', seeds=seeds, runs_dir=str(runs_dir), L=L)


def make_experiment(runs_dir, depths=(12, 24), real_exports=()):
    """Every run of the comparison at `depths`, finished, seed 0's final models of
    `real_exports` real networks; then results.jsonl as the runner collects it."""
    for L in depths:
        for run in runs_at(runs_dir, L):
            make_run(run, real_export=run['model'] in real_exports)
    return collect.collect(os.path.join(str(runs_dir), 'fashion-compare'))


def make_recipe_choice(runs_dir):
    """What make fashion-recipe leaves: one seed per family and weight decay, at L = 12."""
    for wd, offset in (('1e-4', 0.1), ('5e-4', 0.0)):
        folder = os.path.join(str(runs_dir), 'fashion-recipe', 'wd' + wd, 'fashion-compare')
        os.makedirs(folder)
        with open(os.path.join(folder, 'results.jsonl'), 'w') as f:
            for family in ('resnet', 'dilnet', 'dmrnet'):
                f.write(json.dumps(dict(dataset='fashion_val', family=family, L=12, epochs=8,
                                        model=family, test_error=7.0 + offset,
                                        best_test_error=7.0)) + '\n')


@pytest.fixture(scope='module')
def published(tmp_path_factory):
    """The comparison at L = 12 and 24, 3 seeds each, published into results/fashion."""
    root = tmp_path_factory.mktemp('repo')
    runs, out = root / 'results' / 'fashion' / 'runs', root / 'results' / 'fashion'
    make_experiment(runs, real_exports=('dmrnet26',))   # loaded by pretrained='fashion'
    make_recipe_choice(runs)
    publish.main(['fashion-compare', '--runs-dir', str(runs), '--out', str(out),
                  '--command', 'make fashion-compare RUNS=%s' % runs, '--at-a-time', '2'])
    return root, runs, out


def test_table_has_a_row_and_welch_tests_per_depth(published):
    _, _, out = published
    text = (out / 'report.md').read_text()
    for L, errors in ERRORS.items():
        cells = ' | '.join(tables.fmt_ours(*stats.mean_std(errors[family]))
                           for family in ('resnet', 'dilnet', 'dmrnet'))
        assert '| Fashion-MNIST | %d | %s |' % (L, cells) in text, text
        assert '%d ± 0 (3) |' % (1000 * L) in text       # parameters, per depth
        for a, b in (('resnet', 'dilnet'), ('resnet', 'dmrnet'), ('dilnet', 'dmrnet')):
            diff, t, p = stats.welch(errors[a], errors[b])
            assert '| %d | %s - %s | %+.3f | %.2f | %.3g |' % (
                L, tables.LABELS[a], tables.LABELS[b], diff, t, p) in text
    assert text.index('| Fashion-MNIST | 12 |') < text.index('| Fashion-MNIST | 24 |')
    # one results file holds both depths, its runs named relative to it
    records = results.load_results([str(out / 'results.jsonl')])
    assert sorted({r['L'] for r in records}) == [12, 24] and len(records) == 18
    assert all(not os.path.isabs(json.loads(line)['run_dir'])
               for line in (out / 'results.jsonl').read_text().splitlines())


def test_report_tests_each_family_between_depths(published):
    """The deeper row against the shallower, per family: ERRORS drops every family by 0.3-0.6
    points from L = 12 to 24, so the sign says which depth is subtracted from which."""
    _, _, out = published
    text = (out / 'report.md').read_text()
    for family in ('resnet', 'dilnet', 'dmrnet'):
        diff, t, p = stats.welch(ERRORS[24][family], ERRORS[12][family])
        assert diff < 0
        assert '| %s | 12 -> 24 | test error | %+.4g | %.2f | %.3g |' % (
            tables.LABELS[family], diff, t, p) in text, text


def test_report_says_the_deeper_runs_reuse_the_recipe(published):
    _, _, out = published
    text = (out / 'report.md').read_text()
    assert 'every run (L = 12, 24) trained with one recipe: 3 epochs, batch 128' in text
    assert 'weight decay 0.0005' in text
    assert ('chosen on the validation split (fashion_val) at L = 12, one seed per family: '
            'wd 5e-4, of the candidates 1e-4, 5e-4') in text
    assert ('The L = 24 runs use the L = 12 recipe unchanged: it was not chosen again for '
            'them, on the validation split or on the test set.') in text


def test_figures_per_depth_and_error_against_L(published):
    _, _, out = published
    for name in ('figure7_fashion.png', 'figure7_fashion_seeds.png', 'figure7_fashion_L24.png',
                 'figure7_fashion_L24_seeds.png', 'error_vs_L_fashion.png',
                 'table2_params_fashion.png'):
        with open(str(out / name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n', name
    assert not (out / 'figure7_fashion_L12.png').exists()
    assert (out / 'error_vs_L_fashion.png').stat().st_size > 20000


def test_curves_of_each_depth_are_drawn_from_its_runs(tmp_path, monkeypatch):
    """figure7: at each L the seed-0 runs of that L go into one figure and all seeds into the
    other, named after L (the smallest keeps the plain name); L = 54 would take it over."""
    from dmrnet.train import curves
    drawn = {}
    monkeypatch.setattr(curves, 'plot_runs', lambda run_dirs, path, **kw: drawn.update(
        {os.path.basename(path): [os.path.basename(d) for d in run_dirs]}))
    monkeypatch.setattr(curves, 'plot_seeds', lambda groups, path, **kw: drawn.update(
        {os.path.basename(path): sorted(os.path.basename(d) for _, ds in groups for d in ds)}))
    records = make_experiment(tmp_path)
    figures.figure7(records, str(tmp_path / 'report'))
    assert drawn['figure7_fashion.png'] == [
        'fashion-resnet26-s0', 'fashion-dilnet14-s0', 'fashion-dmrnet14-s0']
    assert drawn['figure7_fashion_L24.png'] == [
        'fashion-resnet50-s0', 'fashion-dilnet26-s0', 'fashion-dmrnet26-s0']
    assert drawn['figure7_fashion_L24_seeds.png'] == sorted(
        run['name'] for run in runs_at(tmp_path, 24))
    assert len(drawn['figure7_fashion_seeds.png']) == 9 and len(drawn) == 4
    assert figures.figure7_stem('cifar10', 54, [12, 54]) == 'figure7_cifar10'
    assert figures.figure7_stem('cifar10', 12, [12, 54]) == 'figure7_cifar10_L12'


def test_error_against_L_points_and_when_it_is_drawn(tmp_path):
    records = make_experiment(tmp_path)
    points = figures.error_by_L(records)
    L, mean, low, high, n = points['dilnet'][1]
    assert (L, low, high, n) == (24, 6.8, 7.2, 3) and mean == pytest.approx(6.9667, abs=1e-4)
    assert [p[0] for p in points['resnet']] == [12, 24]
    numbers = reference.paper_numbers()
    assert reference.table2_by_L(numbers)[24]['cifar10']['dmrnet'] == [5.47, 0.14]
    written = figures.error_vs_L_plots(records, numbers, str(tmp_path / 'a'))
    assert [os.path.basename(p) for p in written] == ['error_vs_L_fashion.png']
    one_depth = [r for r in records if r['L'] == 12]
    assert figures.error_vs_L_plots(one_depth, numbers, str(tmp_path / 'b')) == []
    assert not (tmp_path / 'b').exists()


def test_command_md_names_each_depth(published):
    _, runs, out = published
    text = (out / 'COMMAND.md').read_text()
    assert '    make fashion-compare RUNS=%s\n    make fashion-compare RUNS=%s L=24\n' % (
        runs, runs) in text
    # 18 runs x 3 epochs x 600 s = 9 hours; 9 runs a depth, 4.5 hours
    assert '18 finished runs, 9.0 hours of training summed over the runs; 2 ran at a time, ' \
           'so about 4.5 hours of wall-clock time.' in text
    assert ('- L = 24 (resnet50, dilnet26, dmrnet26; seeds 0-2): 9 runs, 4.5 hours of training'
            '; 2 ran at a time, so about 2.2 hours of wall-clock time.') in text
    assert '- L = 12 (resnet26, dilnet14, dmrnet14; seeds 0-2): 9 runs' in text


def test_seed_0_weights_kept_at_both_depths(published, monkeypatch):
    root, runs, out = published
    models = ('resnet26', 'dilnet14', 'dmrnet14', 'resnet50', 'dilnet26', 'dmrnet26')
    assert sorted(os.listdir(str(out / 'weights'))) == sorted(
        '%s-%s' % (model, part) for model in models
        for part in ('0000.params', 'meta.json', 'symbol.json'))
    for model in models:
        meta = json.loads((out / 'weights' / (model + '-meta.json')).read_text())
        assert meta['run'] == 'fashion-%s-s0' % model and meta['trained_epochs'] == EPOCHS
        run_dir = runs / 'fashion-compare' / meta['run']
        assert (out / 'weights' / (model + '-0000.params')).read_bytes() == (
            run_dir / ('last-%04d.params' % EPOCHS)).read_bytes()
    import mxnet as mx
    import numpy as np
    from dmrnet.symbols import get_model, registry
    from dmrnet.symbols.deploy import import_model
    monkeypatch.setattr(registry, 'WEIGHTS_ROOT', str(root / 'results'))
    monkeypatch.delenv(registry.WEIGHTS_ROOT_ENV, raising=False)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 28, 28))
    net = get_model('dmrnet26', pretrained='fashion')
    np.testing.assert_allclose(net(x).asnumpy(),
                               import_model(str(out / 'weights' / 'dmrnet26'))(x).asnumpy(),
                               rtol=1e-5, atol=1e-4)   # an untrained net's logits reach 50
    assert (out / 'weights' / 'dmrnet26-0000.params').stat().st_size > 2 << 20   # 3 MB: kept


def test_partly_finished_reported_and_publish_refused(tmp_path, capsys):
    """L = 24 with only ResNet-50's seed 0 finished and DILNet-26's running: the report shows
    what exists (a row with one run, no test at L = 24); publish writes nothing and says what
    is missing in one line."""
    runs = tmp_path / 'runs'
    make_experiment(runs, depths=(12,))
    for run in runs_at(runs, 24)[:2]:    # seed-major: seed 0 of ResNet-50, then DILNet-26
        make_run(run, finished=run['family'] == 'resnet')
    collect.collect(str(runs / 'fashion-compare'))
    assert report.main(['fashion', '--runs-dir', str(runs), '--out', str(tmp_path / 'rep')]) == 0
    text = capsys.readouterr().out
    assert '| Fashion-MNIST | 24 | 7.20 ± 0.00 (1) | - | - |' in text
    assert '| 12 | ResNet - DMRNet |' in text and '| 24 | ResNet' not in text
    assert (tmp_path / 'rep' / 'error_vs_L_fashion.png').exists()
    assert not (tmp_path / 'rep' / 'figure7_fashion_L24.png').exists()   # no DMRNet-26 yet
    out = tmp_path / 'results'
    with pytest.raises(SystemExit) as e:
        publish.main(['fashion-compare', '--runs-dir', str(runs), '--out', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert ('fashion-compare is not finished: L = 24 has 1 of 9 runs; started and not '
            'finished: fashion-dilnet26-s0;') in err[0]
    assert not out.exists()


def test_runs_of_another_recipe_or_too_large_are_refused(tmp_path, monkeypatch):
    """Nothing is published when a depth trained with other settings than the rest, when the
    runs did not train with the setting the validation split chose, or when a kept weight file
    would be larger than the repository takes."""
    runs, out = tmp_path / 'runs', tmp_path / 'results'
    make_experiment(runs)
    summary = runs / 'fashion-compare' / 'fashion-dmrnet26-s1' / 'summary.json'
    kept = summary.read_text()
    changed = json.loads(kept)
    changed['args']['wd'] = 1e-4
    summary.write_text(json.dumps(changed))
    with pytest.raises(ValueError, match='did not all train with one recipe: L = 12, 24: .*'
                                         'weight decay 0.0005; L = 24: .*weight decay 0.0001'):
        publish.publish('fashion-compare', str(runs), str(out))
    summary.write_text(kept)
    make_recipe_choice(runs)
    shutil.rmtree(str(runs / 'fashion-recipe' / 'wd5e-4'))   # only 1e-4 left: the choice
    with pytest.raises(ValueError, match='trained with wd 0.0005, not the wd 1e-4 chosen'):
        publish.publish('fashion-compare', str(runs), str(out))
    shutil.rmtree(str(runs / 'fashion-recipe'))
    monkeypatch.setattr(publish, 'WEIGHTS_LIMIT', 16)
    with pytest.raises(ValueError, match=r'fashion-dilnet14-s0/last-0003.params is \d+ bytes, '
                                         'more than the 16'):
        publish.publish('fashion-compare', str(runs), str(out))
    assert not out.exists()


@pytest.mark.skipif(shutil.which('git') is None or subprocess.call(
    ['git', '-C', REPO, 'rev-parse', '--is-inside-work-tree'], stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL) != 0, reason='not a git checkout')
def test_gitignore_keeps_seed_0s_final_export_at_every_depth():
    """results/fashion/runs/.gitignore keeps what make fashion-publish needs from a committed
    run (seed 0's last-*.params, the source of the kept weights) at L = 12 and 24, and leaves
    the other seeds' exports and every checkpoint out."""
    def ignored(run, name):
        path = os.path.join('results', 'fashion', 'runs', 'fashion-compare', run['name'], name)
        return subprocess.call(['git', '-C', REPO, 'check-ignore', '-q', '--no-index', path]) == 0

    for L in (12, 24):
        for run in runs_at('runs', L, seeds=2):
            assert ignored(run, 'last-0008.params') == (run['seed'] != 0), run['name']
            for name in ('ckpt-0008.params', 'ckpt-0008.states', 'best-0006.params'):
                assert ignored(run, name), (run['name'], name)
            for name in ('log.jsonl', 'summary.json', 'run.json', 'last-meta.json',
                         'last-symbol.json'):
                assert not ignored(run, name), (run['name'], name)
