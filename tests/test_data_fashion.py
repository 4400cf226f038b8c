"""data/fashion.py: the official idx format, lossless grey PNGs, the validation split, re-runs,
bad input (one line, exit status 2, nothing written), the real files, and the iterators."""
import gzip
import json
import os
import shutil

import numpy as np
import pytest

import dmrnet.data as data
from dmrnet.data import fashion, meanstd, packcli, records
from dmrnet.data.errors import DataError

import datagen

SMALL = ['--val-per-class', '2']


pytestmark = pytest.mark.usefixtures('no_network')


@pytest.fixture
def src(tmp_path, monkeypatch):
    """60 train + 20 test images in the official format; fashion.SPLITS expects them."""
    folder = str(tmp_path / 'src')
    splits, truth = datagen.make_fashion(folder)
    monkeypatch.setattr(fashion, 'SPLITS', splits)
    return folder, truth, str(tmp_path / 'out')


def pack(folder, out, *extra):
    return fashion.main(['--out', out, '--src', folder] + SMALL + list(extra))


def grey(images):
    """Decoded 3-channel images (as read_pack gives them) -> the grey source, checking that
    the three channels are equal."""
    x = np.stack(images)
    assert (x == x[..., :1]).all()
    return x[..., 0]


def pairs(out, name):
    """{(label, image bytes)} of a packed split, for comparing splits as sets."""
    labels, images = datagen.read_pack(out, name)
    return [(int(y), x.tobytes()) for y, x in zip(labels, grey(images))]


# ---------------------------------------------------------------------------------------------
# Packing

def test_pack_lossless_grey_png_and_mean_std(src):
    folder, truth, out = src
    assert pack(folder, out).endswith(
        'wrote 60 train + 20 test (+ 40/20 validation split) to %s' % os.path.abspath(out))
    for name, split in (('fashion_train', 'train'), ('fashion_test', 'test')):
        labels, images = datagen.read_pack(out, name)
        np.testing.assert_array_equal(labels, truth[split][1])
        np.testing.assert_array_equal(grey(images), truth[split][0])
        records.verify_records(out, name, deep=True)
    # Stored as single-channel PNG (smaller than three equal channels; decoded as three).
    import cv2
    import mxnet as mx
    rec, idx, _ = records.paths(out, 'fashion_train')
    r = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
    _, encoded = mx.recordio.unpack(r.read_idx(0))
    r.close()
    assert cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED).shape == (28, 28)
    with open(meanstd.json_path(out, 'fashion')) as f:
        stats = json.load(f)
    x = truth['train'][0].astype(np.float64)
    np.testing.assert_allclose(stats['mean'], [x.mean()] * 3, atol=1e-3)
    np.testing.assert_allclose(stats['std'], [x.std()] * 3, atol=1e-3)


def test_validation_split_stratified_disjoint_and_complete(src):
    folder, truth, out = src
    pack(folder, out)
    val, sub, train = (pairs(out, n) for n in ('fashion_val', 'fashion_trainsub',
                                                 'fashion_train'))
    assert np.bincount([y for y, _ in val], minlength=10).tolist() == [2] * 10
    assert len(sub) == 40 and not set(val) & set(sub)
    assert sorted(val + sub) == sorted(train)
    # Both parts keep the order of the training file.
    mask = fashion.validation_split(truth['train'][1], 0, 2)
    np.testing.assert_array_equal(grey(datagen.read_pack(out, 'fashion_val')[1]),
                                  truth['train'][0][mask])


def test_validation_split_at_full_size_is_seeded():
    labels = np.random.RandomState(0).permutation(np.arange(60000) % 10)
    val = fashion.validation_split(labels)
    assert val.sum() == 5000 and np.bincount(labels[val]).tolist() == [500] * 10
    np.testing.assert_array_equal(val, fashion.validation_split(labels, seed=0))
    assert not np.array_equal(val, fashion.validation_split(labels, seed=1))


def test_rerun_does_nothing_another_split_or_force_repacks(src):
    folder, _, out = src
    pack(folder, out)

    def stamps():
        return {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in datagen.pack_files(out)}
    before = stamps()
    assert 'nothing to do' in pack(folder, out)
    assert 'nothing to do' in pack(str(folder) + '-gone', out)   # the source is not needed
    assert stamps() == before
    assert 'wrote' in pack(folder, out, '--seed', '1')   # another split is not "done"
    assert 'wrote' in pack(folder, out, '--seed', '1', '--force')
    assert 'nothing to do' in pack(folder, out, '--seed', '1')


