"""data/imagenet.py on an ILSVRC-like tree of small JPEGs; ImageNet iterators' shapes."""
import os

import numpy as np
import pytest

import dmrnet.data as data
from dmrnet.data import imagenet
from dmrnet.data.errors import DataError, DatasetMissingError

import datagen

WNIDS = ('n01440764', 'n01443537', 'n01484850')


pytestmark = pytest.mark.usefixtures('no_network')


def test_flat_val_with_label_file_cli(tmp_path):
    src, out = str(tmp_path / 'ilsvrc'), str(tmp_path / 'out')
    truth = datagen.make_imagenet(src, WNIDS, per_class=4, val_per_class=2)
    r = datagen.run_script('data/imagenet.py', '--src', src, '--out', out, '--train-size', '48',
                           '--val-size', '36', '--quality', '90', '--workers', '2')
    assert r.returncode == 0, r.stderr
    assert 'wrote 12 train + 6 val images (3 classes)' in r.stdout
    with open(os.path.join(out, 'imagenet_synsets.txt')) as f:
        assert f.read().split() == sorted(WNIDS)
    labels, images = datagen.read_pack(out, 'imagenet_train')
    assert sorted(labels) == sorted(l for _, l in truth['train'])
    assert labels.tolist() != sorted(labels.tolist())   # stored shuffled, for sharding
    assert all(min(im.shape[:2]) == 48 for im in images)
    labels, images = datagen.read_pack(out, 'imagenet_val')
    assert labels.tolist() == [l for _, l in truth['val']]
    assert all(min(im.shape[:2]) == 36 for im in images)
    assert 'nothing to do' in imagenet.main(['--src', src, '--out', out])


@pytest.mark.parametrize('fmt', ['folders', 'one_per_line_int', 'kaggle_csv'])
def test_val_layouts(tmp_path, fmt):
    src, out = str(tmp_path / 'ilsvrc'), str(tmp_path / 'out')
    truth = datagen.make_imagenet(src, WNIDS, per_class=1, val_per_class=2,
                                  flat_val=fmt != 'folders')
    args = ['--src', src, '--out', out, '--workers', '1', '--train-size', '32',
            '--val-size', '32']
    if fmt == 'one_per_line_int':
        os.remove(os.path.join(src, 'val.txt'))
        with open(os.path.join(src, 'labels.txt'), 'w') as f:
            f.writelines('%d\n' % l for _, l in truth['val'])
        args += ['--val-labels', os.path.join(src, 'labels.txt')]
    elif fmt == 'kaggle_csv':
        os.remove(os.path.join(src, 'val.txt'))
        with open(os.path.join(src, 'LOC_val_solution.csv'), 'w') as f:
            f.write('ImageId,PredictionString\n')
            for rel, l in reversed(truth['val']):
                f.write('%s,%s 1 2 3 4\n' % (os.path.splitext(os.path.basename(rel))[0],
                                            sorted(WNIDS)[l]))
    imagenet.main(args)
    labels, _ = datagen.read_pack(out, 'imagenet_val')
    assert labels.tolist() == [l for _, l in truth['val']]


def test_bad_layouts(tmp_path):
    src, out = str(tmp_path / 'ilsvrc'), str(tmp_path / 'out')
    args = ['--src', src, '--out', out, '--workers', '1']
    with pytest.raises(DatasetMissingError):
        imagenet.main(args)
    os.makedirs(os.path.join(src, 'train'))
    with pytest.raises(DataError) as e:
        imagenet.main(args)
    assert 'train/<wnid>' in str(e.value)
    os.makedirs(os.path.join(src, 'train', WNIDS[0]))
    with pytest.raises(DataError) as e:
        imagenet.main(args)
    assert 'empty class folder' in str(e.value) and WNIDS[0] in str(e.value)
    datagen.make_imagenet(src, WNIDS[:1], per_class=1, val_per_class=1)
    os.remove(os.path.join(src, 'val.txt'))
    with pytest.raises(DataError) as e:
        imagenet.main(args)
    assert 'label file' in str(e.value)
    with open(os.path.join(src, 'val.txt'), 'w') as f:
        f.write('ILSVRC2012_val_00000001.JPEG n99999999\n')
    with pytest.raises(DataError) as e:
        imagenet.main(args)
    assert 'n99999999' in str(e.value)
    # An undecodable image: one clear error naming it, and no pack left behind.
    with open(os.path.join(src, 'val.txt'), 'w') as f:
        f.write('ILSVRC2012_val_00000001.JPEG %s\n' % WNIDS[0])
    bad = os.path.join(src, 'train', WNIDS[0], 'broken.JPEG')
    with open(bad, 'wb') as f:
        f.write(b'\xff\xd8 not really a jpeg')
    with pytest.raises(DataError) as e:
        imagenet.main(args)
    assert bad in str(e.value)
    assert [f for f in datagen.pack_files(out) if 'imagenet_train' in f] == []


