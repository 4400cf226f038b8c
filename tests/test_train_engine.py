"""The training engine in-process on the real digits set: one step on 1, 2 and 3 CPU contexts,
learning, the recipe (lr schedule, weight decay on all parameters), export -> evaluate (top-1,
and top-5 on a 100-class set), curves, the progress bar, and every bad input (one line, exit
status 2 or 3, nothing lost)."""
import io
import json
import os
import sys

import numpy as np
import pytest

import mxnet as mx

from dmrnet.symbols import get_model
from dmrnet.train import cli, loop, plan, rundir, schedule
from dmrnet.train.errors import UserError, command_line
from dmrnet.train.step import make_trainer
from runs import exported, initial_params, last_checkpoint, records

from checkout import REPO


def parse(argv):
    """The script's TrainConfig of a command line, for tests of the settings alone (no run)."""
    from dmrnet.train.digits import parser
    return cli.parse_config(parser(), [str(a) for a in argv])


@pytest.mark.parametrize('cpus', [1, 2, 3])
def test_one_step_per_context_count(tiny_run, tmp_path, cpus):
    s = tiny_run.fit(tmp_path, '--cpus', cpus, '--max-batches', 1, '--batch-size', 24,
                     '--seed', 5)
    assert s['epochs'] == 1 and s['model'] == 'resnet' and s['params'] > 0
    rec, = records(tmp_path)
    assert set(rec) >= {'epoch', 'lr', 'train_loss', 'train_error', 'test_error', 'seconds',
                        'images_per_sec'}
    assert rec['epoch'] == 1 and np.isfinite(rec['train_loss']) and rec['images_per_sec'] > 0
    files = [os.path.join(str(tmp_path), f) for f in (
        rundir.SUMMARY, rundir.LAST, rundir.BEST, rundir.TRAIN_LOG, rundir.CURVES)]
    files += [exported(tmp_path, which, kind, 1) for kind in ('symbol', 'params')
              for which in (rundir.LAST_EXPORT, rundir.BEST_EXPORT)]
    for f in files:
        assert os.path.exists(f), f
    devices = ','.join('cpu(%d)' % i for i in range(cpus))
    assert '1 worker(s) x %s, total batch 24 (%d per device)' % (devices, 24 // cpus) in \
        open(os.path.join(str(tmp_path), rundir.TRAIN_LOG)).read()
    meta, params, states = last_checkpoint(tmp_path)
    assert meta['epoch'] == 1 and states
    # One step moved every weight (all devices agree: the checkpoint holds device 0's copy and
    # evaluation on all devices gave the logged error), and nothing is NaN.
    start = initial_params(5, 'resnet', L=3)
    assert sorted(start) == sorted(params)
    for k, v in params.items():
        assert np.isfinite(v).all(), k
        if k.endswith('weight'):
            assert not np.array_equal(v, start[k]), k


def test_loss_decreases_on_digits(digits, tiny_run, tmp_path):
    # The whole test set (no --max-val-batches): the exported models are scored on all of it.
    tiny_run.fit(tmp_path, '--model', 'dmrnet', '--L', 6, '--epochs', 3, '--max-batches', 16,
                 '--batch-size', 32, '--lr-steps', 100, tiny=False)
    recs = records(tmp_path)
    losses = [r['train_loss'] for r in recs]
    assert losses[-1] < losses[0] < 2.5, losses
    assert recs[-1]['test_error'] < 60, recs  # chance is 90%
    s = rundir.read_summary(str(tmp_path))
    assert s['best_test_error'] == min(r['test_error'] for r in recs)
    assert os.path.exists(os.path.join(str(tmp_path), rundir.CURVES))

    # Export -> evaluate: the exported best and last models score what training measured
    # (evaluate.py in a batch size that pads the last batch).
    from dmrnet.train import evaluate
    for which, epoch, error in ((rundir.BEST_EXPORT, s['best_epoch'], s['best_test_error']),
                                (rundir.LAST_EXPORT, 3, s['final_test_error'])):
        out = evaluate.main(['--prefix', rundir.export_prefix(str(tmp_path), which),
                             '--dataset', 'digits', '--data-dir', digits, '--json',
                             '--batch-size', '70'])
        assert out['images'] == 360 and out['epoch'] == epoch
        assert out['top1_error'] == pytest.approx(error, abs=1e-6)
        assert 'top5_error' not in out

    # Curves CLI on several runs (a second, shorter run overlaid).
    from dmrnet.train import curves
    other = tmp_path / 'other'
    tiny_run.fit(other, '--epochs', 2)
    png = str(tmp_path / 'fig.png')
    curves.main([str(tmp_path), str(other), '--out', png, '--labels', 'a', 'b'])
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    import matplotlib.image
    img = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    assert img.shape[0] > 300 and img.shape[1] > 500
    for rgb in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):  # one colour per run
        assert (np.abs(img - rgb).sum(-1) < 30).sum() > 200, rgb


