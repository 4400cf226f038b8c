"""tools/experiments/runner.py: run lists, the scaled recipe, skipping finished runs and
collecting results, with a fake train script (tests/data/fake_train.py); plus an end-to-end smoke
test with the real train/digits.py and the report (test_digits_end_to_end_smoke)."""
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from dmrnet import paper
from dmrnet.tools.experiments import collect, commands, definitions, scheduler
from dmrnet.tools.experiments import runner as ex
from dmrnet.tools.experiments.layout import EXPERIMENTS
from dmrnet.tools.experiments.results import load_results
from dmrnet.utils import runtime
from runs import processes_gone

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, 'data', 'fake_train.py')
from checkout import REPO  # noqa: E402


def test_run_counts():
    for ds in ('cifar10', 'cifar100', 'svhn'):
        runs = definitions.build_runs('table2', [ds])
        assert len(runs) == 3 * 8 * 5
        assert {r['family'] for r in runs} == {'resnet', 'dilnet', 'dmrnet'}
        assert sorted({r['L'] for r in runs}) == list(paper.TABLE2_L)
        assert len({r['name'] for r in runs}) == len(runs)
    assert len(definitions.build_runs('table2')) == 3 * 3 * 8 * 5
    assert len(definitions.build_runs('table3')) == 3 * 5
    assert len(definitions.build_runs('table5')) == 2 * 8
    assert len(definitions.build_runs('figure6')) == 2 * len(paper.FIGURE6_L)
    assert len(definitions.build_runs('imagenet-compare')) == 2
    dc = definitions.build_runs('digits-compare')
    assert len(dc) == 3 * 5 and {r['model'] for r in dc} == {'resnet26', 'dilnet14', 'dmrnet14'}
    assert len(definitions.build_runs('table2', ['cifar10'], seeds=2)) == 48


def test_models_exist_and_commands():
    from dmrnet.symbols import get_model_list
    presets = set(get_model_list())
    for exp in EXPERIMENTS:
        for r in definitions.build_runs(exp):
            assert r['model'] in presets or r['model_args'], r['name']
    r = definitions.build_runs('figure6', scale=0.01)[0]
    cmd = commands.command(r, python='py', gpu='1', data_dir='/d')
    assert cmd[:3] == ['py', os.path.join(REPO, 'train/cifar.py'), '--model']
    for opt in ('--L', '--blocks', '--epochs', '--max-batches', '--save-dir', '--seed',
                '--gpus', '--data-dir', '--dataset'):
        assert opt in cmd
    assert cmd[cmd.index('--epochs') + 1] == '4'          # 400 * 0.01
    assert cmd[cmd.index('--max-batches') + 1] == '8'     # ceil(782 * 0.01)
    r2 = definitions.build_runs('table2', ['cifar100'])[0]
    cmd = commands.command(r2, data_root='/data')
    assert cmd[cmd.index('--data-dir') + 1] == '/data/cifar100'
    full = commands.command(definitions.build_runs('table2', ['svhn'])[0])
    assert '--max-batches' not in full and full[full.index('--epochs') + 1] == '40'


def _run(tmp_path, *extra):
    # scale 0.2 of the digits recipe (dmrnet.train.recipes: 10 epochs, 23 batches of 64)
    return ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                    '--seeds', '2', '--scale', '0.2'] + list(extra))


def test_runs_skip_finished_and_collect(tmp_path, monkeypatch):
    monkeypatch.setenv('FAKE_TRAIN_FAIL', 'dilnet14-s1')
    assert _run(tmp_path) == 1                    # one run failed
    results = tmp_path / 'digits-compare' / 'results.jsonl'
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(recs) == 5
    r = [x for x in recs if x['name'] == 'digits-dmrnet14-s1'][0]
    assert r['family'] == 'dmrnet' and r['L'] == 12 and r['seed'] == 1 and r['epochs'] == 2
    assert r['test_error'] == pytest.approx(11.0 + 0.8 + 0.5)
    assert r['final_train_error'] == 10.0 and r['params'] == 1001
    run_dir = tmp_path / 'digits-compare' / 'digits-dmrnet14-s1'
    argv = json.loads((run_dir / 'argv.json').read_text())
    assert argv[argv.index('--max-batches') + 1] == '5'   # ceil(23 * 0.2)
    # second call: only the failed run is launched again
    stamp = os.path.getmtime(run_dir / 'summary.json')
    monkeypatch.delenv('FAKE_TRAIN_FAIL')
    assert _run(tmp_path) == 0
    assert os.path.getmtime(run_dir / 'summary.json') == stamp
    assert len(results.read_text().splitlines()) == 6


