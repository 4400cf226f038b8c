"""INT8 post-training quantization of an exported model with MXNet's own tooling (oneDNN).

    python tools/quantize.py --prefix runs/demo/best --epoch 7 --data-dir data/digits \
        [--dataset digits] [--out PREFIX] [--calib-mode naive|entropy] [--num-calib 512] [--json]

Takes an exported fp32 model (`PREFIX-symbol.json` + `PREFIX-NNNN.params`, as train/ and
tools/export.py write it), fuses it for oneDNN (Conv+BN folding, +ReLU, +sum), calibrates the
INT8 ranges on images of the *training* set (`mx.contrib.quantization.quantize_model_mkldnn`,
the same path as MXNet's `quantize_net`, which Gluon users call), writes
`OUT-symbol.json` + `OUT-0000.params`, and with `--data-dir` reports the test error of the fp32
model and of the INT8 model on the test set side by side.

CPU only: MXNet 1.9's quantized operators are oneDNN (MKLDNN) kernels. The calibration images go
through the evaluation transform (no augmentation).
"""
import argparse
import json
import logging
import os
import sys
import time

if __package__ in (None, ''):
    import dmrnet.symbols  # noqa: F401  (runtime defaults before mxnet is imported)
import mxnet as mx
import numpy as np

log = logging.getLogger('dmrnet.quantize')

# What calibrates best here (measured on digits, DMRNet): 'naive' (min/max of the layer outputs)
# keeps the test error within noise of fp32 and calibrates in seconds; 'entropy' is offered too.
DEFAULT_CALIB_MODE = 'naive'
DEFAULT_NUM_CALIB = 512


def load_checkpoint(prefix, epoch=0):
    """(symbol, arg_params, aux_params) of an exported model."""
    for f in ('%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)):
        if not os.path.exists(f):
            raise FileNotFoundError('%s not found (export the model first: tools/export.py)' % f)
    return mx.model.load_checkpoint(prefix, epoch)


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
                     shape=(64, 3, 32, 32), seed=0):
    """Training images for calibration (evaluation transform: no augmentation). Without
    `data_dir`: uniform noise of the right shape (only for timing; say so when you report it)."""
    if data_dir:
        from dmrnet.data import get_train_iter
        it = get_train_iter(dataset, data_dir, batch_size, epoch=0, seed=seed, augment=False)
        return _DataOnly(it, batch_size, (batch_size,) + tuple(shape[1:]), num_examples)
    rng = np.random.RandomState(seed)
    n = max(1, -(-num_examples // batch_size))
    batches = [mx.nd.array(rng.uniform(-2, 2, size=(batch_size,) + tuple(shape[1:])))
               for _ in range(n)]
    return _DataOnly(batches, batch_size, (batch_size,) + tuple(shape[1:]), num_examples)


def quantize(sym, arg_params, aux_params, calib_data, calib_mode=DEFAULT_CALIB_MODE,
             num_calib_examples=DEFAULT_NUM_CALIB, quantized_dtype='auto', exclude=None,
             ctx=None):
    """Fuse for oneDNN, quantize to INT8 and calibrate. Returns (qsym, qarg_params, aux_params).

    `exclude`: symbol names kept in fp32. By default nothing is excluded; the first convolution
    takes the raw image (signed), which quantized_dtype='auto' handles as int8.
    """
    from mxnet.contrib.quantization import quantize_model_mkldnn
    ctx = ctx or mx.cpu()
    if ctx.device_type != 'cpu':
        raise ValueError('INT8 quantization runs on CPU (oneDNN) only in MXNet 1.9; got %s' % ctx)
    quiet = logging.getLogger('dmrnet.quantize.mxnet')
    quiet.setLevel(logging.WARNING)
    return quantize_model_mkldnn(sym, arg_params, aux_params, data_names=('data',),
                                 label_names=(), ctx=ctx, excluded_sym_names=exclude or [],
                                 calib_mode=calib_mode, calib_data=calib_data,
                                 num_calib_examples=num_calib_examples,
                                 quantized_dtype=quantized_dtype, quantize_mode='full',
                                 logger=quiet)


def to_block(sym, arg_params, aux_params, ctx=None):
    """A SymbolBlock computing `sym` with the given parameters (fp32 or quantized)."""
    import warnings
    ctx = ctx or mx.cpu()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var('data')])
    params = block.collect_params()
    for name, value in list(arg_params.items()) + list(aux_params.items()):
        if name in params:
            params[name]._load_init(value, ctx, cast_dtype=True, dtype_source='saved')
    return block


