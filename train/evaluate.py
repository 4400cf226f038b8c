"""Scoring: the one evaluation routine (`evaluate`: training, this CLI and INT8 quantization all
count errors with it), and the CLI that scores an exported model (prefix-symbol.json +
prefix-NNNN.params) on a packed test set.

    python train/evaluate.py --prefix runs/demo/best --dataset digits --data-dir data/digits
    -> "runs/demo/best (epoch 20) on digits test: top-1 error 3.06% (360 images)"

Top-5 is reported where the dataset has more than 10 classes. --json prints a JSON object.
On CPUs with AMX the CLI lets oneDNN use it (dmrnet.utils.amx; this process only runs an
exported model); DNNL_MAX_CPU_ISA set to another value keeps it off.
"""
import argparse
import glob
import json
import logging
import re
import sys

import numpy as np

import dmrnet.utils  # noqa: F401  (threads before mxnet)
import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402

from dmrnet.data import DataError, dataset_names, default_data_dir  # noqa: E402
from dmrnet.train.build import mxnet_reason  # noqa: E402
from dmrnet.utils import cuda  # noqa: E402
from dmrnet.utils.amx import enable_amx_for_inference  # noqa: E402
from dmrnet.utils.devices import parse_devices  # noqa: E402


def evaluate(net, data_iter, contexts, max_batches=None, topk=5):
    """(top-1 errors, top-k errors, images) of `net` over `data_iter` on `contexts`, ignoring
    the padded images of a last batch."""
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
    return wrong1, wrongk, n


def find_epoch(prefix):
    found = sorted(glob.glob(glob.escape(prefix) + '-[0-9][0-9][0-9][0-9].params'))
    if not found:
        raise FileNotFoundError('no %s-NNNN.params: export the model first (a finished training '
                                'run writes DIR/best and DIR/last; python tools/export.py for '
                                'presets)' % prefix)
    return int(re.search(r'-(\d{4})\.params$', found[-1]).group(1))


def score(prefix, dataset, data_dir, batch_size=100, epoch=None, contexts=None,
          num_threads=None):
    import dmrnet.data as data
    from dmrnet.symbols.deploy import import_model
    contexts = contexts or [mx.cpu()]
    epoch = find_epoch(prefix) if epoch is None else epoch
    info = data.dataset_info(dataset)
    net = import_model(prefix, epoch, ctx=contexts)
    it = data.get_val_iter(dataset, data_dir, batch_size, num_threads=num_threads)
    w1, w5, n = evaluate(net, it, contexts)
    out = dict(prefix=prefix, epoch=epoch, dataset=dataset, images=n,
               top1_error=100.0 * w1 / max(n, 1))
    if info['classes'] > 10:
        out['top5_error'] = 100.0 * w5 / max(n, 1)
    return out


def main(argv=None, amx=False):
    """The CLI; `amx`: let oneDNN use AMX (the program does; a caller's process may train)."""
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--prefix', required=True, help='exported model prefix, e.g. runs/x/best')
    p.add_argument('--epoch', type=int, default=None,
                   help='NNNN of prefix-NNNN.params (default: the only/latest one)')
    p.add_argument('--dataset', required=True,
                   choices=dataset_names())
    p.add_argument('--data-dir', default=None, help='default: data/<dataset>\'s folder')
    p.add_argument('--batch-size', type=int, default=100)
    p.add_argument('--gpus', default='', help='"0" or "0,1"; empty: CPU')
    p.add_argument('--num-data-threads', type=int, default=None)
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
        ctx = [mx.gpu(g) for g in gpus] or [mx.cpu()]
        r = score(args.prefix, args.dataset, args.data_dir or default_data_dir(args.dataset),
                  args.batch_size, args.epoch, ctx, args.num_data_threads)
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