def test_gpus_this_machine_cannot_use_are_refused_once(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ex.main(['table5', '--dataset', 'digits', '--runs-dir', str(tmp_path),
                 '--train-script', FAKE, '--gpus', '0,1', '--epochs', '1'])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1
    assert 'the installed MXNet is the CPU build' in err[0] and not (tmp_path / 'table5').exists()


def test_gpu_slots_and_dry_run(tmp_path, capsys, monkeypatch):
    from dmrnet.utils import cuda
    monkeypatch.setattr(cuda, 'gpu_problem', lambda ids: None)   # the fake trainer needs none
    assert ex.main(['table5', '--dataset', 'digits', '--runs-dir', str(tmp_path),
                    '--train-script', FAKE, '--gpus', '0,1', '--gpus-per-run', '1',
                    '--epochs', '1']) == 0
    gpus = set()
    for d in (tmp_path / 'table5').iterdir():
        if d.is_dir():
            argv = json.loads((d / 'argv.json').read_text())
            gpus.add(argv[argv.index('--gpus') + 1])
    assert gpus <= {'0', '1'} and gpus
    assert ex.main(['table5', '--dataset', 'digits', '--runs-dir', str(tmp_path),
                    '--dry-run']) == 0
    assert '8 runs (8 finished)' in capsys.readouterr().out
    assert scheduler.group_gpus(['0', '1', '2', '3'], 2) == ['0,1', '2,3']
    assert ex.main(['imagenet-compare', '--runs-dir', str(tmp_path), '--gpus', '0,1,2,3',
                    '--gpus-per-run', '2', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert '--gpus 0,1' in out and '--gpus 2,3' in out
    # By default a digits run (total batch 64) gets two GPUs: 32 images a device.
    assert ex.main(['digits-compare', '--runs-dir', str(tmp_path / 'pairs'), '--gpus',
                    '0,1,2,3', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert '--gpus 0,1' in out and '--gpus 2,3' in out and '--gpus 0 ' not in out


def test_cpu_jobs_run_together_and_share_the_cores(tmp_path, monkeypatch, capsys):
    # importing dmrnet set OMP_NUM_THREADS in this process: that default is not the user's
    assert os.environ['OMP_NUM_THREADS']
    monkeypatch.setattr(runtime, 'USER_OMP_THREADS', None)
    monkeypatch.setattr(runtime, 'usable_cores', lambda: 4)
    monkeypatch.setenv('FAKE_TRAIN_SLEEP', '1.5')
    assert ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                    '--seeds', '1', '--epochs', '1', '--jobs', '2']) == 0
    spans = sorted((json.loads(p.read_text()) for p in
                    (tmp_path / 'digits-compare').glob('*/span.json')), key=lambda s: s['start'])
    assert len(spans) == 3 and {s['omp'] for s in spans} == {'2'}   # 4 cores / 2 runs
    first, second, third = spans
    assert second['start'] < first['end']        # the first two ran at the same time
    assert third['start'] >= min(first['end'], second['end']) - 0.05   # never three at once
    assert 'OMP_NUM_THREADS=2 ' in (tmp_path / 'digits-compare' / 'digits-dmrnet14-s0' /
                                    'train.out').read_text()
    # one run left of three: it gets all four cores, not the two of a shared slot
    (tmp_path / 'digits-compare' / 'digits-dmrnet14-s0' / 'summary.json').unlink()
    monkeypatch.setenv('FAKE_TRAIN_SLEEP', '0')
    assert ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                    '--seeds', '1', '--epochs', '1', '--jobs', '2']) == 0
    again = json.loads((tmp_path / 'digits-compare' / 'digits-dmrnet14-s0' / 'span.json')
                       .read_text())
    assert again['omp'] == '4' and again['start'] > third['end']
    # the OMP_NUM_THREADS the user set is each run's
    monkeypatch.setattr(runtime, 'USER_OMP_THREADS', '3')
    assert scheduler.cpu_threads(2) == 3
    monkeypatch.setattr(runtime, 'USER_OMP_THREADS', None)
    assert scheduler.cpu_threads(8) == 1 and scheduler.cpu_threads(1) == 4
    for bad, message in ((['--jobs', '0'], '--jobs must be >= 1'),
                         (['--jobs', '2', '--gpus', '0,1'], '--jobs is for CPU runs')):
        with pytest.raises(SystemExit):
            ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--dry-run'] + bad)
        assert message in capsys.readouterr().err


def test_unfinished_run_with_checkpoint_is_resumed(tmp_path):
    run = definitions.build_runs('digits-compare', seeds=1, runs_dir=str(tmp_path))[0]
    assert '--resume' not in commands.command(run)
    os.makedirs(run['run_dir'])
    (tmp_path / 'digits-compare' / run['name'] / 'last.json').write_text('{}')
    cmd = commands.command(run)
    assert cmd[cmd.index('--resume') + 1] == run['run_dir'] and collect.resumable(run)
    (tmp_path / 'digits-compare' / run['name'] / 'summary.json').write_text('{}')
    assert '--resume' not in commands.command(run) and not collect.resumable(run)


def test_presets_get_L_and_width_pinned():
    # train/digits.py defaults to L=6; a preset name alone would be rebuilt with that L
    for exp in ('digits-compare', 'table3'):
        for r in definitions.build_runs(exp, ['digits']):
            cmd = commands.command(r)
            if r['L'] is not None:
                assert cmd[cmd.index('--L') + 1] == str(r['L']), r['name']
            if r['width'] is not None:
                assert cmd[cmd.index('--width') + 1] == str(r['width']), r['name']
    wide = [r for r in definitions.build_runs('table3', ['cifar10'])
            if r['model'] == 'dmrnet_wide32'][0]
    cmd = commands.command(wide)
    assert cmd[cmd.index('--L') + 1] == '30' and cmd[cmd.index('--width') + 1] == '4'


def test_sigterm_stops_the_running_training_process(tmp_path):
    env = dict(os.environ, FAKE_TRAIN_SLEEP='120')
    script = os.path.join(REPO, 'tools', 'experiments', 'runner.py')
    runner = subprocess.Popen([sys.executable, script, 'digits-compare', '--runs-dir',
                               str(tmp_path), '--train-script', FAKE, '--seeds', '1',
                               '--epochs', '1'], env=env, cwd=REPO)
    pid_file = tmp_path / 'digits-compare' / 'digits-resnet26-s0' / 'pid'
    deadline = time.time() + 60
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), 'the fake training run never started'
    time.sleep(0.3)                     # let the child finish writing its pid
    child = int(pid_file.read_text())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(60) == 130
    with pytest.raises(ProcessLookupError):   # stopped and reaped, not orphaned
        os.kill(child, 0)
    assert not (tmp_path / 'digits-compare' / 'digits-dilnet14-s0').exists()  # no new run