def test_seed_bands_plot_every_family_and_refuse_unequal_runs(tmp_path):
    """curves.plot_seeds: one colour per family over several seeds; seeds that logged different
    epochs have no common curve and are refused by name."""
    from dmrnet.train import curves, rundir
    rng = np.random.RandomState(0)

    def fake_run(name, epochs):
        d = tmp_path / name
        d.mkdir()
        rundir.write_log(str(d), [dict(epoch=e, train_loss=1.0 / e + rng.rand() * 0.01,
                                       test_error=10.0 / e + rng.rand()) for e in epochs])
        return str(d)

    groups = [('A', [fake_run('a%d' % s, range(1, 9)) for s in range(3)]),
              ('B', [fake_run('b%d' % s, range(1, 9)) for s in range(3)])]
    png = str(tmp_path / 'seeds.png')
    curves.plot_seeds(groups, png, title='fake')
    import matplotlib.image
    img = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    for rgb in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):
        assert (np.abs(img - rgb).sum(-1) < 30).sum() > 200, rgb
    with pytest.raises(ValueError, match='runs of C'):
        curves.plot_seeds([('C', [fake_run('c0', range(1, 9)), fake_run('c1', range(1, 5))])],
                          str(tmp_path / 'bad.png'))
    assert not (tmp_path / 'bad.png').exists()


def test_export_then_evaluate_top5(cifar100, tmp_path):
    """More than 10 classes: training logs top-5 and the exported model scores the same."""
    data_dir = cifar100
    from dmrnet.train import evaluate
    from dmrnet.train.cifar import parser
    s = loop.fit(cli.parse_config(parser(), [
        '--dataset', 'cifar100', '--data-dir', data_dir, '--save-dir', str(tmp_path),
         '--model', 'resnet', '--L', '3', '--epochs', '1', '--max-batches', '1',
         '--batch-size', '8', '--no-progress', '--num-data-threads', '1'])).summary
    rec, = records(tmp_path)
    assert 0 <= rec['test_top5_error'] <= rec['test_error'] <= 100
    assert s['best_test_top5_error'] == rec['test_top5_error']
    out = evaluate.main(['--prefix', rundir.export_prefix(str(tmp_path), rundir.BEST_EXPORT),
                         '--dataset', 'cifar100', '--data-dir', data_dir, '--json',
                         '--batch-size', '8'])
    assert out['images'] == 20
    assert out['top1_error'] == pytest.approx(rec['test_error'], abs=1e-6)
    assert out['top5_error'] == pytest.approx(rec['test_top5_error'], abs=1e-6)

    # The same counts from the exported model by hand (padded images ignored).
    import dmrnet.data as data
    from dmrnet.symbols.deploy import import_model
    net = import_model(rundir.export_prefix(str(tmp_path), rundir.BEST_EXPORT), 1)
    top1 = top5 = n = 0
    for b in data.get_val_iter('cifar100', data_dir, 8):
        keep = 8 - b.pad
        scores = net(b.data[0].as_in_context(mx.cpu())).asnumpy()[:keep]
        labels = b.label[0].asnumpy()[:keep].astype(int)
        ranked = np.argsort(-scores, axis=1)
        top1 += int((ranked[:, 0] != labels).sum())
        top5 += int(sum(y not in r[:5] for y, r in zip(labels, ranked)))
        n += keep
    assert n == 20
    assert out['top1_error'] == pytest.approx(100.0 * top1 / n)
    assert out['top5_error'] == pytest.approx(100.0 * top5 / n)


def test_progress_bar_on_a_terminal(tiny_run, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, 'stderr', term)
    monkeypatch.setattr(loop, 'PROGRESS_REFRESH', 0)  # draw after every batch, however fast
    tiny_run.fit(tmp_path, progress=True)
    shown = term.getvalue()
    assert 'epoch 1/1' in shown and 'img/s' in shown and 'loss=' in shown and 'err=' in shown

    term2 = Terminal()
    monkeypatch.setattr(sys, 'stderr', term2)
    tiny_run.fit(tmp_path / 'quiet')
    assert 'img/s' not in term2.getvalue()


