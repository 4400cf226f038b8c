"""Pack Fashion-MNIST (the four official idx files) into lossless RecordIO, with a validation
split for choosing a training recipe without looking at the test set.

    python data/fashion.py --out DIR [--src DIR] [--seed 0] [--val-per-class 500] [--force]

--src (default /usr/share/datasets/fashion-mnist, where Debian's dataset-fashion-mnist installs
them) holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz
and t10k-labels-idx1-ubyte.gz as downloaded from the official site, or the same files
decompressed (names without .gz). Every file is checked (idx header, counts, 28x28, labels 0..9
and the md5 of its decompressed bytes) before anything is written.

Writes fashion_train (60,000) and fashion_test (10,000); fashion_val (500 images of every class
of the training set, drawn with --seed) and fashion_trainsub (the other 55,000); and
fashion_mean_std.json (statistics of all 60,000 training images). Images are single-channel
PNG: lossless, and ImageRecordIter with data_shape (3, 28, 28) decodes them into three
identical channels.
"""
import argparse
import gzip
import hashlib
import os
import zlib

import numpy as np

from dmrnet.data import holdout, meanstd, packcli, png, records
from dmrnet.data.errors import DataError, DatasetMissingError

SRC = '/usr/share/datasets/fashion-mnist'
URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
PACKAGE = 'dataset-fashion-mnist'
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801   # unsigned bytes, 3 / 1 dimensions
SIZE = 28
CLASSES = 10
VAL_PER_CLASS = 500
NAMES = ['fashion_train', 'fashion_test', 'fashion_trainsub', 'fashion_val']

# What each split's files must hold: (file name, md5 of the DECOMPRESSED bytes) and the count.
# Debian recompresses the files, so only the decompressed bytes are the same everywhere; the
# official .gz files have md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d, 25c81989df183df01b3e8a0aad5dffbe,
# bef4ecab320f06d8554ea6380940ec79 and bb300cfdad3c16e7a12a480ee83cd310 (train images, train
# labels, t10k images, t10k labels). Tests replace this table for their small files.
SPLITS = {
    'train': dict(images=('train-images-idx3-ubyte', 'f4a8712d7a061bf5bd6d2ca38dc4d50a'),
                  labels=('train-labels-idx1-ubyte', '9018921c3c673c538a1fc5bad174d6f9'),
                  count=60000),
    'test': dict(images=('t10k-images-idx3-ubyte', '8181f5470baa50b63fa0f6fddb340f0a'),
                 labels=('t10k-labels-idx1-ubyte', '15d484375f8d13e6eb1aabb0c3f46965'),
                 count=10000),
}


def fix_command(out, src):
    return 'python data/fashion.py --out %s%s' % (out, '' if src == SRC else ' --src ' + src)


def refetch(name, damaged=False):
    """How to bring in a missing or damaged file: Debian's package or the official download."""
    return 'apt-get install %s%s (installs the four files in %s), or download %s%s.gz and the ' \
        'other three files and give their folder with --src' % (
            '--reinstall ' if damaged else '', PACKAGE, SRC, URL, name)


def locate(src, name):
    """Path of `name` in `src`: the official .gz, else the decompressed file, else None."""
    for path in (os.path.join(src, name + '.gz'), os.path.join(src, name)):
        if os.path.isfile(path):
            return path
    return None


def locate_all(src, splits):
    """{file name: path} of every file of `splits`; one error naming all that are missing."""
    wanted = [splits[s][kind][0] for s in ('train', 'test') for kind in ('images', 'labels')]
    found = {name: locate(src, name) for name in wanted}
    missing = [name for name in wanted if found[name] is None]
    if missing:
        others = '; also missing: %s' % ', '.join(m + '.gz' for m in missing[1:]) \
            if missing[1:] else ''
        raise DatasetMissingError(
            os.path.join(src, missing[0] + '.gz'),
            'missing Fashion-MNIST file (the decompressed %s is accepted too)%s'
            % (missing[0], others), refetch(missing[0]))
    return found


def read_bytes(path, fix):
    """The file's decompressed bytes (gzip is recognised by its name, as officially shipped)."""
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                return f.read()
        with open(path, 'rb') as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(path, 'unreadable%s, truncated or corrupt (%s)'
                        % (' gzip file' if path.endswith('.gz') else '', e), fix) from None


def parse_idx(data, path, magic, item_shape, fix):
    """The items of one idx file as uint8 N x item_shape, after checking its header against
    its length (a truncated or padded file does not parse)."""
    ndim = 1 + len(item_shape)
    header = 4 * (1 + ndim)
    kind = 'images' if magic == IMAGES_MAGIC else 'labels'
    if len(data) < header:
        raise DataError(path, 'truncated: %d bytes, shorter than the %d-byte header of '
                        'an idx file of %s' % (len(data), header, kind), fix)
    fields = np.frombuffer(data, '>u4', count=1 + ndim)
    if fields[0] != magic:
        raise DataError(path, 'idx magic number %d, expected %d (%s)'
                        % (fields[0], magic, kind), fix)
    count, shape = int(fields[1]), tuple(int(d) for d in fields[2:])
    if shape != tuple(item_shape):
        raise DataError(path, '%s of %s, expected %s' % (
            kind, 'x'.join(map(str, shape)), 'x'.join(map(str, item_shape))), fix)
    expected = header + count * int(np.prod(item_shape, dtype=np.int64))
    if len(data) != expected:
        raise DataError(path, '%s: the header says %d %s (%d bytes), the file has %d '
                        'bytes' % ('truncated' if len(data) < expected else 'trailing data',
                                   count, kind, expected, len(data)), fix)
    return np.frombuffer(data, np.uint8, offset=header).reshape((count,) + tuple(item_shape))