def _start_sleeping_runner(tmp_path, seconds='120'):
    """A runner whose first fake training sleeps; returns (runner, the training's pid)."""
    env = dict(os.environ, FAKE_TRAIN_SLEEP=seconds)
    script = os.path.join(REPO, 'tools', 'experiments', 'runner.py')
    runner = subprocess.Popen([sys.executable, script, 'digits-compare', '--runs-dir',
                               str(tmp_path), '--train-script', FAKE, '--seeds', '1',
                               '--epochs', '1'], env=env, cwd=REPO, stderr=subprocess.PIPE,
                              text=True)
    pid_file = tmp_path / 'digits-compare' / 'digits-resnet26-s0' / 'pid'
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), 'the fake training run never started'
    return runner, int(pid_file.read_text())


def test_a_killed_runner_takes_its_training_with_it_and_a_rerun_completes(tmp_path):
    runner, child = _start_sleeping_runner(tmp_path)
    runner.kill()                       # SIGKILL: no handler of the runner runs
    runner.wait()
    assert not processes_gone([child], 5), 'the training process outlived its killed runner'
    # an immediate rerun finds nothing holding the folders and finishes every run
    assert ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                    '--seeds', '1', '--epochs', '1']) == 0
    results = (tmp_path / 'digits-compare' / 'results.jsonl').read_text().splitlines()
    assert sorted(json.loads(line)['family'] for line in results) == sorted(paper.FAMILIES)


