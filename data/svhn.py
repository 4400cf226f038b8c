"""Pack SVHN (format 2, cropped 32x32 digits) with the paper's train/validation split.

    python data/svhn.py --out DIR [--src DIR_WITH_MAT_FILES] [--seed 0]

Without --src the three official .mat files are downloaded into DIR; each is verified by md5
(--md5 none skips that for home-made files). Split (as in the paper): validation = 400 images per
class from train_32x32.mat + 200 per class from extra_32x32.mat (6,000), training = everything
else (598,388), test = test_32x32.mat (26,032); which images go to validation is fixed by --seed.
Writes svhn_train, svhn_val, svhn_test .rec/.idx (PNG, lossless; label 10 stored as digit 0) and
svhn_mean_std.json. The images are streamed from the .mat files in chunks (extra_32x32.mat
alone would take 1.6 GB of memory), so packing needs little memory.
"""
import argparse
import os
import zlib

import numpy as np

from dmrnet.data import holdout, matfile, meanstd, packcli, png, records, sources
from dmrnet.data.errors import DataError, DatasetMissingError

URL = 'http://ufldl.stanford.edu/housenumbers/%s'
FILES = {'train': ('train_32x32.mat', 'e26dedcc434d2e4c54c9b2d4a06d8373'),
         'extra': ('extra_32x32.mat', 'a93ce644f1a588dc4d68dda5feec44a7'),
         'test': ('test_32x32.mat', 'eb5a983be6a315427106f1b164d9cef3')}
TRAIN_VAL_PER_CLASS = 400
EXTRA_VAL_PER_CLASS = 200
CHUNK = 4096
NAMES = ['svhn_train', 'svhn_val', 'svhn_test']


def fix_command(out, src=None):
    return 'python data/svhn.py --out %s%s' % (
        out, ' --src ' + src if src else ' (downloads the official .mat files)')


def check_layout(path, fix):
    """Number of images in one .mat file, checked from its header without loading it."""
    import scipy.io
    if not os.path.isfile(path):
        raise DatasetMissingError(path, 'missing SVHN file (format 2, %s)'
                                  % os.path.basename(path), fix)
    try:
        shapes = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    except Exception as e:  # scipy raises many types for damaged files
        raise DataError(path, 'unreadable .mat file, truncated or corrupt (%s)' % e,
                        fix) from None
    x, y = shapes.get('X'), shapes.get('y')
    if x is None or y is None or len(x) != 4 or x[:3] != (32, 32, 3) or tuple(y) != (x[3], 1):
        raise DataError(path, 'expected X 32x32x3xN and y Nx1, found X %s, y %s'
                        % (x, y), fix)
    return x[3]


def load_labels(path, fix):
    """Digit labels 0..9 of one .mat file (y; label 10 means digit 0)."""
    import scipy.io
    try:
        y = np.asarray(scipy.io.loadmat(path, variable_names=['y'])['y']).ravel()
    except Exception as e:  # scipy raises many types for damaged files
        raise DataError(path, 'unreadable .mat file, truncated or corrupt (%s)' % e,
                        fix) from None
    y = y.astype(np.int64)
    if y.size and not (1 <= y.min() and y.max() <= 10):
        raise DataError(path, 'labels must be 1..10 (10 = digit 0), found %d..%d'
                        % (y.min(), y.max()), fix)
    return y % 10


def images(path, fix):
    """X of one .mat file as NxHxWxC uint8 chunks of CHUNK images, streamed from the file."""
    try:
        yield from matfile.iter_uint8_array(path, 'X', CHUNK)
    except (matfile.FormatError, zlib.error, OSError) as e:
        raise DataError(path, 'unreadable X (%s)' % e, fix) from None


