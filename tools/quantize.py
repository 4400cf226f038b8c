"""INT8 post-training quantization of an exported model with MXNet's own tooling (oneDNN).

    python tools/quantize.py --prefix runs/demo/best --data-dir data/digits \
        [--epoch N] [--dataset digits] [--out PREFIX] [--calib-mode naive|entropy]
        [--num-calib 512] [--json]

Takes an exported fp32 model (`PREFIX-symbol.json` + `PREFIX-NNNN.params`, as train/ and
tools/export.py write it), folds the merge scales and fuses it for oneDNN (Conv+BN folding,
+ReLU, +sum: dmrnet.symbols.deploy.optimize_exported and quantize), calibrates the
INT8 ranges on images of the *training* set (`mx.contrib.quantization.quantize_model_mkldnn`,
the same path as MXNet's `quantize_net`, which Gluon users call), writes
`OUT-symbol.json` + `OUT-0000.params`, and with `--data-dir` reports the test error of the fp32
model and of the INT8 model on the test set side by side. The epoch, the data set, the input
size and the normalisation (raw pixels for a model that normalises in its graph) are the
export's own (`PREFIX-meta.json`); --epoch and --dataset choose others. A damaged or
mismatched input is one line naming the file, exit status 2; MXNet's graph-pass log stays
off.

CPU only: MXNet 1.9's quantized operators are oneDNN (MKLDNN) kernels. The calibration images go
through the evaluation transform (no augmentation). On CPUs with AMX, oneDNN may use it here
(dmrnet.utils.amx: this process only runs exported models); DNNL_MAX_CPU_ISA set to another
value keeps it off.
"""
import argparse
import json
import logging
import os
import sys
import time

import dmrnet.utils  # noqa: F401  (threads before mxnet is imported)
import mxnet as mx
import numpy as np

from dmrnet.data import DataError, dataset_names
from dmrnet.train.errors import mxnet_reason
from dmrnet.utils.amx import enable_amx_for_inference
from dmrnet.symbols.deploy import (fp32_block, load_checkpoint, optimize_exported,
                                   save_symbol_model, to_block)
from dmrnet.symbols.deploy.int8 import DEFAULT_CALIB_MODE, DEFAULT_NUM_CALIB, quantize

log = logging.getLogger('dmrnet.quantize')


class _DataOnly(mx.io.DataIter):
    """Wrap an iterator (or a list of NDArrays) so that it provides `data` only, at most
    `num_examples` images; what the calibration Module binds to."""

    def __init__(self, source, batch_size, shape, num_examples=None):
        super().__init__(batch_size)
        self.source, self.shape, self.num = source, tuple(shape), num_examples
        self.seen = 0

    @property
    def provide_data(self):
        return [mx.io.DataDesc('data', (self.batch_size,) + self.shape[1:])]

    @property
    def provide_label(self):
        return []

    def reset(self):
        self.seen = 0
        if hasattr(self.source, 'reset'):
            self.source.reset()
        else:
            self._list_pos = 0

    def next(self):
        if self.num is not None and self.seen >= self.num:
            raise StopIteration
        if isinstance(self.source, list):
            pos = getattr(self, '_list_pos', 0)
            if pos >= len(self.source):
                raise StopIteration
            data = self.source[pos]
            self._list_pos = pos + 1
        else:
            data = self.source.next().data[0].as_in_context(mx.cpu())
        self.seen += data.shape[0]
        return mx.io.DataBatch(data=[data], label=[], pad=0)