def test_a_second_runner_on_the_same_experiment_is_refused(tmp_path, capsys):
    first, child = _start_sleeping_runner(tmp_path)
    try:
        with pytest.raises(SystemExit) as e:
            ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                     '--seeds', '1', '--epochs', '1'])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1
        assert 'is being run by another runner (process %d)' % first.pid in err[0]
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)


def test_passthrough_options_reach_the_train_script(tmp_path):
    assert ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--train-script', FAKE,
                    '--seeds', '1', '--epochs', '1', '--filter', '*dmrnet*',
                    '--train-args=--no-progress', '--', '--max-val-batches', '2']) == 0
    argv = json.loads((tmp_path / 'digits-compare' / 'digits-dmrnet14-s0' / 'argv.json')
                      .read_text())
    assert argv[-3:] == ['--no-progress', '--max-val-batches', '2']


@pytest.mark.parametrize('bad', [['--gpus', '0,a'], ['--gpus', '1,1'], ['--L', '10'],
                                 ['--seeds', '0'], ['--epochs', '0'], ['--scale', '1.5'],
                                 ['--dataset', 'mnist'], ['--filter', 'nothing*'],
                                 ['--data-dir', '/nonexistent/dir'], ['--gpus-per-run', '0'],
                                 ['--data-root', '/nonexistent/dir'],
                                 ['--data-root', '/tmp', '--data-dir', '/tmp'],
                                 ['--gpus', '0,1,2', '--gpus-per-run', '2'],
                                 ['--train-script', '/nonexistent.py']])
