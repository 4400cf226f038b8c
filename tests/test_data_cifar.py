"""data/cifar.py and the shared writer/verifier: formats, losslessness, re-runs, bad input."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import dmrnet.data as data
from dmrnet.data import cifar, packcli, png, records, sources
from dmrnet.data.errors import DataError

import datagen


pytestmark = pytest.mark.usefixtures('no_network')


@pytest.fixture
def c10(tmp_path):
    archive, truth = datagen.make_cifar(str(tmp_path / 'src'), 'cifar10', per_batch=6)
    return archive, truth, str(tmp_path / 'out')


def pack(archive, out, *extra, dataset='cifar10'):
    return cifar.main(['--dataset', dataset, '--out', out, '--src', archive,
                       '--md5', datagen.md5(archive) if os.path.isfile(archive) else 'none']
                      + list(extra))


def test_cifar10_archive_lossless_counts_labels_meanstd(c10):
    archive, truth, out = c10
    assert 'wrote 30 train + 6 test' in pack(archive, out)
    for split in ('train', 'test'):
        labels, images = datagen.read_pack(out, 'cifar10_%s' % split)
        np.testing.assert_array_equal(labels, truth[split][1])
        np.testing.assert_array_equal(np.stack(images), truth[split][0])
    with open(os.path.join(out, 'cifar10_mean_std.json')) as f:
        stats = json.load(f)
    x = truth['train'][0].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats['mean'], x.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats['std'], x.std(0), atol=1e-3)


def test_cifar100_folder_fine_labels(tmp_path):
    folder, truth = datagen.make_cifar(str(tmp_path / 'src'), 'cifar100', per_batch=24,
                                       tar=False)
    out = str(tmp_path / 'out')
    # The parent of cifar-100-python is accepted as well as the folder itself.
    assert 'wrote 120 train + 24 test' in pack(os.path.dirname(folder), out,
                                               dataset='cifar100')
    labels, images = datagen.read_pack(out, 'cifar100_train')
    np.testing.assert_array_equal(labels, truth['train'][1])   # fine labels, up to 99
    assert labels.max() > 19
    np.testing.assert_array_equal(np.stack(images), truth['train'][0])


def test_rerun_does_nothing_and_force_repacks(c10):
    archive, _, out = c10
    pack(archive, out)
    stamp = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in datagen.pack_files(out)}
    assert 'nothing to do' in pack(archive, out)
    assert 'nothing to do' in cifar.main(['--dataset', 'cifar10', '--out', out])  # no source
    assert stamp == {f: os.stat(os.path.join(out, f)).st_mtime_ns
                     for f in datagen.pack_files(out)}
    assert 'wrote' in pack(archive, out, '--force')


def test_cli_subprocess_and_no_download(c10, tmp_path):
    archive, _, out = c10
    r = datagen.run_script('data/cifar.py', '--dataset', 'cifar10', '--out', out)
    assert r.returncode == 2, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert 'DMRNET_NO_DOWNLOAD' in r.stderr and 'cifar-10-python.tar.gz' in r.stderr
    assert datagen.pack_files(out) == []


def test_download_uses_official_url_and_md5(c10, monkeypatch):
    archive, _, out = c10
    calls = []

    def fake(url, dest, md5, fix):
        calls.append((url, md5))
        os.makedirs(os.path.dirname(dest), exist_ok=True)   # as download() does
        shutil.copy(archive, dest)
        return dest
    monkeypatch.setattr(sources, 'download', fake)
    assert 'wrote 30 train' in cifar.main(['--dataset', 'cifar10', '--out', out])
    assert calls == [('https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz',
                      'c58f30108f718f92721af3b95e74349a')]


def test_wrong_md5(c10):
    archive, _, out = c10
    with pytest.raises(DataError) as e:
        cifar.main(['--dataset', 'cifar10', '--out', out, '--src', archive])
    assert archive in str(e.value) and 'c58f30108f718f92721af3b95e74349a' in str(e.value)
    assert datagen.pack_files(out) == []


def test_truncated_archive(c10, tmp_path):
    archive, _, out = c10
    cut = str(tmp_path / 'cifar-10-python.tar.gz')
    with open(archive, 'rb') as f:
        blob = f.read()
    with open(cut, 'wb') as f:
        f.write(blob[:len(blob) // 2])
    with pytest.raises(DataError) as e:   # caught by the md5 of the full archive
        cifar.main(['--dataset', 'cifar10', '--out', out, '--src', cut, '--md5',
                    datagen.md5(archive)])
    assert 'md5' in str(e.value)
    with pytest.raises(DataError) as e:   # and by the reader when md5 is skipped
        cifar.main(['--dataset', 'cifar10', '--out', out, '--src', cut, '--md5', 'none'])
    assert cut in str(e.value) and 'truncated' in str(e.value)
    assert datagen.pack_files(out) == []


def test_wrong_or_empty_folder(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    out = str(tmp_path / 'out')
    with pytest.raises(DataError) as e:
        cifar.main(['--dataset', 'cifar10', '--out', out, '--src', str(empty)])
    assert 'data_batch_1' in str(e.value) and 'cifar-10-batches-py' in str(e.value)
    folder, _ = datagen.make_cifar(str(tmp_path / 'c10'), 'cifar10', per_batch=2, tar=False)
    with pytest.raises(DataError):   # a CIFAR-10 folder is not CIFAR-100
        cifar.main(['--dataset', 'cifar100', '--out', out, '--src', folder])
    with open(os.path.join(folder, 'test_batch'), 'wb') as f:
        f.write(b'not a pickle')
    with pytest.raises(DataError) as e:
        cifar.main(['--dataset', 'cifar10', '--out', out, '--src', folder])
    assert 'test_batch' in str(e.value)
    assert datagen.pack_files(out) == []   # checked before anything was written


def test_interrupted_run_leaves_nothing_that_looks_complete(c10, monkeypatch):
    archive, _, out = c10
    pack(archive, out)
    before = {f: open(os.path.join(out, f), 'rb').read() for f in datagen.pack_files(out)}
    calls = [0]
    real = png.encode

    def dying(img):
        calls[0] += 1
        if calls[0] > 10:
            raise KeyboardInterrupt
        return real(img)
    monkeypatch.setattr(png, 'encode', dying)
    with pytest.raises(KeyboardInterrupt):
        pack(archive, out, '--force')
    # The previous pairs are untouched, no temporary is left beside them, and the dataset no
    # longer counts as complete (its statistics file, written last, is gone): a re-run repacks.
    after = {f: open(os.path.join(out, f), 'rb').read() for f in datagen.pack_files(out)}
    del before['cifar10_mean_std.json']
    assert before == after
    monkeypatch.setattr(png, 'encode', real)
    assert 'wrote' in pack(archive, out)
    fresh = os.path.join(out, 'fresh')
    monkeypatch.setattr(png, 'encode', dying)
    calls[0] = 0
    with pytest.raises(KeyboardInterrupt):
        pack(archive, fresh)
    assert datagen.pack_files(fresh) == []


def test_a_killed_packers_temporary_files_are_removed_next_time(c10):
    """A packer killed with SIGKILL leaves `.NAME.partial-PID`; the next pack removes it (its
    process is gone), while a live process's temporary file is left alone."""
    archive, _, out = c10
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    os.makedirs(out, exist_ok=True)
    stale = os.path.join(out, '.cifar10_test.rec.partial-%d' % dead.pid)
    live = os.path.join(out, '.cifar10_test.rec.partial-%d' % os.getppid())
    for path in (stale, live):
        with open(path, 'wb') as f:
            f.write(b'\0' * 1000)
    pack(archive, out, '--force')
    assert not os.path.exists(stale) and os.path.exists(live)
    os.remove(live)


