"""dmrnet.data iterators: contract, lossless reading, augmentation, determinism, sharding."""

import numpy as np
import pytest

import dmrnet.data as data
from dmrnet.data import digits, meanstd, records
from dmrnet.data.errors import DataError

import datagen


pytestmark = pytest.mark.usefixtures('no_network')


@pytest.fixture(scope='module')
def digits_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('digits'))
    assert 'wrote 1437 train + 360 test' in digits.main(['--out', out])
    return out


@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory):
    """A generated CIFAR-10 archive (5x24 train, 24 test images) packed by the real script."""
    src = str(tmp_path_factory.mktemp('cifar_src'))
    archive, truth = datagen.make_cifar(src, 'cifar10', per_batch=24)
    out = str(tmp_path_factory.mktemp('cifar'))
    r = datagen.run_script('data/cifar.py', '--dataset', 'cifar10', '--out', out,
                           '--src', archive, '--md5', datagen.md5(archive))
    assert r.returncode == 0, r.stderr
    assert 'wrote 120 train + 24 test' in r.stdout
    return out, truth


def batches(it, limit=None):
    out = []
    for i, b in enumerate(it):
        out.append((b.data[0].asnumpy().copy(), b.label[0].asnumpy().copy(), b.pad))
        if limit and i + 1 >= limit:
            break
    return out


def unnormalise(x, name):
    info = data.dataset_info(name)
    x = x.transpose(0, 2, 3, 1) * np.array(info['std']) + np.array(info['mean'])
    return np.round(x).astype(np.int64)


def test_dataset_info_contract():
    for name in ('cifar10', 'cifar100', 'svhn', 'imagenet', 'digits'):
        info = data.dataset_info(name)
        for key in ('classes', 'num_train', 'num_val', 'image_shape', 'mean', 'std', 'train',
                    'val', 'pack'):
            assert key in info, (name, key)
        assert len(info['mean']) == len(info['std']) == 3
    assert data.dataset_info('cifar100')['classes'] == 100
    assert data.dataset_info('svhn')['num_train'] == 598388
    assert data.dataset_info('digits')['pack'] == 'python data/digits.py --out data/digits'
    assert data.dataset_info('cifar10', 'D')['pack'].endswith('--dataset cifar10 --out D')
    with pytest.raises(ValueError):
        data.dataset_info('mnist')


def test_digits_mean_std_matches_packed_json(digits_dir):
    import json
    with open(meanstd.json_path(digits_dir, 'digits')) as f:
        stats = json.load(f)
    info = data.dataset_info('digits')
    np.testing.assert_allclose(stats['mean'], info['mean'], atol=1e-3)
    np.testing.assert_allclose(stats['std'], info['std'], atol=1e-3)


def test_val_iter_every_image_once_and_lossless(cifar_dir):
    out, truth = cifar_dir
    x_true, y_true = truth['test']
    got = batches(data.get_val_iter('cifar10', out, batch_size=10))
    assert [b[2] for b in got] == [0, 0, 6]   # 24 images: the last batch has 6 to ignore
    x = np.concatenate([b[0][:10 - b[2]] for b in got])
    y = np.concatenate([b[1][:10 - b[2]] for b in got])
    assert x.dtype == np.float32 and x.shape == (24, 3, 32, 32)
    np.testing.assert_array_equal(y, y_true)
    np.testing.assert_array_equal(unnormalise(x, 'cifar10'), x_true)


def test_val_iter_reset_repeats(digits_dir):
    it = data.get_val_iter('digits', digits_dir, batch_size=100)
    a = batches(it)
    it.reset()
    b = batches(it)
    assert len(a) == len(b) == 4 and a[-1][2] == 40
    assert not np.isnan(a[-1][1]).any()   # the padding holds real images, not garbage
    for (xa, ya, _), (xb, yb, _) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_cifar_train_augmentation(cifar_dir):
    out, truth = cifar_dir
    it = data.get_train_iter('cifar10', out, batch_size=40, seed=3)
    assert it.provide_data[0].shape == (40, 3, 32, 32)
    assert it.provide_label[0].name == 'softmax_label'
    got = batches(it)
    assert len(got) == 3
    x = np.concatenate([b[0] for b in got])
    plain = np.concatenate([b[0] for b in batches(
        data.get_train_iter('cifar10', out, batch_size=40, seed=3, augment=False))])
    # Augmented images differ from the plain ones (crops/flips), and padding shows up as
    # (nearly) zero rows/columns after normalisation.
    assert not np.array_equal(np.sort(x.ravel()), np.sort(plain.ravel()))
    border = np.abs(x).max(axis=(1, 3)) < 0.12   # rows that are pure padding
    assert border.any()
    # Without augmentation the training set is the source, shuffled: same multiset of labels.
    labels = np.concatenate([b[1] for b in got])
    assert sorted(labels.astype(int)) == sorted(truth['train'][1])