def test_bad_input_is_refused_with_a_message(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as e:
        ex.main(['digits-compare', '--runs-dir', str(tmp_path), '--dry-run'] + bad)
    assert e.value.code == 2
    assert 'error:' in capsys.readouterr().err
    assert not (tmp_path / 'digits-compare').exists()


def test_digits_end_to_end_smoke(tmp_path):
    """The real pipeline at the smallest scale: digits-compare (ResNet and DMRNet only, to keep
    the test short), 1 seed, 1 epoch, 1 training and 1 test batch, then the report with its
    Figure 7 curves. Packs the digits dataset into tmp_path first."""
    data, runs = tmp_path / 'data', tmp_path / 'runs'
    py = sys.executable
    subprocess.check_call([py, os.path.join(REPO, 'data', 'digits.py'), '--out', str(data)],
                          cwd=REPO)
    rc = subprocess.call([py, '-m', 'dmrnet.tools.experiments', 'digits-compare',
                          '--runs-dir', str(runs), '--data-dir', str(data), '--seeds', '1',
                          '--epochs', '1', '--scale', '0.01', '--filter', '*-[rd][em]*net*',
                          '--train-args', '--max-val-batches 1'], cwd=REPO)
    assert rc == 0
    lines = (runs / 'digits-compare' / 'results.jsonl').read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == 2 and all(0 <= r['test_error'] <= 100 for r in recs)
    assert {r['model'] for r in recs} == {'resnet26', 'dmrnet14'}   # the Figure 7 pair
    # the networks really are L=12 (train/digits.py's own default is L=6)
    assert all(r['trained_L'] == 12 and r['L'] == 12 for r in recs)
    assert {r['params'] for r in recs} == {369690, 349402}
    out = subprocess.check_output([py, os.path.join(REPO, 'tools', 'experiments', 'report.py'),
                                   'digits',
                                   '--runs-dir', str(runs), '--out', str(tmp_path / 'report')],
                                  cwd=REPO).decode()
    assert '| digits | 12 |' in out and 'DMRNet' in out
    assert (tmp_path / 'report' / 'figure7_digits.png').exists()


def test_default_gpus_per_run_gives_the_authors_batchnorm_batch():
    """CIFAR/SVHN (total batch 64) get 2 GPUs a run where the listed GPUs allow, so BatchNorm
    normalises over 32 images a device as the authors' did; ImageNet (256) gets 8."""
    assert scheduler.authors_gpus_per_run(['cifar10', 'svhn'], 4) == 2
    assert scheduler.authors_gpus_per_run(['cifar10'], 3) == 1     # 3 GPUs do not split into pairs
    assert scheduler.authors_gpus_per_run(['cifar10'], 0) == 1     # CPU
    assert scheduler.authors_gpus_per_run(['imagenet'], 8) == 8
    assert scheduler.authors_gpus_per_run(['cifar10', 'imagenet'], 8) == 1
    assert collect.batch_per_device({'gpus': '0,1', 'cpus': 1, 'batch_size': 64}) == 32
    assert collect.batch_per_device({'gpus': '', 'cpus': 1, 'batch_size': 64}) == 64


def test_fashion_compare_end_to_end_smoke(tmp_path, monkeypatch):
    """make fashion-compare at the smallest scale: a Fashion-MNIST pack of 60 + 20 images in the
    official idx format, ResNet-26 / DILNet-14 / DMRNet-14 for one epoch of one batch each,
    then the report's Fashion-MNIST table with parameter counts."""
    import datagen
    from dmrnet.data import fashion
    src, data = str(tmp_path / 'src'), tmp_path / 'data'
    splits, _ = datagen.make_fashion(src)
    monkeypatch.setattr(fashion, 'SPLITS', splits)
    assert 'wrote 60 train' in fashion.main(['--out', str(data / 'fashion'), '--src', src,
                                             '--val-per-class', '2'])
    runs = tmp_path / 'runs'
    rc = subprocess.call([sys.executable, '-m', 'dmrnet.tools.experiments', 'fashion-compare',
                          '--runs-dir', str(runs), '--data-root', str(data), '--seeds', '1',
                          '--epochs', '1', '--scale', '0.01',
                          '--train-args', '--max-val-batches 1 --batch-size 20'], cwd=REPO)
    assert rc == 0
    recs = [json.loads(line) for line in
            (runs / 'fashion-compare' / 'results.jsonl').read_text().splitlines()]
    assert sorted(r['model'] for r in recs) == ['dilnet14', 'dmrnet14', 'resnet26']
    assert all(r['dataset'] == 'fashion' and r['L'] == 12 for r in recs)
    out = subprocess.check_output([sys.executable, '-m', 'dmrnet.tools.experiments.report',
                                   'fashion', '--runs-dir', str(runs), '--out',
                                   str(tmp_path / 'report')], cwd=REPO).decode()
    assert '| Fashion-MNIST | 12 |' in out and '| 369690 ± 0 (1) |' in out
    assert (tmp_path / 'report' / 'figure7_fashion.png').exists()
    # one seed a family: no seed bands to draw
    assert not (tmp_path / 'report' / 'figure7_fashion_seeds.png').exists()

    # Published into a results folder: seed 0's final models are kept weights that
    # train/evaluate.py scores at the recorded test error and get_model(pretrained=) loads.
    from dmrnet.symbols import get_model, registry
    from dmrnet.symbols.deploy import import_model
    from dmrnet.tools.experiments import publish
    from dmrnet.train import evaluate
    results = tmp_path / 'results' / 'fashion'
    publish.main(['fashion-compare', '--runs-dir', str(runs), '--out', str(results),
                  '--at-a-time', '2'])
    for name in ('results.jsonl', 'report.md', 'COMMAND.md', 'figure7_fashion.png'):
        assert (results / name).exists(), name
    assert '3 finished runs' in (results / 'COMMAND.md').read_text()
    assert '2 ran at a time' in (results / 'COMMAND.md').read_text()
    monkeypatch.setattr(registry, 'WEIGHTS_ROOT', str(tmp_path / 'results'))
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 28, 28))
    for rec in recs:
        prefix = str(results / 'weights' / rec['model'])
        scored = evaluate.main(['--prefix', prefix, '--dataset', 'fashion', '--data-dir',
                                str(data / 'fashion'), '--json', '--batch-size', '20'])
        assert scored['images'] == 20 and scored['epoch'] == 0
        assert scored['top1_error'] == pytest.approx(rec['test_error'], abs=1e-6)
        net = get_model(rec['model'], pretrained='fashion')
        np.testing.assert_allclose(net(x).asnumpy(), import_model(prefix)(x).asnumpy(),
                                   rtol=1e-5, atol=1e-6)