def test_help_says_batch_size_is_total(capsys):
    from dmrnet.train.digits import parser
    with pytest.raises(SystemExit):
        parser().parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert '--batch-size BATCH_SIZE TOTAL batch size over all devices and all workers' in text


def test_recipe_lr_schedule():
    cifar = parse(['--epochs', '400'])
    assert schedule.steps_of(cifar) == [200, 300, 350]
    assert [schedule.lr_at(cifar, e) for e in (0, 199, 200, 299, 300, 349, 350, 399)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])
    from dmrnet.train.imagenet import parser as imagenet
    from dmrnet.train.svhn import parser as svhn
    im = cli.parse_config(imagenet(), [])
    assert (im.batch_size, im.epochs, im.optimizer, schedule.steps_of(im)) == (
        256, 100, 'nag', [30, 60, 90])
    sv = cli.parse_config(svhn(), [])
    assert (sv.epochs, sv.batch_size, schedule.steps_of(sv)) == (40, 64, [20, 30, 35])
    assert schedule.steps_of(parse(['--lr-steps', '5,2'])) == [2, 5]


def test_weight_decay_on_all_parameters():
    net = get_model('resnet', L=3)
    net.initialize()
    trainer = make_trainer(net, 'nag', {'learning_rate': 0.1, 'wd': 1e-4,
                                               'momentum': 0.9})
    opt = trainer._optimizer
    names = [p.name for p in trainer._params]
    assert any(n.endswith('gamma') for n in names) and any(n.endswith('beta') for n in names)
    assert any(n.endswith('bias') for n in names)
    assert not any('running' in n for n in names)
    for i, n in enumerate(names):
        assert opt._get_wd(i) == pytest.approx(1e-4), n
        assert opt._get_lr(i) == pytest.approx(0.1), n
    assert type(opt).__name__ == 'NAG' and opt.momentum == 0.9


# ----------------------------------------------------------------------------------------
# Bad input: one line, exit status 2 (user) or 3 (run stopped), nothing lost

@pytest.mark.parametrize('gpus', ['3', '0-1'])
def test_gpus_on_the_cpu_build(tiny_run, tmp_path, capsys, gpus):
    """The CPU build cannot use GPUs: one line naming the build and the fix, before the run
    folder exists (tests/test_cuda.py has the driver's answers)."""
    save_dir = tmp_path / 'run'
    code, err = tiny_run.main(save_dir, '--gpus', gpus, capsys=capsys)
    line = err[-1]
    assert code == 2 and 'Traceback' not in line
    assert '--gpus %s: the installed MXNet is the CPU build' % gpus.replace('-', ',') in line
    assert 'make venv BUILD=gpu' in line and not save_dir.exists()


def test_amp_on_a_cpu_without_bfloat16(tiny_run, tmp_path, capsys, monkeypatch):
    """--amp on a CPU is bfloat16; a CPU that does not compute it natively gets one line."""
    from dmrnet.train import precision
    assert precision.check_amp([mx.cpu()], flags={'avx2', 'avx512f'}).startswith(
        '--amp on a CPU trains in bfloat16, which this CPU does not compute natively')
    assert precision.check_amp([mx.cpu()], flags={'avx512_bf16'}) is None
    assert precision.check_amp([mx.gpu(0)], flags=set()) is None   # float16 on GPUs
    monkeypatch.setattr(precision, 'cpu_flags', lambda: {'avx2'})
    code, err = tiny_run.main(tmp_path, '--amp', capsys=capsys)
    assert code == 2 and 'bfloat16' in err[-1] and 'drop --amp' in err[-1]
    # On GPUs (float16), AMP's overflow check cannot stop a step the servers apply themselves.
    config = parse(['--amp', '--kv-store', 'dist_async'])
    with pytest.raises(UserError, match="amp cannot be combined with kv_store='dist_async'"):
        plan.check_kvstore(config, [mx.gpu(0)])            # the Python API names fields
    with command_line(), pytest.raises(UserError, match='--amp cannot be combined with '
                                                        '--kv-store dist_async'):
        plan.check_kvstore(config, [mx.gpu(0)])            # the command line names flags


def test_missing_rec_names_pack_command(tiny_run, tmp_path, capsys):
    code, err = tiny_run.main(tmp_path / 'run', data_dir=tmp_path / 'nothing', capsys=capsys)
    assert code == 2 and 'digits_train' in err[-1] and 'data/digits.py' in err[-1]