def test_decompressed_files_pack_the_same(src, tmp_path):
    folder, _, out = src
    plain = str(tmp_path / 'plain')
    os.makedirs(plain)
    for name in os.listdir(folder):
        with gzip.open(os.path.join(folder, name)) as f, \
                open(os.path.join(plain, name[:-len('.gz')]), 'wb') as g:
            shutil.copyfileobj(f, g)
    pack(folder, out)
    pack(plain, str(tmp_path / 'out2'))
    for name in fashion.NAMES:
        assert records.verify_records(out, name)['payload_sha1'] == \
            records.verify_records(str(tmp_path / 'out2'), name)['payload_sha1']


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit status 2, nothing written

def _rewrite(folder, split, x=None, y=None, magic=None, dims=None):
    """Replace one file of `split` by an idx file with the given contents (header `dims`
    defaults to the contents' shape)."""
    which = 0 if x is not None else 1
    arr = x if x is not None else y
    default = (fashion.IMAGES_MAGIC, fashion.LABELS_MAGIC)[which]
    datagen.write_idx(os.path.join(folder, datagen.FASHION_FILES[split][which] + '.gz'),
                      magic or default, dims or arr.shape, arr.tobytes())


def missing(folder, truth):
    os.remove(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'))


def truncated_gzip(folder, truth):
    path = os.path.join(folder, 'train-images-idx3-ubyte.gz')
    with open(path, 'rb') as f:
        blob = f.read()
    with open(path, 'wb') as f:
        f.write(blob[:len(blob) // 2])


def header_says_more(folder, truth):
    x = truth['train'][0]
    _rewrite(folder, 'train', x=x[:-1], dims=x.shape)


def wrong_magic(folder, truth):
    _rewrite(folder, 'train', x=truth['train'][0], magic=fashion.LABELS_MAGIC)


def wrong_size(folder, truth):
    _rewrite(folder, 'test', x=np.zeros((20, 32, 32), np.uint8))


def labels_disagree(folder, truth):
    _rewrite(folder, 'test', y=truth['test'][1][:-1].astype(np.uint8))


def not_the_official_count(folder, truth):
    _rewrite(folder, 'train', x=truth['train'][0][:50])
    _rewrite(folder, 'train', y=truth['train'][1][:50].astype(np.uint8))


def label_10(folder, truth):
    y = truth['train'][1].astype(np.uint8)
    y[7] = 10
    _rewrite(folder, 'train', y=y)


def md5_mismatch(folder, truth):
    x = truth['train'][0].copy()
    x[3, 4, 5] ^= 1
    _rewrite(folder, 'train', x=x)


BAD = [(missing, ['t10k-labels-idx1-ubyte.gz', 'missing', 'apt-get install dataset-fashion-mnist',
                  fashion.URL + 't10k-labels-idx1-ubyte.gz']),
       (truncated_gzip, ['train-images-idx3-ubyte.gz', 'truncated or corrupt']),
       (header_says_more, ['train-images-idx3-ubyte.gz', 'truncated: the header says 60 images']),
       (wrong_magic, ['train-images-idx3-ubyte.gz', 'magic number 2049, expected 2051']),
       (wrong_size, ['t10k-images-idx3-ubyte.gz', 'images of 32x32, expected 28x28']),
       (labels_disagree, ['t10k-labels-idx1-ubyte.gz', '19 labels for the 20 images']),
       (not_the_official_count, ['train-images-idx3-ubyte.gz', '50 images, the train set has 60']),
       (label_10, ['train-labels-idx1-ubyte.gz', 'label 10 at item 7, expected 0..9']),
       (md5_mismatch, ['train-images-idx3-ubyte.gz', 'md5 of the decompressed bytes'])]


@pytest.mark.parametrize('damage,says', BAD, ids=[b[0].__name__ for b in BAD])
def test_bad_input_one_line_status_2_nothing_written(src, capsys, damage, says):
    folder, truth, out = src
    damage(folder, truth)
    with pytest.raises(SystemExit) as e:
        packcli.run_cli(fashion.main, ['--out', out, '--src', folder] + SMALL)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err
    for s in says:
        assert s in err[0], (s, err[0])
    assert datagen.pack_files(out) == []


def test_bad_input_leaves_a_previous_pack_intact(src):
    folder, truth, out = src
    pack(folder, out)
    before = {f: open(os.path.join(out, f), 'rb').read() for f in datagen.pack_files(out)}
    md5_mismatch(folder, truth)
    with pytest.raises(DataError) as e:
        pack(folder, out, '--force')
    assert 'md5' in str(e.value)
    assert before == {f: open(os.path.join(out, f), 'rb').read()
                      for f in datagen.pack_files(out)}
    assert 'nothing to do' in pack(folder, out)


def test_cli_missing_source(tmp_path):
    out = str(tmp_path / 'out')
    r = datagen.run_script('data/fashion.py', '--out', out, '--src', str(tmp_path / 'nowhere'))
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and 'Traceback' not in r.stderr, r.stderr
    for s in ('train-images-idx3-ubyte.gz', 'also missing: train-labels-idx1-ubyte.gz',
              'apt-get install dataset-fashion-mnist', fashion.URL):
        assert s in err[0]
    assert datagen.pack_files(out) == []


# ---------------------------------------------------------------------------------------------
# The real files (Debian's dataset-fashion-mnist)

@pytest.mark.skipif(not os.path.isdir(fashion.SRC), reason='the real Fashion-MNIST files are '
                    'not installed in %s (apt-get install dataset-fashion-mnist)' % fashion.SRC)
def test_real_files_verify_and_pinned_mean_std():
    found = fashion.locate_all(fashion.SRC, fashion.SPLITS)
    # load_split checks headers, counts, labels and the md5s of the decompressed bytes.
    train_x, train_y = fashion.load_split(fashion.SRC, 'train', found=found)
    test_x, test_y = fashion.load_split(fashion.SRC, 'test', found=found)
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert np.bincount(train_y).tolist() == [6000] * 10
    assert np.bincount(test_y).tolist() == [1000] * 10
    mean, std = fashion.channel_stats(train_x).result()
    for name in ('fashion', 'fashion_val'):
        info = data.dataset_info(name)
        np.testing.assert_allclose(mean, info['mean'], atol=1e-3)
        np.testing.assert_allclose(std, info['std'], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Iterators

def batches(it):
    return [(b.data[0].asnumpy().copy(), b.label[0].asnumpy().copy(), b.pad) for b in it]


def unnormalise(x, name='fashion'):
    info = data.dataset_info(name)
    return np.round(x * info['std'][0] + info['mean'][0]).astype(np.int64)


def test_dataset_info_pack_command():
    for name in ('fashion', 'fashion_val'):
        info = data.dataset_info(name, 'data/fashion')
        assert info['pack'] == 'python data/fashion.py --out data/fashion'
        assert info['image_shape'] == (3, 28, 28) and info['classes'] == 10
    assert data.dataset_info('fashion_val')['train'] == 'fashion_trainsub'


def test_iterators_on_a_small_pack(src):
    folder, truth, out = src
    pack(folder, out)
    got = batches(data.get_val_iter('fashion', out, 8))
    assert [b[2] for b in got] == [0, 0, 4]   # 20 images
    x = np.concatenate([b[0][:8 - b[2]] for b in got])
    y = np.concatenate([b[1][:8 - b[2]] for b in got])
    assert x.dtype == np.float32 and x.shape == (20, 3, 28, 28)
    np.testing.assert_array_equal(y, truth['test'][1])
    for c in range(3):
        np.testing.assert_array_equal(unnormalise(x[:, c]), truth['test'][0])

    it = data.get_train_iter('fashion', out, 16, seed=1)
    assert it.provide_data[0].shape == (16, 3, 28, 28)
    got = batches(it)
    assert len(got) == 4 and all(b[0].shape == (16, 3, 28, 28) for b in got)
    x = np.concatenate([b[0] for b in got])
    assert x.dtype == np.float32
    # Pad 4 + random 28x28 crop: many images show whole rows or columns of padding (black,
    # the images' background), which random source images practically never have.
    raw = unnormalise(x[:, 0])
    edges = (raw == 0).all(axis=2).any(axis=1) | (raw == 0).all(axis=1).any(axis=1)
    assert edges.sum() > len(x) // 2
    plain = unnormalise(np.concatenate([b[0] for b in batches(
        data.get_train_iter('fashion', out, 16, seed=1, augment=False))])[:, 0])
    assert not ((plain == 0).all(axis=2).any() or (plain == 0).all(axis=1).any())

    # 'fashion_val': trains on fashion_trainsub (40 images), validates on fashion_val (20).
    assert len(batches(data.get_train_iter('fashion_val', out, 8))) == 5
    got = batches(data.get_val_iter('fashion_val', out, 20))
    mask = fashion.validation_split(truth['train'][1], 0, 2)
    np.testing.assert_array_equal(got[0][1], truth['train'][1][mask])