def test_published_results_name_their_runs_from_anywhere(tmp_path, monkeypatch):
    """publish.portable names runs kept beneath the results' parent relative to the published
    file; results.load_results finds them from any working folder, while a runner's relative
    run_dir (relative to where it ran) keeps its meaning."""
    from dmrnet.tools.experiments import publish
    out = tmp_path / 'results' / 'fashion'
    run = out / 'runs' / 'fashion-compare' / 'r-s0'
    run.mkdir(parents=True)
    rec = dict(run_dir=str(run), dataset='fashion', family='dmrnet', test_error=7.0)
    kept = publish.portable(rec, str(out))
    assert kept['run_dir'] == os.path.join('runs', 'fashion-compare', 'r-s0')
    assert rec['run_dir'] == str(run)                     # the caller's record is untouched
    outside = dict(rec, run_dir=str(tmp_path / 'scratch' / 'r-s0'))
    assert publish.portable(outside, str(out)) == outside
    (out / 'results.jsonl').write_text(json.dumps(kept) + '\n')
    (tmp_path / 'scratch' / 'runs' / 'fashion-compare' / 'r-s0').mkdir(parents=True)
    monkeypatch.chdir(tmp_path / 'scratch')
    got, = load_results([str(out / 'results.jsonl')])
    assert got['run_dir'] == os.path.join('runs', 'fashion-compare', 'r-s0')  # cwd's wins
    monkeypatch.chdir(tmp_path)
    got, = load_results([str(out / 'results.jsonl')])
    assert got['run_dir'] == str(run)


def test_runner_results_find_their_runs_after_the_checkout_moved(tmp_path):
    """A runner's results.jsonl names its runs by the absolute path of the machine that trained;
    in a checkout elsewhere the report finds each run in the folder beside the file, and a
    run_dir that exists as written is left alone."""
    exp = tmp_path / 'clone' / 'runs' / 'fashion-compare'
    (exp / 'r-s0').mkdir(parents=True)
    (tmp_path / 'there' / 'r-s1').mkdir(parents=True)
    gone = dict(run_dir='/gone/machine/runs/fashion-compare/r-s0', family='dmrnet',
                dataset='fashion', test_error=7.0)
    kept = dict(gone, run_dir=str(tmp_path / 'there' / 'r-s1'))
    lost = dict(gone, run_dir='/gone/machine/runs/fashion-compare/r-s9')
    (exp / 'results.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in (gone, kept, lost)))
    got = load_results([str(exp / 'results.jsonl')])
    assert [r['run_dir'] for r in got] == [str(exp / 'r-s0'), kept['run_dir'], lost['run_dir']]


def test_resumable_lists_what_an_interrupted_run_needs(tmp_path, capsys):
    """tools/experiments/resumable.py: for each interrupted run its description, log and the
    checkpoint pairs its pointers name; nothing of finished runs or of runs without a
    checkpoint; a pointer to a missing file is an error, not a short list."""
    from dmrnet.tools.experiments import resumable
    exp = tmp_path / 'fashion-compare'
    part, done, fresh = exp / 'a-s0', exp / 'b-s0', exp / 'c-s0'
    for d in (part, done, fresh):
        d.mkdir(parents=True)
        (d / 'run.json').write_text('{}')
        (d / 'log.jsonl').write_text('{}\n')
    (done / 'summary.json').write_text('{}')
    for d in (part, done):
        (d / 'last.json').write_text(json.dumps(dict(epoch=3, params='ckpt-0003.params',
                                                     states='ckpt-0003.states')))
        (d / 'best.json').write_text(json.dumps(dict(epoch=2, params='ckpt-0002.params',
                                                     states='ckpt-0002.states')))
        for n in (2, 3):
            for ext in ('params', 'states'):
                (d / ('ckpt-%04d.%s' % (n, ext))).write_bytes(b'x')
    (part / 'ckpt-0001.params').write_bytes(b'stale')   # named by no pointer
    assert resumable.main([str(exp)]) == 0
    listed = capsys.readouterr().out.split()
    assert sorted(os.path.relpath(p, str(exp)) for p in listed) == sorted(
        'a-s0/' + n for n in ('run.json', 'log.jsonl', 'last.json', 'best.json',
                              'ckpt-0002.params', 'ckpt-0002.states', 'ckpt-0003.params',
                              'ckpt-0003.states'))
    os.remove(str(part / 'ckpt-0003.states'))
    with pytest.raises(SystemExit):
        resumable.main([str(exp)])
    assert 'names a missing file' in capsys.readouterr().err
