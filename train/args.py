"""Argument groups shared by every training entry point (MXNet image-classification style).

Each script builds `make_parser(...)`, sets its recipe with `parser.set_defaults(...)` and calls
`engine.main(parser)`. Every flag defined here is read by the engine; none is parsed and ignored.
"""
import argparse

KV_STORES = ('local', 'device', 'nccl', 'dist_sync', 'dist_device_sync', 'dist_async')


def add_model_args(parser):
    g = parser.add_argument_group('model')
    g.add_argument('--model', default='dmrnet',
                   help='a preset (e.g. dmrnet56, resnet110) or a family (resnet, dilnet, dmrnet, '
                        '...) completed by --L/--width/--branches/--fused; see '
                        'dmrnet.symbols.get_model_list()')
    g.add_argument('--L', type=int, default=None,
                   help='depth parameter L of Table 2 (families only)')
    g.add_argument('--width', type=int, default=None, help='width multiplier (16*width channels)')
    g.add_argument('--branches', type=int, default=None, help='branches per block (K)')
    g.add_argument('--fused', action='store_true', default=None,
                   help='build the fused (single wide conv) form of multi-branch blocks')
    g.add_argument('--blocks', type=int, default=None,
                   help="residual blocks of the Figure 6 path-length nets (family 'pathnet': 3 or 6)")
    return g


def add_data_args(parser, datasets):
    g = parser.add_argument_group('data')
    g.add_argument('--dataset', default=datasets[0], choices=datasets)
    g.add_argument('--data-dir', default=None,
                   help='folder with the packed .rec/.idx files; None: data/<dataset>')
    g.add_argument('--num-data-threads', type=int, default=None,
                   help='decoding threads per data iterator; None: the data module\'s choice')
    g.add_argument('--shard-per-device', action='store_true',
                   help='every device reads its own shard (parts = workers x devices) instead of '
                        'one iterator per worker split across its devices; one process with '
                        'N devices then sees exactly what N one-device workers see')
    return g


def add_fit_args(parser):
    g = parser.add_argument_group('training')
    g.add_argument('--gpus', default='',
                   help='GPUs to use: "0-7", "0,1", "0,2-3"; empty: CPU')
    g.add_argument('--cpus', type=int, default=1,
                   help='number of CPU contexts when --gpus is empty (several exercise '
                        'multi-device data parallelism on a CPU machine)')
    g.add_argument('--kv-store', default='device', choices=KV_STORES,
                   help='KVStore for gradient aggregation; dist_* need tools/launch.py')
    g.add_argument('--batch-size', type=int, default=64,
                   help='TOTAL batch size over all devices and all workers (each of D devices '
                        'on each of W workers processes batch-size/(W*D) images per step)')
    g.add_argument('--epochs', type=int, default=400)
    g.add_argument('--optimizer', default='nag', choices=('nag', 'sgd'),
                   help='nag: SGD with Nesterov momentum (the authors\'); sgd: plain momentum')
    g.add_argument('--lr', type=float, default=0.1, help='initial learning rate')
    g.add_argument('--lr-steps', default=None,
                   help='comma-separated epochs after which the lr is multiplied by '
                        '--lr-factor; None: the recipe\'s, see --lr-recipe')
    g.add_argument('--lr-recipe', default='fractions', choices=('fractions', 'every30'),
                   help='default --lr-steps: "fractions" = 1/2, 3/4, 7/8 of --epochs '
                        '(CIFAR/SVHN), "every30" = every 30 epochs (ImageNet)')
    g.add_argument('--lr-factor', type=float, default=0.1)
    g.add_argument('--wd', type=float, default=1e-4,
                   help='weight decay, applied to all parameters (BN gamma/beta and biases too)')
    g.add_argument('--momentum', type=float, default=0.9)
    g.add_argument('--seed', type=int, default=0,
                   help='seeds init, data order and augmentation (per epoch: resumable)')
    g.add_argument('--amp', action='store_true',
                   help='float16 mixed precision (mx.contrib.amp); GPUs only')
    g.add_argument('--max-batches', type=int, default=None,
                   help='cap on training batches per epoch (smoke runs)')
    g.add_argument('--max-val-batches', type=int, default=None,
                   help='cap on test batches per evaluation (smoke runs; errors then cover '
                        'only part of the test set)')
    o = parser.add_argument_group('output')
    o.add_argument('--save-dir', default=None,
                   help='run folder: checkpoints, log.jsonl, train.log, curves.png, '
                        'summary.json, exported best/last models; None: the --resume '
                        'folder, else runs/<dataset>-<model>-s<seed>')
    o.add_argument('--resume', default=None,
                   help='a run folder (its last checkpoint) or a checkpoint .json/.params: '
                        'continue with the saved parameters, momentum and epoch count')
    o.add_argument('--export-only', action='store_true',
                   help='with --resume: export best and last models and exit')
    o.add_argument('--checkpoint-every', type=int, default=1,
                   help='write a checkpoint every N epochs (always after the last one)')
    o.add_argument('--log-interval', type=int, default=50,
                   help='log the running loss and error every N batches (0: never)')
    o.add_argument('--no-progress', action='store_true',
                   help='no progress bar (it is also off when stderr is not a terminal)')
    return g


def make_parser(description, datasets):
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_args(parser)
    add_data_args(parser, datasets)
    add_fit_args(parser)
    return parser


def parse_devices(spec):
    """'0-3,6' -> [0, 1, 2, 3, 6]; '' -> []."""
    ids = []
    for part in filter(None, (p.strip() for p in (spec or '').split(','))):
        if '-' in part:
            lo, hi = part.split('-', 1)
            ids.extend(range(int(lo), int(hi) + 1))
        else:
            ids.append(int(part))
    return ids


def lr_steps(args):
    if args.lr_steps:
        return sorted(int(s) for s in args.lr_steps.split(',') if s.strip())
    if args.lr_recipe == 'every30':
        return list(range(30, args.epochs, 30))
    return sorted({int(round(args.epochs * f)) for f in (0.5, 0.75, 0.875)} - {0})


def lr_at(args, epoch):
    """Learning rate of 0-based `epoch`: a pure function of the epoch, so resume lands on it."""
    return args.lr * args.lr_factor ** sum(epoch >= s for s in lr_steps(args))