def test_rec_without_idx_truncated_and_corrupt_records(c10):
    archive, _, out = c10
    pack(archive, out)
    rec, idx, manifest = records.paths(out, 'cifar10_train')
    fix = 'python data/cifar.py --dataset cifar10'
    # A damaged record header (same size): the quick check walks every header and finds it.
    original = open(rec, 'rb').read()
    with open(rec, 'r+b') as f:
        f.seek(os.path.getsize(rec) // 2)
        f.write(b'\x00' * 64)
    with pytest.raises(DataError) as e:
        records.verify_records(out, 'cifar10_train')
    assert 'damaged' in str(e.value) and rec in str(e.value)
    # A damaged payload (same size): only the deep check sees it; a re-run repairs it.
    offsets = np.loadtxt(idx, dtype=np.int64, usecols=1)
    with open(rec, 'wb') as f:
        f.write(original)
        f.seek(int(offsets[3]) + 8 + 24 + 40)
        f.write(b'\x00' * 64)
    records.verify_records(out, 'cifar10_train')
    with pytest.raises(DataError) as e:
        records.verify_records(out, 'cifar10_train', deep=True)
    assert 'corrupt' in str(e.value) and rec in str(e.value)
    assert 'wrote' in pack(archive, out)
    records.verify_records(out, 'cifar10_train', deep=True)
    # Truncated .rec: the iterator refuses it, naming the file and the fix.
    with open(rec, 'r+b') as f:
        f.truncate(os.path.getsize(rec) - 100)
    with pytest.raises(DataError) as e:
        data.get_train_iter('cifar10', out, 8)
    assert rec in str(e.value) and fix in str(e.value)
    # A .rec without its .idx.
    os.remove(idx)
    with pytest.raises(data.DatasetMissingError) as e:
        data.get_train_iter('cifar10', out, 8)
    assert idx in str(e.value) and fix in str(e.value)
    # A pair without manifest (interrupted, or packed by another tool).
    os.remove(manifest)
    shutil.copy(rec, idx)
    with pytest.raises(DataError) as e:
        data.get_val_iter('cifar10', out, 8, split='train')
    assert 'incomplete' in str(e.value)


def _fail_after(monkeypatch, calls, failure):
    """encode_png that runs `failure()` on its calls-th call (mid-pack)."""
    real, count = png.encode, [0]

    def encode(img):
        count[0] += 1
        if count[0] == calls:
            failure()
        return real(img)
    monkeypatch.setattr(png, 'encode', encode)


def _run_cli(archive, out, capsys):
    argv = ['--dataset', 'cifar10', '--out', out, '--src', archive, '--md5',
            datagen.md5(archive), '--force']
    with pytest.raises(SystemExit) as e:
        packcli.run_cli(cifar.main, argv)
    return e.value.code, capsys.readouterr().err.strip().splitlines()


def test_sigterm_while_packing_is_like_ctrl_c(c10, monkeypatch, capsys):
    """SIGTERM used to end a packer silently with 143 and leave its temporary files."""
    import signal
    archive, _, out = c10
    pack(archive, out)
    before = {f: open(os.path.join(out, f), 'rb').read() for f in datagen.pack_files(out)
              if not f.endswith('mean_std.json')}
    _fail_after(monkeypatch, 10, lambda: os.kill(os.getpid(), signal.SIGTERM))
    code, err = _run_cli(archive, out, capsys)
    assert code == 143 and err == ['terminated: nothing partial was left behind']
    assert not [f for f in os.listdir(out) if 'partial' in f]
    assert before == {f: open(os.path.join(out, f), 'rb').read() for f in before}
    from dmrnet.utils import process
    assert signal.getsignal(signal.SIGTERM) is not process._raise_terminated   # restored


@pytest.mark.parametrize('error', ['ENOSPC', 'mxnet'])
def test_a_full_disk_while_packing_is_one_line(c10, monkeypatch, capsys, error):
    import errno

    import mxnet as mx
    archive, _, out = c10

    def full():
        if error == 'ENOSPC':
            raise OSError(errno.ENOSPC, 'No space left on device', os.path.join(out, 'x.rec'))
        # what MXNet's C++ writer raises instead, on a disk with nothing left
        monkeypatch.setattr(packcli, 'disk_nearly_full', lambda path: True)
        raise mx.base.MXNetError('FileStream.Write incomplete')
    _fail_after(monkeypatch, 10, full)
    code, err = _run_cli(archive, out, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith('error: no space left on the disk of ') and '--out' in err[0]
    assert not [f for f in os.listdir(out) if 'partial' in f] if os.path.isdir(out) else True
