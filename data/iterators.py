"""Reading packed datasets: one ImageRecordIter recipe per dataset (decoding and augmentation
run in MXNet's C++ threads) behind dataset_info / get_train_iter / get_val_iter.

Reproducibility: the shuffle order and the augmentation draws of a training epoch are a function
of (seed, epoch, part_index) only. A training iterator is therefore rebuilt for every epoch rather
than reshuffled in place, so a run resumed at epoch e sees what an uninterrupted run saw.
"""
import os

import mxnet as mx
import numpy as np

from dmrnet.data import common
from dmrnet.utils.places import default_path
from dmrnet.utils.runtime import usable_cores

# Mean/std (RGB, 0-255) of each training set: the authors' values for CIFAR/SVHN/ImageNet
# (their release's data code); digits computed by data/digits.py (seed 0) and pinned by a test.
def _dataset(sizes, shape, mean, std, recipe, pack, test='test', **extra):
    """One dataset's facts: (classes, training images, test images), image shape (C, H, W),
    per-channel mean/std, the augmentation recipe, the packer; records <name>_train and
    <name>_<test> unless named otherwise."""
    classes, num_train, num_val = sizes
    return dict(classes=classes, num_train=num_train, num_val=num_val, image_shape=shape,
                mean=mean, std=std, recipe=recipe, pack=pack, test=test, **extra)


_GREY_DIGITS = ((78.0048,) * 3, (95.9909,) * 3)
_GREY_FASHION = ((72.9404,) * 3, (90.0212,) * 3)
_DATASETS = {
    'cifar10': _dataset((10, 50000, 10000), (3, 32, 32), (125.307, 122.950, 113.865),
                        (62.993, 62.089, 66.705), 'cifar',
                        'python data/cifar.py --dataset cifar10 --out {dir}'),
    'cifar100': _dataset((100, 50000, 10000), (3, 32, 32), (129.304, 124.070, 112.434),
                         (68.170, 65.392, 70.418), 'cifar',
                         'python data/cifar.py --dataset cifar100 --out {dir}'),
    'svhn': _dataset((10, 598388, 26032), (3, 32, 32), (111.609, 113.161, 120.565),
                     (50.498, 51.259, 50.244), 'plain', 'python data/svhn.py --out {dir}',
                     holdout='svhn_val', num_holdout=6000),
    'imagenet': _dataset((1000, 1281167, 50000), (3, 224, 224), (123.370, 112.757, 99.406),
                         (68.998, 66.093, 68.292), 'imagenet',
                         'python data/imagenet.py --src ILSVRC2012_ROOT --out {dir}', test='val'),
    'digits': _dataset((10, 1437, 360), (3, 32, 32), *_GREY_DIGITS, 'plain',
                       'python data/digits.py --out {dir}'),
    # Fashion-MNIST: mean/std of all 60,000 training images (grey, three equal channels),
    # computed by data/fashion.py and pinned by a test. Padding is black, the images' own
    # background (zero padding is this set's standard augmentation).
    'fashion': _dataset((10, 60000, 10000), (3, 28, 28), *_GREY_FASHION, 'cifar',
                        'python data/fashion.py --out {dir}', pad_fill=0),
}
for _name, _info in _DATASETS.items():
    _info.update(train='%s_train' % _name, val='%s_%s' % (_name, _info.pop('test')))
# 'fashion_val' trains on 55,000 training images and validates on the 5,000 held out, to choose
# a recipe without the test set; data/fashion.py packs both into the 'fashion' folder.
_DATASETS['fashion_val'] = dict(_DATASETS['fashion'], num_train=55000, num_val=5000,
                                train='fashion_trainsub', val='fashion_val', folder='fashion')

