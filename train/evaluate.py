"""Scoring: the one evaluation routine (`evaluate`: training, this CLI and INT8 quantization all
count errors with it), and the CLI that scores an exported model (prefix-symbol.json +
prefix-NNNN.params) on a packed test set.

    python train/evaluate.py --prefix runs/demo/best --data-dir data/digits
    -> "runs/demo/best (epoch 20) on digits test: top-1 error 3.06% (360 images)"

The epoch, the data set (--dataset chooses another), the input size and the normalisation are
the export's own: its newest PREFIX-NNNN.params and what PREFIX-meta.json records (raw pixels
for a model that normalises in its graph, else the mean and std it was trained with); an
export without a meta file is fed with the data set's built-in mean and std. A damaged or
mismatched export is one line naming the file, exit status 2. Top-5 is reported where the
dataset has more than 10 classes. --json prints a JSON object.
On CPUs with AMX the CLI lets oneDNN use it (dmrnet.utils.amx; this process only runs an
exported model); DNNL_MAX_CPU_ISA set to another value keeps it off.
"""
import argparse
import collections
import json
import logging
import os
import sys

import numpy as np

import dmrnet.utils  # noqa: F401  (threads before mxnet)
import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402

from dmrnet.data import DataError, dataset_names, default_data_dir  # noqa: E402
from dmrnet.train.errors import mxnet_reason  # noqa: E402
from dmrnet.utils import cuda  # noqa: E402
from dmrnet.utils.amx import enable_amx_for_inference  # noqa: E402
from dmrnet.utils.devices import contexts, parse_devices  # noqa: E402

log = logging.getLogger('dmrnet.evaluate')


def evaluate(net, data_iter, contexts, max_batches=None, topk=5, on_batch=None):
    """(top-1 errors, top-k errors, images) of `net` over `data_iter` on `contexts`, ignoring
    the padded images of a last batch; `on_batch(batches, images)` after each batch (progress)."""
    wrong1 = wrongk = n = 0
    data_iter.reset()
    for i, batch in enumerate(data_iter):
        if max_batches is not None and i >= max_batches:
            break
        datas = gluon.utils.split_and_load(batch.data[0], contexts, even_split=False)
        outs = [net(x).astype('float32').asnumpy() for x in datas]  # AMP: float16 scores
        scores = np.concatenate(outs, 0)
        labels = batch.label[0].asnumpy().astype(np.int64)
        keep = scores.shape[0] - (batch.pad or 0)
        scores, labels = scores[:keep], labels[:keep]
        top = np.argsort(-scores, axis=1)
        wrong1 += int((top[:, 0] != labels).sum())
        k = min(topk, scores.shape[1])
        wrongk += int((~(top[:, :k] == labels[:, None]).any(1)).sum())
        n += keep
        if on_batch is not None:
            on_batch(i + 1, n)
    return wrong1, wrongk, n


def find_epoch(prefix):
    """NNNN of the newest `prefix-NNNN.params`: the epoch of an export (training writes one
    params file per prefix, tools/export.py epoch 0 unless told)."""
    from dmrnet.symbols.deploy import exported_epochs
    found = exported_epochs(prefix)
    if not found:
        raise FileNotFoundError('no %s-NNNN.params: export the model first (a finished training '
                                'run writes DIR/best and DIR/last; python tools/export.py for '
                                'presets)' % prefix)
    return found[-1]


def open_export(prefix, epoch=None):
    """(epoch, meta) of the exported model `prefix` once its files are known to belong together
    (the symbol parses, the params are exactly its parameters); meta is None when the export has
    no -meta.json. FileNotFoundError / ValueError with one line naming the file and the fix."""
    from dmrnet.symbols.deploy import export_file, finish_export, read_export_meta, verify_export
    finish_export(prefix)
    if epoch is None:
        epoch = find_epoch(prefix)
    sym_file, params_file = export_file(prefix, 'symbol'), export_file(prefix, 'params', epoch)
    if not os.path.exists(params_file):
        try:
            hint = 'the export has epoch %d: drop --epoch' % find_epoch(prefix)
        except FileNotFoundError:
            hint = 'export the model first'
        raise FileNotFoundError('%s not found: %s' % (params_file, hint))
    if not os.path.exists(sym_file):
        raise FileNotFoundError('%s not found: export the model again (the symbol and params of '
                                'an export go together)' % sym_file)
    try:
        verify_export(sym_file, params_file)
    except ValueError as e:
        raise ValueError('%s: export the model again, or give the prefix of the export these '
                         'files belong to' % e) from None
    return epoch, read_export_meta(prefix)


Feed = collections.namedtuple('Feed', 'dataset stats image_shape')
Feed.__doc__ = """How to feed an export: the data set to read, the (mean, std) that reading
applies to 0-255 pixels, (C, H, W) of one image."""