def paper_split(train_labels, extra_labels, seed=0, train_per_class=TRAIN_VAL_PER_CLASS,
                extra_per_class=EXTRA_VAL_PER_CLASS):
    """Validation masks over train and extra: `train_per_class` and `extra_per_class` random
    images of every digit, fixed by `seed`."""
    return (holdout.per_class_holdout(train_labels, train_per_class, [seed, 0], 10,
                                      FILES['train'][0]),
            holdout.per_class_holdout(extra_labels, extra_per_class, [seed, 1], 10,
                                      FILES['extra'][0]))


def _records(parts, fix, stats=None):
    """(label, PNG) of the selected images of each (path, labels, boolean selection)."""
    for path, labels, selected in parts:
        first = 0
        for chunk in images(path, fix):
            keep = selected[first:first + len(chunk)]
            picked = chunk[keep]
            if stats is not None:
                stats.update(picked)
            for img, label in zip(picked, labels[first:first + len(chunk)][keep]):
                yield label, png.encode(img)
            first += len(chunk)


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--src', help='folder with the three .mat files (default: download)')
    p.add_argument('--seed', type=int, default=0, help='seed of the validation split')
    p.add_argument('--md5', choices=['official', 'none'], default='official',
                   help='check the .mat files against the official md5s, or not')
    p.add_argument('--train-val-per-class', type=int, default=TRAIN_VAL_PER_CLASS)
    p.add_argument('--extra-val-per-class', type=int, default=EXTRA_VAL_PER_CLASS)
    p.add_argument('--force', action='store_true', help='repack even if complete')
    args = p.parse_args(argv)
    fix = fix_command(args.out, args.src)
    if not args.force and records.complete(args.out, NAMES, fix, extra_files=[
            meanstd.json_path(args.out, 'svhn')]):
        return 'svhn: %s already complete and verified, nothing to do' % args.out

    files = {}
    for key, (name, md5) in FILES.items():
        if args.src:
            files[key] = os.path.join(args.src, name)
            refetch = 'put the official %s in %s, or run python data/svhn.py --out %s ' \
                '(downloads it)' % (URL % name, args.src, args.out)
            check_layout(files[key], refetch)
            if args.md5 == 'official':
                sources.check_md5(files[key], md5, refetch + ' (--md5 none accepts other files)')
        else:
            files[key] = sources.download(URL % name, os.path.join(args.out, name), md5, fix)
    # Every file checked before anything is written; then the split, from the labels alone.
    counts = {k: check_layout(f, fix) for k, f in files.items()}
    labels = {k: load_labels(f, fix) for k, f in files.items()}
    val_train, val_extra = paper_split(labels['train'], labels['extra'], args.seed,
                                       args.train_val_per_class, args.extra_val_per_class)
    meanstd.forget(args.out, 'svhn')
    meta = {'seed': args.seed, 'train_val_per_class': args.train_val_per_class,
            'extra_val_per_class': args.extra_val_per_class}
    n_train = int((~val_train).sum() + (~val_extra).sum())
    n_val = int(val_train.sum() + val_extra.sum())
    stats = meanstd.ChannelStats()
    # The statistics are gathered while the training set is encoded (one pass over the data),
    # so the JSON comes after the records; a re-run repacks everything if it is missing.
    records.write_records(args.out, 'svhn_train', _records(
        [(files['train'], labels['train'], ~val_train),
         (files['extra'], labels['extra'], ~val_extra)], fix, stats),
        total=n_train, fix=fix, meta=meta)
    records.write_records(args.out, 'svhn_val', _records(
        [(files['train'], labels['train'], val_train),
         (files['extra'], labels['extra'], val_extra)], fix), total=n_val, fix=fix, meta=meta)
    records.write_records(args.out, 'svhn_test', _records(
        [(files['test'], labels['test'], np.ones(counts['test'], bool))], fix),
        total=counts['test'], fix=fix, meta=meta)
    meanstd.write(args.out, 'svhn', stats, 'svhn_train')
    return 'svhn: wrote %d train + %d val + %d test images to %s' % (
        n_train, n_val, counts['test'], os.path.abspath(args.out))


if __name__ == '__main__':
    packcli.run_cli(main)