def calibration_data(data_dir=None, dataset='digits', batch_size=64, num_examples=512,
                     shape=(64, 3, 32, 32), seed=0, stats=None):
    """Training images for calibration (evaluation transform: no augmentation), normalised by
    `stats` = (mean, std) (default: the data set's). Without `data_dir`: uniform noise of the
    right shape (only for timing; say so when you report it)."""
    if data_dir:
        from dmrnet.data import get_train_iter
        it = get_train_iter(dataset, data_dir, batch_size, epoch=0, seed=seed, augment=False,
                            stats=stats)
        return _DataOnly(it, batch_size, (batch_size,) + tuple(shape[1:]), num_examples)
    rng = np.random.RandomState(seed)
    n = max(1, -(-num_examples // batch_size))
    batches = [mx.nd.array(rng.uniform(-2, 2, size=(batch_size,) + tuple(shape[1:])))
               for _ in range(n)]
    return _DataOnly(batches, batch_size, (batch_size,) + tuple(shape[1:]), num_examples)


def test_error(block, data_dir, dataset='digits', batch_size=64, stats=None):
    """Top-1 error (%) of a block on the test split, its images normalised by `stats` (default:
    the data set's); returns (error, images)."""
    from dmrnet.data import get_val_iter
    from dmrnet.train.evaluate import evaluate
    wrong, _, images = evaluate(block, get_val_iter(dataset, data_dir, batch_size, stats=stats),
                                [mx.cpu()])
    return 100.0 * wrong / max(images, 1), images


def quantize_export(args):
    """Quantize the export args.prefix as the flags say; the result dict."""
    from dmrnet.train.evaluate import export_feed, open_export
    epoch, meta = open_export(args.prefix, args.epoch)
    feed = export_feed(args.prefix, meta, args.dataset, need_dataset=bool(args.data_dir))
    sym, arg_params, aux_params = load_checkpoint(args.prefix, epoch)
    shape = (args.batch_size,) + feed.image_shape
    if not args.data_dir:
        log.warning('no --data-dir: calibrating on random noise (timing only; accuracy unknown)')
    calib = calibration_data(args.data_dir, feed.dataset, args.batch_size, args.num_calib, shape,
                             stats=feed.stats)
    tic = time.time()
    # merge scales folded into the weights, ops renamed for oneDNN fusion: same function
    qsym_in, qarg_in, folded = optimize_exported(sym, arg_params)
    qsym, qargs, qaux = quantize(qsym_in, qarg_in, aux_params, calib, args.calib_mode,
                                 args.num_calib)
    out = args.out or '%s-int8' % args.prefix
    files = save_symbol_model(out, qsym, qargs, qaux)
    result = dict(prefix=args.prefix, epoch=epoch, out=out, files=list(files),
                  dataset=feed.dataset, calib_mode=args.calib_mode,
                  calib_examples=calib.seen if args.data_dir else 0,
                  merge_scale_folded=folded, seconds=round(time.time() - tic, 2))
    if args.data_dir:
        fp32 = fp32_block(sym, arg_params, aux_params)
        int8 = to_block(qsym, qargs, qaux)
        int8.hybridize(static_alloc=True, static_shape=True)
        e32, n = test_error(fp32, args.data_dir, feed.dataset, args.batch_size, feed.stats)
        e8, _ = test_error(int8, args.data_dir, feed.dataset, args.batch_size, feed.stats)
        result.update(test_images=n, fp32_test_error=round(e32, 3), int8_test_error=round(e8, 3),
                      int8_minus_fp32=round(e8 - e32, 3))
    return result


def main(argv=None, amx=False):
    """The CLI; `amx`: let oneDNN use AMX (the program does; a caller's process may train).
    Bad input: one line on stderr, SystemExit(2)."""
    head, rest = __doc__.split('\n\n', 1)
    p = argparse.ArgumentParser(allow_abbrev=False, description=head,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=rest)
    p.add_argument('--prefix', required=True, help='exported fp32 model prefix')
    p.add_argument('--epoch', type=int, default=None,
                   help='NNNN of PREFIX-NNNN.params (default: the export\'s own)')
    p.add_argument('--data-dir', help='packed .rec folder: calibration (train) + test error')
    p.add_argument('--dataset', default=None, choices=dataset_names(),
                   help='the data set of --data-dir (default: the one PREFIX-meta.json names)')
    p.add_argument('--out', help='INT8 model prefix (default: PREFIX-int8)')
    p.add_argument('--calib-mode', default=DEFAULT_CALIB_MODE, choices=['naive', 'entropy'],
                   help='how the INT8 ranges are chosen: naive (min/max of the calibration '
                        'activations) or entropy (KL divergence) (default: %s)'
                        % DEFAULT_CALIB_MODE)
    p.add_argument('--num-calib', type=int, default=DEFAULT_NUM_CALIB,
                   help='training images to calibrate on (default: %d)' % DEFAULT_NUM_CALIB)
    p.add_argument('--batch-size', type=int, default=64,
                   help='images per batch of calibration and scoring (default: 64)')
    p.add_argument('--json', action='store_true', help='print the result as one JSON object')
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    # "Subgraph backend MKLDNN is activated", once per bound graph
    os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
    if amx:  # before the first operator; a debug line where the CPU or kernel says no
        enable_amx_for_inference()
    try:
        result = quantize_export(args)
    except (OSError, ValueError, KeyError, mx.base.MXNetError, DataError) as e:
        reason = mxnet_reason(e) if isinstance(e, mx.base.MXNetError) else str(e).split('\n')[0]
        print('%s: error: %s' % (p.prog, reason), file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k in sorted(result):
            print('%-18s %s' % (k, result[k]))
    return result


if __name__ == '__main__':
    main(amx=True)
