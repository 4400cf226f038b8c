"""Export a network as `prefix-symbol.json` + `prefix-NNNN.params` (and optionally ONNX).

    python tools/export.py --params runs/demo/best-0009.params --prefix exported/demo --onnx
    python tools/export.py --params runs/x/ckpt-0040.params --prefix exported/x
    python tools/export.py --model dmrnet56 --params weights.params --prefix exported/x
    python tools/export.py --model dmrnet56 --random-weights --prefix exported/dmrnet56
    python tools/export.py --params runs/x/last-0400.params --fused --prefix exported/x-fused

`--params` takes any parameter file the project writes or keeps: a training checkpoint
(ckpt-NNNN.params, Gluon's save_parameters), an export (best-/last-NNNN.params, the kept
weights in results/*/weights/, MXNet's arg:/aux: format). The model, its arguments and its data
set are read from the records beside the file (an export's -meta.json, a run folder's
last.json) unless --model/--arg/--dataset say otherwise. A branch-form checkpoint exported
with `--fused` is converted to the fused form (same function). Exporting untrained (randomly
initialised) weights, for deployment tests, needs `--random-weights` and --model: a forgotten
`--params` must not pass for a trained model.
"""
import argparse
import json
import logging
import sys

from dmrnet.symbols import get_model  # (importing dmrnet sets the OpenMP threads first)
from dmrnet.symbols.deploy import (export_bfloat16, export_meta, export_model, export_onnx,
                                   input_shape_for)
from dmrnet.train import rundir
from dmrnet.train.errors import mxnet_reason
from dmrnet.train.precision import no_bfloat16_reason
import mxnet as mx  # noqa: E402  (after dmrnet: threads first)


def parse_kwargs(pairs):
    """--arg key=value pairs; values parsed as JSON where possible (numbers, booleans, lists)."""
    out = {}
    for pair in pairs or []:
        if '=' not in pair:
            raise SystemExit('--arg expects key=value, got %r' % pair)
        key, value = pair.split('=', 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def load_weights(net, params):
    """Parameters into `net` from either format the project writes: an export's (arg:/aux:
    names, MXNet's Module format) or a checkpoint's (Gluon's save_parameters)."""
    names = list(mx.nd.load(params))
    if names and all(name.startswith(('arg:', 'aux:')) for name in names):
        net.collect_params().load(params, ctx=mx.cpu())
    else:
        net.load_parameters(params, ctx=mx.cpu())


def build(model, kwargs, params=None, fused=False):
    """A network with weights from `params` (branch-form or matching-form checkpoint)."""
    if fused:
        kwargs = dict(kwargs, fused=True)
    net = get_model(model, **kwargs)
    net.initialize()
    if params:
        try:
            load_weights(net, params)
        except AssertionError:
            if not fused:
                raise
            from dmrnet.symbols.fuse import branch_to_fused
            src = get_model(model, **dict(kwargs, fused=False))
            load_weights(src, params)
            branch_to_fused(src, net)
    return net


def describe(model, kwargs):
    return '%s%s' % (model, ' (%s)' % ', '.join('%s=%s' % kv for kv in sorted(kwargs.items()))
                     if kwargs else '')


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', help='preset or family name (get_model); default: the one '
                                        'the records beside --params name')
    parser.add_argument('--arg', action='append', metavar='KEY=VALUE',
                        help='extra get_model argument, e.g. --arg L=54 --arg classes=100')
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument('--params', help='a .params file the project wrote: a checkpoint, an '
                                          'export or kept weights')
    weights.add_argument('--random-weights', action='store_true',
                         help='export the initial (untrained) weights, for deployment tests')
    parser.add_argument('--prefix', required=True, help='output prefix')
    parser.add_argument('--epoch', type=int, default=0, help='epoch number in the file name')
    parser.add_argument('--fused', action='store_true', help='export the fused merge-and-run form')
    parser.add_argument('--onnx', action='store_true', help='also write prefix.onnx')
    parser.add_argument('--dataset', help='the dataset the weights were trained on: its mean '
                                          'and std go into the meta file')
    parser.add_argument('--bfloat16', action='store_true',
                        help='also write PREFIX-bf16: the same model computing in bfloat16 '
                             '(CPUs with native bfloat16, e.g. AVX-512 BF16)')
    parser.add_argument('--raw-input', action='store_true',
                        help='with --dataset: put the normalisation into the graph, so the '
                             'model takes raw 0-255 RGB pixels (NCHW)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.bfloat16 and no_bfloat16_reason():
        parser.error('--bfloat16: %s; export without it (float32 runs everywhere)'
                     % no_bfloat16_reason())
    record = rundir.model_record(args.params) if args.params else None
    if args.model is None and record is None:
        parser.error('--model is needed: %s' % (
            'with --random-weights' if args.random_weights else
            '%s has no record of its model beside it (an export\'s -meta.json or a run '
            'folder\'s last.json)' % args.params))
    model = args.model or record['model']
    # the record describes the file: its arguments hold unless --model names another network
    recorded = record if record and model == record['model'] else None
    fused = args.fused or bool(recorded and recorded['fused'])
    try:
        kwargs = dict(recorded['kwargs'] if recorded else {}, **parse_kwargs(args.arg))
        dataset = args.dataset or (record or {}).get('dataset')
        if args.raw_input and not dataset:
            parser.error('--raw-input needs --dataset (whose mean and std the graph then '
                         'applies)')
        mean = std = None
        if dataset:
            from dmrnet.data import dataset_info
            info = dataset_info(dataset)
            mean, std = info['mean'], info['std']
            if record and record.get('mean') and not args.dataset:
                mean, std = record['mean'], record['std']   # what the weights were trained on
            kwargs.setdefault('classes', info['classes'])
        net = build(model, kwargs, args.params, fused)
    except (ValueError, FileNotFoundError, OSError, AssertionError, mx.base.MXNetError) as e:
        if record and args.params:
            reason = ('%s holds %s (per %s), not %s: drop --model and --arg to export what it '
                      'holds' % (args.params, describe(record['model'], record['kwargs']),
                                 record['source'], describe(model, kwargs)))
        elif isinstance(e, mx.base.MXNetError):
            reason = ('--params %s is unreadable or not parameters of %s (%s)'
                      % (args.params, describe(model, kwargs), mxnet_reason(e)))
        else:
            reason = str(e)
        print('%s: error: %s' % (parser.prog, reason), file=sys.stderr)
        return 2
    shape = input_shape_for(net)
    if dataset:
        shape = (1,) + tuple(info['image_shape'])
    meta = dict(model=model, kwargs=kwargs, fused=fused, source=args.params,
                dataset=dataset)
    try:
        sym, params = export_model(net, args.prefix, args.epoch, input_shape=shape,
                                   metadata=meta, mean=mean, std=std, raw_input=args.raw_input)
        logging.info('wrote %s and %s', sym, params)
        if args.bfloat16:
            files = export_bfloat16(args.prefix, args.prefix + '-bf16', args.epoch, shape,
                                    metadata=export_meta(meta, shape, args.epoch, mean, std,
                                                         args.raw_input, compute='bfloat16'))
            logging.info('wrote %s and %s', *files)
        if args.onnx:
            logging.info('wrote %s', export_onnx(args.prefix, args.epoch, shape))
    except OSError as e:  # a full disk, a folder that cannot be written
        print('%s: error: cannot write %s (%s)' % (parser.prog, e.filename or args.prefix,
                                                   e.strerror or e), file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
