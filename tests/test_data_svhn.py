"""data/svhn.py: the paper's split, official .mat layout, lossless packing, bad input."""
import os

import numpy as np
import pytest

from dmrnet.data import meanstd, records, svhn
from dmrnet.data.errors import DataError, DatasetMissingError

import datagen

SMALL = ['--md5', 'none', '--train-val-per-class', '2', '--extra-val-per-class', '1']


pytestmark = pytest.mark.usefixtures('no_network')


@pytest.fixture
def src(tmp_path):
    folder = str(tmp_path / 'src')
    return folder, datagen.make_svhn(folder, train_per_class=6, extra_per_class=4, test=13)


def test_split_arithmetic_at_paper_size():
    rng = np.random.RandomState(0)
    # Official sizes; every digit has far more than 400 (train) / 200 (extra) images.
    train = rng.randint(0, 10, 73257)
    extra = rng.randint(0, 10, 531131)
    vt, ve = svhn.paper_split(train, extra, seed=0)
    assert vt.sum() == 4000 and ve.sum() == 2000
    assert all((train[vt] == c).sum() == 400 and (extra[ve] == c).sum() == 200
               for c in range(10))
    assert (~vt).sum() + (~ve).sum() == 598388


def test_split_parametrised_and_deterministic():
    labels = np.arange(100) % 10
    a = svhn.paper_split(labels, labels, seed=3, train_per_class=4, extra_per_class=2)
    b = svhn.paper_split(labels, labels, seed=3, train_per_class=4, extra_per_class=2)
    c = svhn.paper_split(labels, labels, seed=4, train_per_class=4, extra_per_class=2)
    assert a[0].sum() == 40 and a[1].sum() == 20
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(DataError) as e:   # a class too small for the split
        svhn.paper_split(labels, labels, train_per_class=11)
    assert 'train_32x32.mat' in str(e.value) and 'class 0' in str(e.value)


def test_pack_counts_labels_lossless(src, tmp_path):
    folder, truth = src
    out = str(tmp_path / 'out')
    r = datagen.run_script('data/svhn.py', '--out', out, '--src', folder, *SMALL)
    assert r.returncode == 0, r.stderr
    assert 'wrote 70 train + 30 val + 13 test' in r.stdout
    source = {}
    for name in ('train', 'extra', 'test'):
        x, y = truth[name]
        source.update({img.tobytes(): (name, int(lab)) for img, lab in zip(x, y)})
    seen = {}
    for split, n in (('svhn_train', 70), ('svhn_val', 30), ('svhn_test', 13)):
        labels, images = datagen.read_pack(out, split)
        assert len(labels) == n
        origin = [source[np.ascontiguousarray(im).tobytes()] for im in images]  # lossless
        assert [o[1] for o in origin] == list(labels)   # digit 0 stored as 0, not 10
        seen[split] = [o[0] for o in origin]
    assert seen['svhn_val'].count('train') == 20 and seen['svhn_val'].count('extra') == 10
    assert seen['svhn_train'].count('train') == 40 and seen['svhn_train'].count('extra') == 30
    np.testing.assert_array_equal(datagen.read_pack(out, 'svhn_test')[0], truth['test'][1])
    assert 0 in datagen.read_pack(out, 'svhn_test')[0]
    assert os.path.exists(meanstd.json_path(out, 'svhn'))
    assert 'nothing to do' in svhn.main(['--out', out, '--src', folder] + SMALL)


def test_same_seed_same_split(src, tmp_path):
    folder, _ = src
    sha = {}
    for run, seed in (('a', 0), ('b', 0), ('c', 1)):
        out = str(tmp_path / run)
        svhn.main(['--out', out, '--src', folder, '--seed', str(seed)] + SMALL)
        sha[run] = records.verify_records(out, 'svhn_val')['payload_sha1']
    assert sha['a'] == sha['b'] != sha['c']


def test_missing_truncated_wrong_mat(src, tmp_path):
    folder, _ = src
    out = str(tmp_path / 'out')
    extra = os.path.join(folder, 'extra_32x32.mat')
    with open(extra, 'rb') as f:
        blob = f.read()
    with open(extra, 'wb') as f:
        f.write(blob[:len(blob) // 3])
    with pytest.raises(DataError) as e:
        svhn.main(['--out', out, '--src', folder] + SMALL)
    assert extra in str(e.value)
    os.remove(extra)
    with pytest.raises(DatasetMissingError) as e:
        svhn.main(['--out', out, '--src', folder] + SMALL)
    assert extra in str(e.value) and 'python data/svhn.py' in str(e.value)
    import scipy.io
    scipy.io.savemat(extra, {'X': np.zeros((28, 28, 1, 5), np.uint8),
                             'y': np.ones((5, 1), np.uint8)})
    with pytest.raises(DataError) as e:
        svhn.main(['--out', out, '--src', folder] + SMALL)
    assert '32x32x3xN' in str(e.value)
    # Official md5s are checked unless --md5 none.
    with pytest.raises(DataError) as e:
        svhn.main(['--out', out, '--src', folder])
    assert 'e26dedcc434d2e4c54c9b2d4a06d8373' in str(e.value)
    assert datagen.pack_files(out) == []


def test_cli_error_is_one_line(tmp_path):
    r = datagen.run_script('data/svhn.py', '--out', str(tmp_path / 'o'), '--src',
                           str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr
    assert 'train_32x32.mat' in r.stderr


@pytest.mark.parametrize('compressed', [True, False])
def test_streamed_mat_reading_equals_loadmat(tmp_path, compressed):
    import scipy.io
    from dmrnet.data import matfile
    x = np.random.RandomState(1).randint(0, 256, (32, 32, 3, 50)).astype(np.uint8)
    path = str(tmp_path / 'm.mat')
    # y before X, another variable in between: the reader must skip what it does not need.
    scipy.io.savemat(path, {'y': np.ones((50, 1), np.uint8), 'z': np.zeros(3), 'X': x},
                     do_compression=compressed)
    chunks = list(matfile.iter_uint8_array(path, 'X', 16))
    assert [len(c) for c in chunks] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate(chunks), np.moveaxis(x, 3, 0))
    with open(path, 'rb') as f:
        blob = f.read()
    with open(path, 'wb') as f:
        f.write(blob[:len(blob) - 2000])
    with pytest.raises(matfile.FormatError):
        list(matfile.iter_uint8_array(path, 'X', 16))
