"""What a pack measures: the per-channel mean/std of its training images, written to
`<dataset>_mean_std.json` beside the records.

Training never reads that file: the iterators normalise with the statistics of the dataset
registry (data/registry.py). The file is there for people packing their own data with im2rec
(numbers to give with --rgb-mean/--rgb-std), for the tests that pin the registry's digits and
Fashion-MNIST values to what the packers measure, and, written last, as the mark that a packer
finished.
"""
import contextlib
import json
import os

import numpy as np

from dmrnet.utils.files import atomic_path


class ChannelStats:
    """Per-channel mean/std (RGB, 0-255) of uint8 NxHxWx3 batches.

    Kept as per-channel histograms of the 256 grey levels: exact, and no float copy of the
    data (the CIFAR training set would be 1.2 GB as float64).
    """

    def __init__(self):
        self.hist = np.zeros((3, 256), dtype=np.int64)

    @property
    def n(self):
        return int(self.hist[0].sum())

    def update(self, images, chunk=1 << 22):
        x = np.asarray(images, dtype=np.uint8).reshape(-1, 3)
        offset = np.array([0, 256, 512], dtype=np.int32)
        for start in range(0, len(x), chunk):
            # One bincount over (channel, level) pairs; chunked to bound the int32 copy.
            keys = x[start:start + chunk].astype(np.int32) + offset
            self.hist += np.bincount(keys.ravel(), minlength=768).reshape(3, 256)

    def result(self):
        levels = np.arange(256, dtype=np.float64)
        n = self.hist.sum(1).astype(np.float64)
        mean = (self.hist * levels).sum(1) / n
        var = (self.hist * (levels - mean[:, None]) ** 2).sum(1) / n
        return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in np.sqrt(var)]


def json_path(out_dir, dataset):
    return os.path.join(out_dir, '%s_mean_std.json' % dataset)


def forget(out_dir, dataset):
    """Called before (re)writing a dataset's records: the statistics file is written last and
    marks the dataset complete, so a repack stopped half-way must not find the old one."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(json_path(out_dir, dataset))


def write(out_dir, dataset, stats, split):
    """Write `stats` (a ChannelStats of `split`) as the dataset's statistics file."""
    mean, std = stats.result()
    path = json_path(out_dir, dataset)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump({'dataset': dataset, 'split': split, 'pixels': stats.n, 'mean': mean,
                   'std': std, 'channels': 'RGB', 'scale': '0-255'}, f, indent=1)
    return path