def test_imagenet_iterators(tmp_path):
    src, out = str(tmp_path / 'ilsvrc'), str(tmp_path / 'out')
    datagen.make_imagenet(src, WNIDS, per_class=2, val_per_class=1)
    imagenet.main(['--src', src, '--out', out, '--workers', '1', '--train-size', '480',
                   '--val-size', '256'])
    it = data.get_train_iter('imagenet', out, batch_size=4, seed=0)
    b = it.next()
    assert b.data[0].shape == (4, 3, 224, 224) and np.isfinite(b.data[0].asnumpy()).all()
    # Random crop size, aspect, mirror, contrast and illumination: reproducible per (seed,
    # epoch), with any number of decoding threads.
    runs = [[x.data[0].asnumpy() for x in data.get_train_iter(
        'imagenet', out, 4, epoch=1, seed=7, num_threads=t)] for t in (2, 2, 1)]
    for r in runs[1:]:
        for x, y in zip(runs[0], r):
            np.testing.assert_array_equal(x, y)
    got = [(x.data[0].shape, x.pad) for x in data.get_val_iter('imagenet', out, 2)]
    assert got == [((2, 3, 224, 224), 0), ((2, 3, 224, 224), 1)]


@pytest.mark.parametrize('augmentation', ['release-2016', 'release-2018'])
def test_augmentation_borders_are_the_mean_grey_not_white(tmp_path, augmentation):
    """Where an augmentation leaves borders (the 2018 recipe's 224 crops with aspect up to 1.25
    of images scaled down to 256), stock MXNet fills them white (255) unless told otherwise;
    ours get the rounded mean grey (112), as the authors' fork filled with the mean colour.
    (The 2016 recipe's crops stay inside the image: stock MXNet refuses a crop larger than it.)"""
    src, out = str(tmp_path / 'ilsvrc'), str(tmp_path / 'out')
    datagen.make_imagenet(src, WNIDS, per_class=4, val_per_class=1)
    imagenet.main(['--src', src, '--out', out, '--workers', '1', '--train-size', '480',
                   '--val-size', '256'])
    info = data.dataset_info('imagenet')
    fill = round(sum(info['mean']) / 3)
    assert fill == 112
    borders = []
    for epoch in range(4):
        for batch in data.get_train_iter('imagenet', out, 4, epoch=epoch, seed=3,
                                         augment=augmentation):
            x = batch.data[0].asnumpy()
            for c in range(3):  # back to pixels
                x[:, c] = x[:, c] * info['std'][c] + info['mean'][c]
            for image in x:  # constant full rows or columns over all channels are borders
                for lines in (image.transpose(1, 0, 2).reshape(224, -1),
                              image.transpose(2, 0, 1).reshape(224, -1)):
                    flat = lines[np.ptp(lines, axis=1) < 0.5]
                    borders.extend(np.round(flat.mean(axis=1)).tolist())
    # The colour jitter that follows the crop moves the border's grey too (2018: lightness up to
    # 50 levels; 2016: contrast 0.2 and illumination 10), but never to white.
    assert all(abs(level - fill) <= 60 for level in borders), sorted(set(borders))
    if augmentation == 'release-2018':
        assert borders  # the check saw borders to judge