CIFAR_PAD = 4
# ImageNet, as the release whose networks Table 4 matches trained them (its first commit's
# train_imagenet.py, --aug-type 1): images packed with the shorter side 480; a random square
# crop of 196-480 pixels resized to 224, aspect 0.75-1.25, mirror, contrast +-0.2, illumination
# +-10, no scale jitter, no HSL; automatic interpolation.
IMAGENET_AUGMENTATIONS = {
    'release-2016': dict(min_crop_size=196, max_crop_size=480, max_aspect_ratio=0.25,
                         max_random_contrast=0.2, max_random_illumination=10, min_img_size=256,
                         inter_method=9),
    # The release's later ImageNet branch: the packed image scaled by 0.533-1.0 (shorter side
    # about 256-480), aspect 0.75-1.25, a 224 crop, HSL jitter (36, 50, 50).
    'release-2018': dict(min_random_scale=0.533, max_random_scale=1.0, max_aspect_ratio=0.25,
                         random_h=36, random_s=50, random_l=50),
}
DEFAULT_IMAGENET_AUGMENTATION = 'release-2016'
IMAGENET_VAL_RESIZE = 256


def dataset_names():
    return sorted(_DATASETS)


def dataset_info(name, data_dir=None):
    """Facts about a dataset (see docs/CONTRACTS.md); `pack` is the command packing it into
    `data_dir` (default: default_data_dir(name), the train scripts' default)."""
    try:
        info = dict(_DATASETS[name])
    except KeyError:
        raise ValueError('unknown dataset %r (known: %s)'
                         % (name, ', '.join(dataset_names()))) from None
    info['mean'], info['std'] = list(info['mean']), list(info['std'])
    info['folder'] = info.get('folder', name)
    info['pack'] = info['pack'].format(dir=data_dir or default_path('data', info['folder']))
    return info


def default_data_dir(name):
    """Where the scripts look for a dataset's pack when no --data-dir is given: data/<folder>
    (a dataset that is a split of another's pack shares that folder), under the folder
    dmrnet.utils.places chooses (the current one, or the checkout)."""
    return default_path('data', dataset_info(name)['folder'])


def pack_command(name, data_dir):
    return dataset_info(name, data_dir)['pack']


def record_files(dataset, data_dir, split):
    """(.rec, .idx) of `split` ('train', 'val' or a record base name) after checking the pack is
    complete; raises DatasetMissingError / DataError naming the file and the packing command."""
    info = dataset_info(dataset)
    name = info.get(split, split)
    common.verify_records(data_dir, name, fix=pack_command(dataset, data_dir),
                          classes=info['classes'])
    rec, idx, _ = common.paths(data_dir, name)
    return rec, idx


def external_pack(rec, idx=None, classes=None):
    """(.rec, .idx) of a pack made elsewhere (MXNet's im2rec, a lab's existing ImageNet pack),
    taken by path: no manifest, so what is checked is that both files exist and that every
    record's header is sound (and with `classes`, its label one of them). `idx` defaults to the
    .rec's name with .idx."""
    idx = idx or os.path.splitext(rec)[0] + '.idx'
    fix = 'give the pack\'s .rec and .idx (im2rec PREFIX ROOT writes PREFIX.rec + PREFIX.idx)'
    for path in (rec, idx):
        if not os.path.exists(path):
            raise common.DatasetMissingError(path, 'missing', fix)
    common.check_record_headers(rec, idx, 'repack it (im2rec) with labels 0 to classes-1',
                                classes)
    return rec, idx


def count_records(idx):
    """Records an .idx names."""
    with open(idx) as f:
        return sum(1 for line in f if line.strip())


def _source(dataset, data_dir, split, files, stats):
    """(info with the statistics to normalise with, .rec, .idx, the repair command) of the
    records an iterator reads: the dataset's pack, or `files` = (.rec, .idx) by path."""
    info = dataset_info(dataset)
    if stats is not None:
        info['mean'], info['std'] = list(stats[0]), list(stats[1])
    if files is not None:
        rec, idx = external_pack(*files, classes=info['classes'])
        return info, rec, idx, 'repack it (im2rec)'
    rec, idx = record_files(dataset, data_dir, split)
    return info, rec, idx, pack_command(dataset, data_dir)


