"""Pack scikit-learn's handwritten digits (1,797 real 8x8 scans, no download) as a tiny
CIFAR-shaped dataset for the demo and for tests.

    python data/digits.py --out DIR

Each 8x8 image (values 0-16) is scaled to 0-255 and enlarged 4x by pixel replication to 32x32,
grey replicated to 3 channels. Test set: 36 images of every class (360) drawn with --seed
(default 0); training set: the other 1,437. Writes digits_train/digits_test .rec/.idx plus
digits_mean_std.json.
"""
import argparse
import os

import numpy as np

from dmrnet.data import holdout, meanstd, packcli, png, records

TEST_PER_CLASS = 36
FIX = 'python data/digits.py --out %s'


def load_images():
    """All 1,797 digits as uint8 Nx32x32x3 RGB and int labels, in scikit-learn's order."""
    from sklearn.datasets import load_digits
    d = load_digits()
    small = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    # Pixel replication keeps every source pixel exactly recoverable (no interpolation).
    big = small.repeat(4, axis=1).repeat(4, axis=2)
    return np.repeat(big[..., None], 3, axis=3), d.target.astype(np.int64)


def split(labels, seed=0, test_per_class=TEST_PER_CLASS):
    """Boolean mask of the test images (stratified, deterministic for a given seed)."""
    return holdout.per_class_holdout(labels, test_per_class, seed, source='sklearn digits')


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--seed', type=int, default=0, help='seed of the train/test split')
    p.add_argument('--test-per-class', type=int, default=TEST_PER_CLASS)
    p.add_argument('--force', action='store_true', help='repack even if complete')
    args = p.parse_args(argv)
    fix = FIX % args.out
    names = ['digits_train', 'digits_test']
    if not args.force and records.complete(args.out, names, fix, extra_files=[
            meanstd.json_path(args.out, 'digits')]):
        return 'digits: %s already complete and verified, nothing to do' % args.out
    images, labels = load_images()
    test = split(labels, args.seed, args.test_per_class)
    meanstd.forget(args.out, 'digits')
    meta = {'source': 'sklearn.datasets.load_digits', 'seed': args.seed,
            'test_per_class': args.test_per_class}
    for name, mask in (('digits_train', ~test), ('digits_test', test)):
        sel = np.flatnonzero(mask)
        records.write_records(args.out, name,
                              ((labels[i], png.encode(images[i])) for i in sel),
                              total=sel.size, fix=fix, meta=meta)
    # The statistics come last: their file is part of what "complete" means for a re-run.
    stats = meanstd.ChannelStats()
    stats.update(images[~test])
    meanstd.write(args.out, 'digits', stats, 'digits_train')
    return 'digits: wrote %d train + %d test images to %s' % (
        (~test).sum(), test.sum(), os.path.abspath(args.out))


if __name__ == '__main__':
    packcli.run_cli(main)