def check_md5(data, path, md5, fix):
    got = hashlib.md5(data).hexdigest()
    if md5 and got != md5:
        raise DataError(path, 'md5 of the decompressed bytes is %s, expected %s (corrupt '
                        'or modified file)' % (got, md5), fix)


def load_split(src, split, splits=None, found=None):
    """(uint8 Nx28x28 images, int64 labels) of 'train' or 'test', every check passed.

    `splits` (default SPLITS) gives the file names, md5s (None: not checked) and the count;
    the md5 comes last, so a damaged file is reported by what is wrong with it when that can
    be seen.
    """
    spec = (splits or SPLITS)[split]
    found = found or locate_all(src, splits or SPLITS)
    (images_name, images_md5), (labels_name, labels_md5) = spec['images'], spec['labels']
    images_path, labels_path = found[images_name], found[labels_name]
    images_fix, labels_fix = refetch(images_name, True), refetch(labels_name, True)
    raw_images = read_bytes(images_path, images_fix)
    raw_labels = read_bytes(labels_path, labels_fix)
    images = parse_idx(raw_images, images_path, IMAGES_MAGIC, (SIZE, SIZE), images_fix)
    labels = parse_idx(raw_labels, labels_path, LABELS_MAGIC, (), labels_fix)
    if len(images) != len(labels):
        raise DataError(labels_path, '%d labels for the %d images of %s'
                        % (len(labels), len(images), images_path), labels_fix)
    if len(images) != spec['count']:
        raise DataError(images_path, '%d images, the %s set has %d'
                        % (len(images), split, spec['count']), images_fix)
    if labels.size and labels.max() >= CLASSES:
        bad = int(np.argmax(labels >= CLASSES))
        raise DataError(labels_path, 'label %d at item %d, expected 0..%d'
                        % (labels[bad], bad, CLASSES - 1), labels_fix)
    check_md5(raw_images, images_path, images_md5, images_fix)
    check_md5(raw_labels, labels_path, labels_md5, labels_fix)
    return images, labels.astype(np.int64)


def validation_split(labels, seed=0, per_class=VAL_PER_CLASS):
    """Boolean mask of the validation images (stratified, deterministic for a given seed)."""
    return holdout.per_class_holdout(labels, per_class, seed, CLASSES,
                                     SPLITS['train']['labels'][0])


def encode(images):
    """Single-channel PNGs: an HxWx1 array makes png.encode's RGB->BGR flip a no-op, and
    OpenCV then writes a grey PNG (about 520 bytes per Fashion-MNIST image; three equal
    channels take 1.75 times that)."""
    return [png.encode(x[:, :, None]) for x in images]


def channel_stats(images, chunk=5000):
    """Statistics of the grey images as the three (equal) RGB channels the iterator sees."""
    stats = meanstd.ChannelStats()
    for start in range(0, len(images), chunk):
        stats.update(np.repeat(images[start:start + chunk, :, :, None], 3, axis=3))
    return stats


def packed_split(out, fix):
    """The (seed, per_class) a complete earlier pack drew its validation split with."""
    meta = records.verify_records(out, 'fashion_val', fix).get('meta', {})
    return meta.get('seed'), meta.get('val_per_class')


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--src', default=SRC, help='folder with the four idx files (default: %s, '
                   'from apt-get install %s)' % (SRC, PACKAGE))
    p.add_argument('--seed', type=int, default=0, help='seed of the validation split')
    p.add_argument('--val-per-class', type=int, default=VAL_PER_CLASS,
                   help='validation images of every class, taken from the training set')
    p.add_argument('--force', action='store_true', help='repack even if complete')
    args = p.parse_args(argv)
    fix = fix_command(args.out, args.src)
    n_train, n_test = SPLITS['train']['count'], SPLITS['test']['count']
    n_val = CLASSES * args.val_per_class
    counts = [n_train, n_test, n_train - n_val, n_val]
    # A re-run with another split is not "nothing to do", even though every file verifies.
    if not args.force and records.complete(args.out, NAMES, fix, counts=counts, extra_files=[
            meanstd.json_path(args.out, 'fashion')]) \
            and packed_split(args.out, fix) == (args.seed, args.val_per_class):
        return 'fashion: %s already complete and verified, nothing to do' % args.out

    # Every file checked, and the split drawn, before anything is written.
    found = locate_all(args.src, SPLITS)
    train_x, train_y = load_split(args.src, 'train', found=found)
    test_x, test_y = load_split(args.src, 'test', found=found)
    val = validation_split(train_y, args.seed, args.val_per_class)
    meanstd.forget(args.out, 'fashion')
    meta = {'source': {name: os.path.abspath(path) for name, path in found.items()},
            'seed': args.seed, 'val_per_class': args.val_per_class, 'png': 'grey'}
    train_png = encode(train_x)   # encoded once for the training set and both parts of it
    for name, encoded, labels in (('fashion_train', train_png, train_y),
                                  ('fashion_test', encode(test_x), test_y)):
        records.write_records(args.out, name, zip(labels, encoded), total=len(labels), fix=fix,
                              meta=meta)
    for name, mask in (('fashion_trainsub', ~val), ('fashion_val', val)):
        sel = np.flatnonzero(mask)
        records.write_records(args.out, name, ((train_y[i], train_png[i]) for i in sel),
                              total=sel.size, fix=fix, meta=meta)
    # The statistics come last: their file is part of what "complete" means for a re-run.
    meanstd.write(args.out, 'fashion', channel_stats(train_x), 'fashion_train')
    return 'fashion: wrote %d train + %d test (+ %d/%d validation split) to %s' % (
        len(train_y), len(test_y), (~val).sum(), val.sum(), os.path.abspath(args.out))


if __name__ == '__main__':
    packcli.run_cli(main)
