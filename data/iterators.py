"""Reading packed datasets: get_train_iter / get_val_iter, ImageRecordIter factories (decoding
and augmentation run in MXNet's C++ threads) built from the registry's facts (data/registry.py).

The augmentation recipes are here, not in the registry: they are ImageRecordIter's arguments.
The registry names each dataset's recipe ('cifar', 'plain', 'imagenet') and the facts a recipe
depends on (the statistics, a border colour).

Reproducibility: the shuffle order and the augmentation draws of a training epoch are a function
of (seed, epoch, part_index) only. A training iterator is therefore rebuilt for every epoch rather
than reshuffled in place, so a run resumed at epoch e sees what an uninterrupted run saw.
"""
import collections

import mxnet as mx
import numpy as np

from dmrnet.data import records
from dmrnet.data.errors import DataError
from dmrnet.data.registry import dataset_info, normalisation, pack_command
from dmrnet.utils.runtime import usable_cores

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


def record_files(dataset, data_dir, split):
    """The Pack (.rec, .idx, repair command) of `split` ('train', 'val' or a record base name)
    after checking it is complete; raises DatasetMissingError / DataError naming the file and
    the packing command."""
    info = dataset_info(dataset)
    name = info.get(split, split)
    fix = pack_command(dataset, data_dir)
    records.verify_records(data_dir, name, fix=fix, classes=info['classes'])
    rec, idx, _ = records.paths(data_dir, name)
    return records.Pack(rec, idx, fix)


_Source = collections.namedtuple('_Source', 'info mean std rec idx fix')


def _source(dataset, data_dir, split, files, stats):
    """What an iterator reads and how: the dataset's facts, the (mean, std) it normalises with
    (`stats`, else the dataset's), the .rec/.idx and the command that repairs them. `files`:
    None (the dataset's pack, checked here), (.rec, .idx) of a pack by path (checked here) or a
    records.Pack, checked by whoever made it (a run's plan, once, rather than every epoch)."""
    info = dataset_info(dataset)
    mean, std = normalisation(info, stats)
    if isinstance(files, records.Pack):
        pack = files
    elif files is not None:
        pack = records.external_pack(*files, classes=info['classes'])
    else:
        pack = record_files(dataset, data_dir, split)
    return _Source(info, mean, std, pack.rec, pack.idx, pack.fix)


def _derived_seed(*parts):
    # ImageRecordIter takes a C int; SeedSequence mixes the parts so nearby (seed, epoch) pairs
    # do not give related streams.
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] >> 1)


def _common_args(src, batch_size, num_parts, part_index, num_threads):
    mean, std = src.mean, src.std
    return dict(path_imgrec=src.rec, path_imgidx=src.idx,
                data_shape=tuple(src.info['image_shape']),
                batch_size=batch_size, num_parts=num_parts, part_index=part_index,
                # ctx='cpu' would switch to OpenMP threads and ignore preprocess_threads.
                preprocess_threads=num_threads or usable_cores(), verbose=False,
                mean_r=mean[0], mean_g=mean[1], mean_b=mean[2],
                std_r=std[0], std_g=std[1], std_b=std[2],
                data_name='data', label_name='softmax_label')


def border_fill(info, mean):
    """The grey level for borders an augmentation creates (padding, warped crops): stock MXNet
    1.9.1 fills them white (fill_value 255) unless told otherwise, and takes one level for all
    channels, so the mean colour the images are normalised with becomes the rounded average of
    its three channels (after normalisation within 0.14 std of zero, not exactly zero). A
    dataset may name its own (Fashion-MNIST: black, its background)."""
    return info.get('pad_fill', int(round(float(np.mean(mean)))))


def _train_args(src, augment):
    """ImageRecordIter's augmentation arguments: `augment` False (none), True (the dataset's
    default) or, for ImageNet, the name of one of IMAGENET_AUGMENTATIONS."""
    recipe = src.info['recipe']
    if not augment or recipe == 'plain':
        return {}
    fill = border_fill(src.info, src.mean)
    if recipe == 'cifar':
        return dict(pad=CIFAR_PAD, fill_value=fill, rand_crop=True, rand_mirror=True)
    if recipe == 'imagenet':
        name = DEFAULT_IMAGENET_AUGMENTATION if augment is True else augment
        if name not in IMAGENET_AUGMENTATIONS:
            raise ValueError('unknown ImageNet augmentation %r: use one of %s'
                             % (name, ', '.join(IMAGENET_AUGMENTATIONS)))
        return dict(rand_crop=True, rand_mirror=True, fill_value=fill,
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
            raise DataError(self.source, 'a record cannot be read or decoded (%s): the pack is '
                            'damaged' % (lines[-1].strip() if lines else e), self.fix) from None

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
    instead of the dataset's, and a records.Pack one already checked; `stats` = (mean, std)
    replaces the dataset's statistics.
    """
    src = _source(dataset, data_dir, 'train', files, stats)
    base = _common_args(src, batch_size, num_parts, part_index, num_threads)
    base.update(_train_args(src, augment))

    def make(e):
        return mx.io.ImageRecordIter(shuffle=True, seed=_derived_seed(seed, e, 0),
                                     seed_aug=_derived_seed(seed, e, 1, part_index),
                                     round_batch=True, **base)

    return _labelled(EpochIter(make, epoch), src)


def get_val_iter(dataset, data_dir, batch_size, num_parts=1, part_index=0, num_threads=None,
                 split='val', files=None, stats=None):
    """Every image of the evaluation split (`split`: 'val', i.e. the set the paper reports on,
    or another record name such as 'svhn_val') exactly once, in file order; the last batch is
    padded and `batch.pad` says how many of its images to ignore. `files` and `stats` as for
    get_train_iter."""
    src = _source(dataset, data_dir, split, files, stats)
    args = _common_args(src, batch_size, num_parts, part_index, num_threads)
    if src.info['recipe'] == 'imagenet':
        # the shorter side to 256 (the release: 480 x 0.533), then the centre 224
        args.update(resize=IMAGENET_VAL_RESIZE, inter_method=9)
    count = part_size(src.idx, num_parts, part_index)
    return _labelled(PaddedIter(lambda: mx.io.ImageRecordIter(shuffle=False, round_batch=True,
                                                              **args), count), src)


def _labelled(iterator, src):
    iterator.source, iterator.fix = src.rec, src.fix
    return iterator


def part_size(idx, num_parts=1, part_index=0):
    """Images in one part, split as MXNet's indexed RecordIO splitter does (contiguous runs of
    ceil(n / num_parts) records)."""
    n = records.count_records(idx)
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