def test_bad_model_and_batch(tiny_run, tmp_path, capsys):
    code, err = tiny_run.main(tmp_path, '--model', 'nosuchnet', capsys=capsys)
    assert code == 2 and 'nosuchnet' in err[-1]
    code, err = tiny_run.main(tmp_path, '--cpus', 2, '--batch-size', 15, capsys=capsys)
    assert code == 2 and 'divisible' in err[-1]


def test_resume_from_another_models_checkpoint(tiny_run, tmp_path, capsys):
    good = tmp_path / 'run'
    tiny_run.fit(good)
    before = sorted(os.listdir(str(good)))
    code, err = tiny_run.main(tmp_path / 'other', '--model', 'dmrnet', '--L', 6, '--resume',
                              good, '--epochs', 2, capsys=capsys)
    line = err[-1]
    assert code == 2 and ': error: --resume %s: the checkpoint is resnet (' % good in line
    assert 'on digits, this run is dmrnet (' in line
    # Same family, another depth: still refused.
    code, err = tiny_run.main(tmp_path / 'other', '--L', 6, '--resume', good, '--epochs', 2,
                              capsys=capsys)
    assert code == 2 and 'L=3' in err[-1] and 'L=6' in err[-1]
    code, err = tiny_run.main(tmp_path / 'x', '--resume', tmp_path / 'nowhere', tiny=False,
                              capsys=capsys)
    assert code == 2 and 'no checkpoint at %s' % (tmp_path / 'nowhere') in err[-1]
    # A fresh start into the folder of a run would mix the two.
    code, err = tiny_run.main(good, capsys=capsys)
    assert code == 2 and '--save-dir %s already holds a run: continue it with --resume' % good \
        in err[-1]
    assert sorted(os.listdir(str(good))) == before


def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(tiny_run, tmp_path, capsys,
                                                                 monkeypatch):
    # From scratch: nothing to keep, and the message says so.
    # (BatchNorm keeps activations finite for a couple of steps; the third step overflows.)
    code, err = tiny_run.main(tmp_path / 'fresh', '--epochs', 2, '--lr', 1e30,
                              '--max-batches', 6, capsys=capsys)
    line = err[-1]
    assert code == 3 and 'training diverged: loss is nan at epoch 1' in line
    assert 'lower --lr' in line and 'no checkpoint had been written' in line

    # Epoch 1 trained normally; extended to 3 epochs, epoch 2 diverges (its learning rate made
    # absurd behind the run's back: a resume cannot change the recorded --lr).
    tiny_run.fit(tmp_path, '--max-batches', 6)
    pointer = os.path.join(str(tmp_path), rundir.LAST)
    before = open(pointer).read()
    _, good, _ = last_checkpoint(tmp_path)
    monkeypatch.setattr(schedule, 'lr_at', lambda config, epoch: 1e30)
    code, err = tiny_run.main(tmp_path, '--epochs', 3, '--resume', tmp_path, tiny=False,
                              capsys=capsys)
    line = err[-1]
    assert code == 3 and 'training diverged: loss is nan at epoch 2' in line
    assert 'the last good checkpoint (epoch 1) is intact in %s' % tmp_path in line
    assert open(pointer).read() == before
    meta, params, _ = last_checkpoint(tmp_path)
    assert meta['epoch'] == 1 and not rundir.is_finished(str(tmp_path))
    assert all(np.array_equal(params[k], good[k]) for k in good)


def full_disk(monkeypatch, which, epoch):
    """Make writing checkpoint `epoch`'s parameters or optimizer states fail the way a full disk
    does: MXNet's C++ writer raises MXNetError after a partial write."""
    target = '%s.%s' % (rundir.CHECKPOINT % epoch, which)
    calls = []
    real = mx.nd.save

    def save(fname, data):
        calls.append(fname)
        if target in fname:
            with open(fname, 'wb') as f:
                f.write(b'\0' * 100)
            raise mx.base.MXNetError('Check failed: std::fwrite(ptr, 1, size, fp_) == size: '
                                     'FileStream.Write incomplete')
        return real(fname, data)
    monkeypatch.setattr(mx.ndarray, 'save', save)
    # ... and the file system is (nearly) out of space.
    real_statvfs = os.statvfs
    monkeypatch.setattr(os, 'statvfs', lambda p: os.statvfs_result(
        tuple(real_statvfs(p)[:4]) + (0,) + tuple(real_statvfs(p)[5:])))
    return calls


