"""Export a network as `prefix-symbol.json` + `prefix-NNNN.params` (and optionally ONNX).

    python tools/export.py --model dmrnet56 --random-weights --prefix exported/dmrnet56
    python tools/export.py --model dmrnet56 --params runs/x/last.params --prefix exported/x --onnx
    python tools/export.py --model dmrnet56 --fused --prefix exported/dmrnet56-fused

`--params` takes Gluon parameters saved with `save_parameters` (the training checkpoints); a
branch-form checkpoint exported with `--fused` is converted to the fused form (same function).
Exporting untrained (randomly initialised) weights, for deployment tests, needs
`--random-weights` instead: a forgotten `--params` must not pass for a trained model.
"""
import argparse
import json
import logging
import sys

from dmrnet.symbols import get_model, preset  # noqa: F401  (importing dmrnet sets threads first)
from dmrnet.symbols.deploy import (export_bfloat16, export_model, export_onnx,
                                   input_description, input_shape_for)
from dmrnet.train.build import mxnet_reason
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


def build(model, kwargs, params=None, fused=False):
    """A network with weights from `params` (branch-form or matching-form checkpoint)."""
    if fused:
        kwargs = dict(kwargs, fused=True)
    net = get_model(model, **kwargs)
    net.initialize()
    if params:
        try:
            net.load_parameters(params, ctx=mx.cpu())
        except AssertionError:
            if not fused:
                raise
            from dmrnet.symbols.fuse import branch_to_fused
            src = get_model(model, **dict(kwargs, fused=False))
            src.load_parameters(params, ctx=mx.cpu())
            branch_to_fused(src, net)
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='preset or family name (get_model)')
    parser.add_argument('--arg', action='append', metavar='KEY=VALUE',
                        help='extra get_model argument, e.g. --arg L=54 --arg classes=100')
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument('--params', help='Gluon .params checkpoint to load')
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
    if args.raw_input and not args.dataset:
        parser.error('--raw-input needs --dataset (whose mean and std the graph then applies)')
    if args.bfloat16 and no_bfloat16_reason():
        parser.error('--bfloat16: %s; export without it (float32 runs everywhere)'
                     % no_bfloat16_reason())
    try:
        kwargs = parse_kwargs(args.arg)
        mean = std = None
        if args.dataset:
            from dmrnet.data import dataset_info
            info = dataset_info(args.dataset)
            mean, std = info['mean'], info['std']
            kwargs.setdefault('classes', info['classes'])
        net = build(args.model, kwargs, args.params, args.fused)
    except (ValueError, FileNotFoundError, OSError, AssertionError) as e:
        print('%s: error: %s' % (parser.prog, e), file=sys.stderr)
        return 2
    except mx.base.MXNetError as e:
        print('%s: error: --params %s is unreadable or not parameters of %s (%s)'
              % (parser.prog, args.params, args.model, mxnet_reason(e)), file=sys.stderr)
        return 2
    shape = input_shape_for(net)
    if args.dataset:
        from dmrnet.data import dataset_info
        shape = (1,) + tuple(dataset_info(args.dataset)['image_shape'])
    meta = dict(model=args.model, kwargs=kwargs, fused=args.fused, source=args.params,
                dataset=args.dataset)
    try:
        sym, params = export_model(net, args.prefix, args.epoch, input_shape=shape,
                                   metadata=meta, mean=mean, std=std, raw_input=args.raw_input)
        logging.info('wrote %s and %s', sym, params)
        if args.bfloat16:
            files = export_bfloat16(args.prefix, args.prefix + '-bf16', args.epoch, shape,
                                    metadata=dict(meta, input_shape=list(shape),
                                                  epoch=args.epoch, compute='bfloat16',
                                                  input=input_description(shape, mean, std,
                                                                          args.raw_input)))
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