@pytest.mark.parametrize('threads', [1, 2])
def test_train_iter_deterministic_per_seed_and_epoch(cifar_dir, threads):
    out, _ = cifar_dir

    def run(seed, epoch):
        return batches(data.get_train_iter('cifar10', out, batch_size=32, epoch=epoch,
                                           seed=seed, num_threads=threads))
    a, b = run(0, 2), run(0, 2)
    for (xa, ya, _), (xb, yb, _) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    c = run(0, 3)
    assert not all(np.array_equal(p[1], q[1]) for p, q in zip(a, c))
    d = run(1, 2)
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, d))
    # The augmentation draws do not depend on the number of decoding threads either.
    one = batches(data.get_train_iter('cifar10', out, batch_size=32, epoch=2, seed=0,
                                      num_threads=1))
    for (xa, ya, _), (xb, yb, _) in zip(a, one):
        np.testing.assert_array_equal(xa, xb)


def test_reset_advances_epoch_like_a_fresh_iterator(digits_dir):
    it = data.get_train_iter('digits', digits_dir, batch_size=256, epoch=0, seed=5)
    it.reset()   # nothing read yet: still epoch 0
    e0 = batches(it)
    it.reset()
    e1 = batches(it)
    assert it.epoch == 1
    fresh0 = batches(data.get_train_iter('digits', digits_dir, 256, epoch=0, seed=5))
    fresh1 = batches(data.get_train_iter('digits', digits_dir, 256, epoch=1, seed=5))
    for got, want in ((e0, fresh0), (e1, fresh1)):
        for (xa, ya, _), (xb, yb, _) in zip(got, want):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)


@pytest.mark.parametrize('parts', [2, 3])
def test_sharding_disjoint_and_complete(digits_dir, parts):
    seen = []
    for p in range(parts):
        got = batches(data.get_val_iter('digits', digits_dir, 50, num_parts=parts, part_index=p))
        x = np.concatenate([b[0][:50 - b[2]] for b in got])
        seen.append(x.reshape(len(x), -1))
    allx = np.concatenate(seen)
    assert len(allx) == 360
    whole = batches(data.get_val_iter('digits', digits_dir, 360))[0][0]
    np.testing.assert_array_equal(allx, whole.reshape(360, -1))   # disjoint, in order, complete
    # Training parts draw from disjoint image sets too, which together are the training set.
    parts_seen = []
    for p in range(parts):
        got = batches(data.get_train_iter('digits', digits_dir, 60, num_parts=parts,
                                          part_index=p, augment=False))
        parts_seen.append({im.tobytes() for b in got for im in b[0]})
    assert all(not (a & b) for i, a in enumerate(parts_seen) for b in parts_seen[i + 1:])
    assert sum(len(s) for s in parts_seen) == 1437 - duplicates_in_digits_train()


def duplicates_in_digits_train():
    imgs, labels = digits.load_images()
    train = imgs[~digits.split(labels)]
    return len(train) - len({im.tobytes() for im in train})


def test_digits_iter_shapes_and_no_augmentation(digits_dir):
    it = data.get_train_iter('digits', digits_dir, batch_size=64, seed=0)
    b = it.next()
    assert b.data[0].shape == (64, 3, 32, 32) and b.label[0].shape == (64,)
    imgs, labels = digits.load_images()
    x = unnormalise(b.data[0].asnumpy(), 'digits')
    # No augmentation for digits: every training image is one of the source images, unchanged.
    flat = {im.tobytes(): int(lab) for im, lab in zip(imgs.astype(np.int64), labels)}
    for im, lab in zip(x, b.label[0].asnumpy()):
        assert flat[im.tobytes()] == int(lab)


def test_missing_pack_raises_dataset_missing(tmp_path):
    with pytest.raises(data.DatasetMissingError) as e:
        data.get_train_iter('cifar10', str(tmp_path), 8)
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    assert 'cifar10_train.rec' in msg and 'python data/cifar.py --dataset cifar10' in msg


def test_bench_data_runs(capsys):
    from dmrnet.tools.bench import data_pipeline
    result = data_pipeline.main(['--no-model', '--images', '300', '--batches', '5', '--json'])
    assert result['iterator_images_per_sec'] > 0
    import json
    assert json.loads(capsys.readouterr().out)['batches'] == 5


@pytest.mark.parametrize('label', [99, -1, 2.5])
def test_labels_outside_the_classes_are_found_before_training(tmp_path, label):
    """Softmax cross-entropy trains on label 99 or -1 without a word: the pack check refuses
    them, for the dataset's own packs (manifest and all) and for packs given by path."""
    import cv2
    image = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    written = [(i % 10, image) for i in range(5)] + [(label, image)] + [(1, image)]
    records.write_records(str(tmp_path), 'digits_test', written)
    rec, idx, _ = records.paths(str(tmp_path), 'digits_test')
    with pytest.raises(DataError, match=r'1 record\(s\) labelled outside the 10 classes '
                                               r'0-9, the first labelled %g \(index entry 5\)'
                                               % label):
        data.external_pack(rec, idx, classes=10)
    with pytest.raises(DataError, match='labelled outside the 10 classes'):
        data.get_val_iter('digits', str(tmp_path), 7)
    assert data.external_pack(rec, idx)[:2] == (rec, idx)     # without classes: headers only