@pytest.mark.parametrize('which', ['params', 'states'])
def test_full_disk_keeps_previous_checkpoint(tiny_run, tmp_path, capsys, monkeypatch, which):
    with monkeypatch.context() as m:
        calls = full_disk(m, which, epoch=2)
        code, err = tiny_run.main(tmp_path, '--epochs', 2, capsys=capsys)
    line = err[-1]
    second = rundir.CHECKPOINT % 2
    assert any(second in c for c in calls)
    assert code == 3 and 'Traceback' not in line
    assert 'No space left on device' in line and '%s.%s' % (second, which) in line
    assert 'checkpoint (epoch 1) is intact in %s: continue with --resume' % tmp_path in line
    meta, params, states = last_checkpoint(tmp_path)
    assert meta['epoch'] == 1 and len(params) > 0 and states
    # Nothing of the failed checkpoint is left, partial or complete.
    first = rundir.CHECKPOINT % 1
    assert sorted(f for f in os.listdir(str(tmp_path)) if 'ckpt' in f or 'partial' in f) == \
        [first + '.params', first + '.states']
    # ... and the run resumes from it to the end, clearing what a killed writer leaves.
    stray = tmp_path / ('.%s.params.partial-99999' % second)
    stray.write_bytes(b'\0' * 10)
    s = tiny_run.fit(tmp_path, '--epochs', 2, '--resume', tmp_path)
    assert s['epochs'] == 2 and [r['epoch'] for r in records(tmp_path)] == [1, 2]
    assert not stray.exists()


def test_model_spec_presets_keep_their_architecture():
    """The demo's L=6 completes a bare family only; a preset keeps its own L, and a flag that
    contradicts a preset is refused instead of building another net under the preset's name."""
    spec = lambda *argv: plan.model_spec(parse(list(argv)), 10)  # noqa: E731
    assert spec()[3]['L'] == 6
    assert spec('--model', 'dmrnet', '--L', '12')[3]['L'] == 12
    assert spec('--model', 'resnet26')[3]['L'] == 12
    assert spec('--model', 'resnet26', '--L', '12')[3]['L'] == 12
    assert spec('--model', 'dmrnet14', '--fused')[3]['fused'] is True
    assert spec('--model', 'pathnet', '--L', '12', '--blocks', '6')[3]['blocks'] == 6
    with pytest.raises(UserError, match=r'--model resnet26 is .*L=12.*--L 18 contradicts '
                                               r'it.*--model resnet --L 18'):
        spec('--model', 'resnet26', '--L', '18')


def test_readme_recipe_table_is_the_recipe_table():
    """README prints the recipes; the scripts, the runner and README share one table."""
    from dmrnet.train.recipes import markdown_table
    readme = open(os.path.join(REPO, 'README.md')).read()
    assert markdown_table() in readme


def test_mxnet_parse_log_reads_our_log(tiny_run, tmp_path):
    """train.log carries MXNet's fit() lines (Speedometer batches, Train-/Validation-accuracy,
    Time cost), so the parse_log.py that ships with MXNet tabulates a run as it would one of
    MXNet's own examples."""
    import subprocess
    import sys
    tiny_run.fit(tmp_path, '--epochs', 2, '--log-interval', 1)
    log_text = open(os.path.join(str(tmp_path), rundir.TRAIN_LOG)).read()
    assert 'Epoch[1] Batch [2]\tSpeed: ' in log_text and 'samples/sec\taccuracy=' in log_text
    tool = os.path.join(os.path.dirname(mx.__file__), 'tools', 'parse_log.py')
    r = subprocess.run([sys.executable, tool, os.path.join(str(tmp_path), rundir.TRAIN_LOG),
                        '--format', 'none'], capture_output=True, text=True, check=True)
    rows = [line.split('\t') for line in r.stdout.strip().splitlines()[1:]]
    assert [int(row[0]) for row in rows] == [1, 2]
    for row, rec in zip(rows, records(tmp_path)):
        assert float(row[1]) == pytest.approx(1 - rec['train_error'] / 100, abs=1e-6)
        assert float(row[2]) == pytest.approx(1 - rec['test_error'] / 100, abs=1e-6)
        assert float(row[3]) == pytest.approx(rec['seconds'], abs=0.06)