def fp32_block(sym, arg_params, aux_params, ctx=None):
    """The exported fp32 model as it is, hybridized (the reference for the INT8 error).

    (Gluon's `SymbolBlock.optimize_for(backend='MKLDNN')` is not used: in MXNet 1.9.1 it hands
    a projection's 1x1 weight to a 3x3 convolution of a merge-and-run block and fails with
    'Shape inconsistent'; `Symbol.get_backend_symbol('MKLDNN')` works.)"""
    block = to_block(sym, arg_params, aux_params, ctx)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def save(prefix, qsym, qarg_params, aux_params, epoch=0):
    from dmrnet.symbols.atomic import atomic_path
    with atomic_path('%s-symbol.json' % prefix) as tmp:
        qsym.save(tmp)
    with atomic_path('%s-%04d.params' % (prefix, epoch)) as tmp:
        save_dict = {'arg:%s' % k: v.as_in_context(mx.cpu()) for k, v in qarg_params.items()}
        save_dict.update({'aux:%s' % k: v.as_in_context(mx.cpu()) for k, v in aux_params.items()})
        mx.nd.save(tmp, save_dict)
    return '%s-symbol.json' % prefix, '%s-%04d.params' % (prefix, epoch)


def test_error(block, data_dir, dataset='digits', batch_size=64):
    """Top-1 error (%) of a block on the test split; returns (error, images)."""
    from dmrnet.data import get_val_iter
    it = get_val_iter(dataset, data_dir, batch_size)
    wrong = seen = 0
    for batch in it:
        n = batch_size - (batch.pad or 0)
        out = block(batch.data[0].as_in_context(mx.cpu())).asnumpy()[:n]
        label = batch.label[0].asnumpy()[:n].astype(np.int64)
        wrong += int((out.argmax(axis=1) != label).sum())
        seen += n
    return 100.0 * wrong / max(seen, 1), seen


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('--prefix', required=True, help='exported fp32 model prefix')
    p.add_argument('--epoch', type=int, default=0)
    p.add_argument('--data-dir', help='packed .rec folder: calibration (train) + test error')
    p.add_argument('--dataset', default='digits')
    p.add_argument('--out', help='INT8 model prefix (default: PREFIX-int8)')
    p.add_argument('--calib-mode', default=DEFAULT_CALIB_MODE, choices=['naive', 'entropy'])
    p.add_argument('--num-calib', type=int, default=DEFAULT_NUM_CALIB)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--json', action='store_true', help='print the result as one JSON object')
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    sym, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    shape = (args.batch_size, 3, 32, 32)
    meta_file = '%s-meta.json' % args.prefix
    if os.path.exists(meta_file):
        with open(meta_file) as f:
            shape = (args.batch_size,) + tuple(json.load(f).get('input_shape', shape)[1:])
    if not args.data_dir:
        log.warning('no --data-dir: calibrating on random noise (timing only; accuracy unknown)')
    calib = calibration_data(args.data_dir, args.dataset, args.batch_size, args.num_calib, shape)
    tic = time.time()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from benchmark import optimize_exported
    # merge scales folded into the weights, ops renamed for oneDNN fusion: same function
    qsym_in, qarg_in, folded = optimize_exported(sym, arg_params)
    qsym, qargs, qaux = quantize(qsym_in, qarg_in, aux_params, calib, args.calib_mode,
                                 args.num_calib)
    out = args.out or '%s-int8' % args.prefix
    files = save(out, qsym, qargs, qaux)
    result = dict(prefix=args.prefix, epoch=args.epoch, out=out, files=list(files),
                  calib_mode=args.calib_mode, calib_examples=calib.seen if args.data_dir else 0,
                  merge_scale_folded=folded,
                  seconds=round(time.time() - tic, 2))
    if args.data_dir:
        fp32 = fp32_block(sym, arg_params, aux_params)
        int8 = to_block(qsym, qargs, qaux)
        int8.hybridize(static_alloc=True, static_shape=True)
        e32, n = test_error(fp32, args.data_dir, args.dataset, args.batch_size)
        e8, _ = test_error(int8, args.data_dir, args.dataset, args.batch_size)
        result.update(test_images=n, fp32_test_error=round(e32, 3), int8_test_error=round(e8, 3),
                      int8_minus_fp32=round(e8 - e32, 3))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k in sorted(result):
            print('%-18s %s' % (k, result[k]))
    return result


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