def export_feed(prefix, meta, dataset=None, need_dataset=True):
    """The Feed of export `prefix` (`meta`: its -meta.json or None): the data set `dataset` or
    else the one its meta names, the normalisation and input size its meta records, the data
    set's built-in ones (one info line) where it records none. With need_dataset False, a
    meta-less export without `dataset` gives a Feed of the recorded shape only."""
    import dmrnet.data as data
    from dmrnet.symbols.deploy import meta_path, recorded_input_shape, recorded_stats
    dataset = dataset or (meta or {}).get('dataset')
    stats, shape = recorded_stats(meta), recorded_input_shape(meta)
    if dataset is None:
        if need_dataset or shape is None:
            raise ValueError('%s %s: name the data set (--dataset)' % (
                meta_path(prefix), 'does not name a data set' if meta else 'not found'))
        return Feed(None, stats, shape)
    info = data.dataset_info(dataset)
    if stats is None:
        log.info('%s %s: normalising with %s\'s built-in mean and std', meta_path(prefix),
                 'records no mean and std' if meta else 'not found', dataset)
        stats = data.normalisation(info)
    image = tuple(info['image_shape'])
    if shape is not None and shape != image:
        # a meta that names no data set holds a guessed size (the networks pool globally)
        if (meta or {}).get('dataset') or shape[0] != image[0]:
            raise ValueError('%s: the model takes %s images, %s has %s: give the data set it '
                             'was exported for' % (meta_path(prefix), _dims(shape), dataset,
                                                   _dims(image)))
        log.info('%s: recorded input %s, reading %s\'s %s images', meta_path(prefix),
                 _dims(shape), dataset, _dims(image))
    return Feed(dataset, stats, image)


def _dims(shape):
    return 'x'.join(str(v) for v in shape)


def score(prefix, dataset=None, data_dir=None, batch_size=100, epoch=None, contexts=None,
          num_threads=None):
    """Top-1 (and top-5) error of the export `prefix` on the test split of `dataset` (default:
    the one its meta names), fed as its meta says (raw pixels, its own mean and std)."""
    import dmrnet.data as data
    from dmrnet.symbols.deploy import import_model
    contexts = contexts or [mx.cpu()]
    epoch, meta = open_export(prefix, epoch)
    feed = export_feed(prefix, meta, dataset)
    net = import_model(prefix, epoch, ctx=contexts)
    it = data.get_val_iter(feed.dataset, data_dir or default_data_dir(feed.dataset), batch_size,
                           num_threads=num_threads, stats=feed.stats)
    w1, w5, n = evaluate(net, it, contexts)
    out = dict(prefix=prefix, epoch=epoch, dataset=feed.dataset, images=n,
               top1_error=100.0 * w1 / max(n, 1))
    if data.dataset_info(feed.dataset)['classes'] > 10:
        out['top5_error'] = 100.0 * w5 / max(n, 1)
    return out


def main(argv=None, amx=False):
    """The CLI; `amx`: let oneDNN use AMX (the program does; a caller's process may train)."""
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--prefix', required=True, help='exported model prefix, e.g. runs/x/best')
    p.add_argument('--epoch', type=int, default=None,
                   help='NNNN of prefix-NNNN.params (default: the only/latest one)')
    p.add_argument('--dataset', default=None, choices=dataset_names(),
                   help='the data set to score on (default: the one PREFIX-meta.json names)')
    p.add_argument('--data-dir', default=None,
                   help='folder of the packed test set (default: data/<dataset>, where the '
                        'training scripts look)')
    p.add_argument('--batch-size', type=int, default=100,
                   help='images per forward pass (default: 100)')
    p.add_argument('--gpus', default='', help='"0" or "0,1"; empty: CPU')
    p.add_argument('--num-data-threads', type=int, default=None,
                   help='decoding threads of the data iterator (default: the data module\'s '
                        'choice)')
    p.add_argument('--json', action='store_true', help='print a JSON object')
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        gpus = parse_devices(args.gpus)
        if amx and not gpus:
            enable_amx_for_inference()
        problem = cuda.gpu_problem(gpus)
        if problem:
            raise ValueError(problem)
        ctx = contexts(args.gpus)
        r = score(args.prefix, args.dataset, args.data_dir, args.batch_size, args.epoch, ctx,
                  args.num_data_threads)
    except (OSError, ValueError, KeyError, mx.base.MXNetError, DataError) as e:
        reason = mxnet_reason(e) if isinstance(e, mx.base.MXNetError) else str(e).split('\n')[0]
        print('%s: error: %s' % (p.prog, reason), file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print('%s (epoch %d) on %s test: top-1 error %.2f%%%s (%d images)'
              % (r['prefix'], r['epoch'], r['dataset'], r['top1_error'],
                 ', top-5 error %.2f%%' % r['top5_error'] if 'top5_error' in r else '',
                 r['images']))
    return r


if __name__ == '__main__':
    main(amx=True)