def test_a_pack_made_by_mxnets_im2rec_trains(tiny_run, tmp_path):
    """A lab's existing RecordIO pack, made by the im2rec.py that ships with MXNet, trains by
    path (--rec-train/--rec-val, the flags of GluonCV's and MXNet's scripts), with its own
    statistics (--rgb-mean/--rgb-std); its image count comes from its .idx."""
    import subprocess
    import sys
    import cv2
    from dmrnet.data import digits as digits_packer
    images, labels = digits_packer.load_images()
    root = tmp_path / 'images'
    for i in range(120):
        folder = root / ('class%d' % labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / ('%03d.png' % i)), images[i][:, :, ::-1])
    im2rec = os.path.join(os.path.dirname(mx.__file__), 'tools', 'im2rec.py')
    prefix = str(tmp_path / 'mine')
    for extra in (['--list', '--recursive'], ['--encoding', '.png', '--num-thread', '1']):
        subprocess.run([sys.executable, im2rec] + extra + [prefix, str(root)], check=True,
                       capture_output=True)
    assert len(open(prefix + '.lst').read().splitlines()) == 120
    save = tmp_path / 'run'
    s = tiny_run.fit(save, '--rec-train', prefix + '.rec', '--rec-val', prefix + '.rec',
                     '--rgb-mean', '78,78,78', '--rgb-std', '96,96,96', '--max-batches', 100,
                     '--log-interval', 1, data_dir=tmp_path / 'unused')
    rec, = records(save)
    # 120 images at batch 16: 7 full steps, whatever the digits set's own size is.
    assert rec['images_per_sec'] > 0 and s['epochs'] == 1
    log_text = open(os.path.join(str(save), rundir.TRAIN_LOG)).read()
    assert 'Epoch[0] Batch [7]\t' in log_text and 'Epoch[0] Batch [8]\t' not in log_text
    meta = json.load(open(exported(save, rundir.BEST_EXPORT, 'meta')))
    assert meta['input']['mean'] == [78.0] * 3 and meta['input']['std'] == [96.0] * 3
    assert s['args']['rec_train'] == prefix + '.rec'


def test_our_packs_carry_an_im2rec_list(digits):
    """Beside each .rec, the .lst im2rec users expect: index, label, a name per record."""
    lines = open(os.path.join(digits, 'digits_test.lst')).read().splitlines()
    assert len(lines) == 360
    index, label, name = lines[5].split('\t')
    assert int(index) == 5 and float(label) in range(10) and name == 'digits_test/00000005'


def _events(folder):
    """(tag, step, value) of every scalar in a TensorBoard event folder, read with the protobuf
    classes tensorboardX ships (TFRecord framing: length, its CRC, the Event, its CRC)."""
    import glob
    import struct
    from tensorboardX.proto import event_pb2
    found = []
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        data = open(path, 'rb').read()
        pos = 0
        while pos < len(data):
            length, = struct.unpack('<Q', data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                found.append((value.tag, event.step, value.simple_value))
    return found


def test_tensorboard_gets_the_epoch_curves(tiny_run, tmp_path):
    board = tmp_path / 'board'
    tiny_run.fit(tmp_path / 'run', '--epochs', 2, '--tensorboard', board)
    events = _events(str(board))
    for rec in records(tmp_path / 'run'):
        for tag, key in (('train/loss', 'train_loss'), ('test/error', 'test_error'),
                         ('lr', 'lr'), ('speed/images_per_sec', 'images_per_sec')):
            value, = [v for t, step, v in events if t == tag and step == rec['epoch']]
            assert value == pytest.approx(rec[key], rel=1e-6), tag


def test_the_anchors_flag_names_are_aliases():
    """MXNet's example and GluonCV name the same settings differently; both spellings work."""
    theirs = parse(['--num-epochs', 7, '--lr-step-epochs', '3,5', '--mom', 0.8,
                    '--disp-batches', 9, '--save-period', 2, '-j', 3, '--rgb-mean', '1,2,3',
                    '--rgb-std', '4,5,6'])
    ours = parse(['--epochs', 7, '--lr-steps', '3,5', '--momentum', 0.8, '--log-interval', 9,
                  '--checkpoint-every', 2, '--num-data-threads', 3, '--mean', '1,2,3',
                  '--std', '4,5,6'])
    assert theirs == ours and theirs.lr_steps == (3, 5) and theirs.mean == (1.0, 2.0, 3.0)
    assert parse(['--lr-decay-epoch', '4']).lr_steps == (4,)