def _derived_seed(*parts):
    # ImageRecordIter takes a C int; SeedSequence mixes the parts so nearby (seed, epoch) pairs
    # do not give related streams.
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] >> 1)


def _common_args(info, rec, idx, batch_size, num_parts, part_index, num_threads):
    mean, std = info['mean'], info['std']
    return dict(path_imgrec=rec, path_imgidx=idx, data_shape=tuple(info['image_shape']),
                batch_size=batch_size, num_parts=num_parts, part_index=part_index,
                # ctx='cpu' would switch to OpenMP threads and ignore preprocess_threads.
                preprocess_threads=num_threads or usable_cores(), verbose=False,
                mean_r=mean[0], mean_g=mean[1], mean_b=mean[2],
                std_r=std[0], std_g=std[1], std_b=std[2],
                data_name='data', label_name='softmax_label')


def border_fill(info):
    """The grey level for borders an augmentation creates (padding, warped crops): stock MXNet
    1.9.1 fills them white (fill_value 255) unless told otherwise, and takes one level for all
    channels, so the authors' mean colour becomes the rounded average of the three channel
    means (after normalisation within 0.14 std of zero, not exactly zero). A dataset may name
    its own (Fashion-MNIST: black, its background)."""
    return info.get('pad_fill', int(round(float(np.mean(info['mean'])))))


def _train_args(info, augment):
    """ImageRecordIter's augmentation arguments: `augment` False (none), True (the dataset's
    default) or, for ImageNet, the name of one of IMAGENET_AUGMENTATIONS."""
    recipe = info['recipe']
    if not augment or recipe == 'plain':
        return {}
    if recipe == 'cifar':
        return dict(pad=CIFAR_PAD, fill_value=border_fill(info), rand_crop=True,
                    rand_mirror=True)
    if recipe == 'imagenet':
        name = DEFAULT_IMAGENET_AUGMENTATION if augment is True else augment
        if name not in IMAGENET_AUGMENTATIONS:
            raise ValueError('unknown ImageNet augmentation %r: use one of %s'
                             % (name, ', '.join(IMAGENET_AUGMENTATIONS)))
        return dict(rand_crop=True, rand_mirror=True, fill_value=border_fill(info),
                    **IMAGENET_AUGMENTATIONS[name])
    raise ValueError(recipe)


class _Wrapper(mx.io.DataIter):
    """An iterator around another (`self._it`), describing its batches as that one does. A
    record that cannot be decoded (a damaged payload passes the start-up header check) becomes
    a DataError naming the pack and the command that repacks it, not a C++ traceback."""

    source = fix = None

    def _read(self):
        try:
            return self._it.next()
        except mx.base.MXNetError as e:
            lines = [line for line in str(e).splitlines() if 'rror' in line]
            raise common.DataError(self.source, 'a record cannot be read or decoded (%s): the '
                                   'pack is damaged' % (lines[-1].strip() if lines else e),
                                   self.fix) from None

    @property
    def provide_data(self):
        return self._it.provide_data

    @property
    def provide_label(self):
        return self._it.provide_label


class EpochIter(_Wrapper):
    """A training iterator whose every epoch is a fresh ImageRecordIter seeded by
    (seed, epoch, part_index).

    reset() advances to the next epoch, except on an iterator nothing has been read from yet
    (so both "reset before each epoch" and "reset after each epoch" loops see epochs 0, 1, ...).
    """

    def __init__(self, make, epoch):
        super().__init__()
        self._make, self.epoch = make, epoch
        self._it = make(epoch)
        self._started = False
        self.batch_size = self._it.batch_size

    def set_epoch(self, epoch):
        self.epoch, self._started = epoch, False
        self._it = self._make(epoch)

    def reset(self):
        if self._started:
            self.set_epoch(self.epoch + 1)

    def next(self):
        self._started = True
        return self._read()


def get_train_iter(dataset, data_dir, batch_size, epoch=0, seed=0, num_parts=1, part_index=0,
                   num_threads=None, augment=True, files=None, stats=None):
    """Shuffled (and for CIFAR/ImageNet augmented) training batches of float32 NCHW `data` and
    `softmax_label`; what epoch `epoch` yields depends only on (seed, epoch, part_index).
    `augment`: True (the dataset's own), False, or an ImageNet augmentation's name.

    Every batch is full: the last one of an epoch is completed with images from the start of
    the part (ImageRecordIter round_batch). `files` = (.rec, .idx) reads a pack made elsewhere
    instead of the dataset's; `stats` = (mean, std) replaces the dataset's statistics.
    """
    info, rec, idx, fix = _source(dataset, data_dir, 'train', files, stats)
    base = _common_args(info, rec, idx, batch_size, num_parts, part_index, num_threads)
    base.update(_train_args(info, augment))

    def make(e):
        return mx.io.ImageRecordIter(shuffle=True, seed=_derived_seed(seed, e, 0),
                                     seed_aug=_derived_seed(seed, e, 1, part_index),
                                     round_batch=True, **base)

    return _labelled(EpochIter(make, epoch), rec, fix)


def get_val_iter(dataset, data_dir, batch_size, num_parts=1, part_index=0, num_threads=None,
                 split='val', files=None, stats=None):
    """Every image of the evaluation split (`split`: 'val', i.e. the set the paper reports on,
    or another record name such as 'svhn_val') exactly once, in file order; the last batch is
    padded and `batch.pad` says how many of its images to ignore. `files` and `stats` as for
    get_train_iter."""
    info, rec, idx, fix = _source(dataset, data_dir, split, files, stats)
    args = _common_args(info, rec, idx, batch_size, num_parts, part_index, num_threads)
    if info['recipe'] == 'imagenet':
        # the shorter side to 256 (the release: 480 x 0.533), then the centre 224
        args.update(resize=IMAGENET_VAL_RESIZE, inter_method=9)
    count = part_size(idx, num_parts, part_index)
    return _labelled(PaddedIter(lambda: mx.io.ImageRecordIter(shuffle=False, round_batch=True,
                                                              **args), count),
                     rec, fix)


def _labelled(iterator, rec, fix):
    iterator.source, iterator.fix = rec, fix
    return iterator


def part_size(idx, num_parts=1, part_index=0):
    """Images in one part, split as MXNet's indexed RecordIO splitter does (contiguous runs of
    ceil(n / num_parts) records)."""
    with open(idx) as f:
        n = sum(1 for line in f if line.strip())
    step = -(-n // num_parts)
    return max(0, min(step * (part_index + 1), n) - min(step * part_index, n))


class PaddedIter(_Wrapper):
    """Sets `batch.pad` on the last batch of an epoch.

    MXNet 1.9's ImageRecordIter reports pad=0 (or a stale value) whatever round_batch says;
    with round_batch=False the padding holds uninitialised data (NaN labels), and after a
    wrap-around its reset() starts the next pass where the wrap stopped. So the reader wraps
    (padding = the part's first images, valid data), the wrapper counts images itself, and
    reset() rebuilds the reader so that every pass is the same.
    """

    def __init__(self, make, count):
        self._make = make
        self._it = make()
        super().__init__(self._it.batch_size)
        self.count = count
        self.num_batches = -(-count // self.batch_size)
        self._i = 0

    def reset(self):
        if self._i:
            self._it = self._make()
        self._i = 0

    def next(self):
        if self._i >= self.num_batches:
            raise StopIteration
        batch = self._read()
        self._i += 1
        batch.pad = max(0, self._i * self.batch_size - self.count)
        return batch
