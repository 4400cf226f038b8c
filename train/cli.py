"""The command line of every training script: argument groups (MXNet image-classification
style), parsing into a TrainConfig, and turning known failures into one line and an exit status.
The anchors' names for the same things are accepted too: MXNet's example (--network,
--num-epochs, --lr-factor, --lr-step-epochs, --mom, --disp-batches), GluonCV's (--num-gpus,
--lr-decay, --lr-decay-epoch, --save-period, --num-data-workers/-j). The batch size is always
the total over all devices and workers.

Exit status: 0 done, 2 bad input (devices, data, resume, flags), 3 the run stopped (the loss
diverged, a checkpoint could not be written; the last good checkpoint is kept), 130
interrupted. The last stdout line of a finished run is its test error.
"""
import argparse
import logging
import os
import sys

from dmrnet.train.config import KV_STORES, OPTIMIZERS, PLAIN_PROGRESS_SECONDS, TrainConfig
from dmrnet.train.errors import ConfigError, command_line, interrupted
from dmrnet.train.precision import AMP_MODES
from dmrnet.train.recipes import recipe_for
from dmrnet.train.schedule import SCHEDULES as LR_SCHEDULES
from dmrnet.utils.process import Terminated, sigterm_as_interrupt


def add_model_args(parser):
    g = parser.add_argument_group('model')
    g.add_argument('--model', '--network', dest='model',
                   help='a preset (e.g. dmrnet56, resnet110) or a family (resnet, dilnet, dmrnet, '
                        '...) completed by --L/--width/--branches/--fused; see '
                        'dmrnet.symbols.get_model_list()')
    g.add_argument('--L', type=int, help='depth parameter L of Table 2 (families only)')
    g.add_argument('--width', type=int, help='width multiplier (16*width channels)')
    g.add_argument('--branches', type=int, help='branches per block (K)')
    g.add_argument('--fused', action='store_true', default=None,
                   help='build the fused (single wide conv) form of multi-branch blocks')
    g.add_argument('--blocks', type=int,
                   help="residual blocks of the Figure 6 path-length nets (family 'pathnet': 3 or 6)")
    return g


def add_data_args(parser, datasets):
    g = parser.add_argument_group('data')
    g.add_argument('--dataset', default=datasets[0], choices=datasets,
                   help='the data set to train and test on')
    g.add_argument('--data-dir', help='folder with the packed .rec/.idx files (default: '
                                      'data/<dataset> in the current folder when it has a data/ '
                                      'or runs/ folder, else in the checkout)')
    g.add_argument('--num-data-threads', '--num-data-workers', '-j', dest='num_data_threads',
                   type=int,
                   help='decoding threads per data iterator (default: the data module\'s '
                        'choice)')
    # the names are checked by the run plan against the data module's IMAGENET_AUGMENTATIONS
    # (a `choices=` list here would be a second copy, or make --help import MXNet)
    g.add_argument('--augmentation', metavar='NAME',
                   help='ImageNet only: release-2016, the authors\' first release (its Table '
                        '4 networks: square crops of 196-480 px, aspect 0.75-1.25, contrast '
                        'and illumination jitter; the default), or release-2018, its later '
                        'branch (scale 0.533-1, HSL jitter)')
    g.add_argument('--rec-train', help='a training pack made elsewhere (MXNet\'s im2rec, an '
                                       'existing ImageNet pack), by path, instead of the '
                                       'dataset\'s; classes and image size stay the dataset\'s')
    g.add_argument('--rec-train-idx', help='its .idx (default: the .rec\'s name with .idx)')
    g.add_argument('--rec-val', help='likewise the evaluation pack')
    g.add_argument('--rec-val-idx', help='its .idx (default: the .rec\'s name with .idx)')
    g.add_argument('--rgb-mean', '--mean', dest='mean', type=_three_numbers,
                   help='per-channel mean to subtract, "R,G,B" on the 0-255 scale (default: '
                        'the dataset\'s)')
    g.add_argument('--rgb-std', '--std', dest='std', type=_three_numbers,
                   help='per-channel std to divide by, "R,G,B" (default: the dataset\'s)')
    g.add_argument('--shard-per-device', action='store_true',
                   help='every device reads its own shard (parts = workers x devices) instead of '
                        'one iterator per worker split across its devices; one process with '
                        'N devices then sees exactly what N one-device workers see')
    return g


def add_fit_args(parser):
    g = parser.add_argument_group('training')
    g.add_argument('--gpus', default='', help='GPUs to use: "0-7", "0,1", "0,2-3"; empty: CPU')
    g.add_argument('--num-gpus', type=int, metavar='N',
                   help='GluonCV\'s form: the first N GPUs, the same as --gpus 0-(N-1); 0: CPU')
    g.add_argument('--cpus', type=int, default=1,
                   help='number of CPU contexts when --gpus is empty (several exercise '
                        'multi-device data parallelism on a CPU machine)')
    g.add_argument('--kv-store', default='device', choices=KV_STORES,
                   help='KVStore for gradient aggregation; dist_* need tools/launch.py')
    g.add_argument('--batch-size', type=int,
                   help='TOTAL batch size over all devices and all workers (each of D devices '
                        'on each of W workers processes batch-size/(W*D) images per step)')
    g.add_argument('--epochs', '--num-epochs', dest='epochs', type=int,
                   help='epochs to train (an epoch: every training image once)')
    g.add_argument('--optimizer', choices=OPTIMIZERS,
                   help='nag: SGD with Nesterov momentum (the authors\'); sgd: plain momentum')
    g.add_argument('--lr', type=float, help='initial learning rate')
    g.add_argument('--lr-steps', '--lr-step-epochs', '--lr-decay-epoch', dest='lr_steps',
                   type=_epoch_list,
                   help='comma-separated epochs after which the lr is multiplied by '
                        '--lr-factor (default: the recipe\'s, see --lr-schedule)')
    g.add_argument('--lr-schedule', '--lr-recipe', dest='lr_schedule', choices=LR_SCHEDULES,
                   help='where the lr steps fall when --lr-steps is not given: "fractions" = '
                        '1/2, 3/4, 7/8 of --epochs (CIFAR/SVHN), "every30" = every 30 epochs '
                        '(ImageNet)')
    g.add_argument('--lr-factor', '--lr-decay', dest='lr_factor', type=float,
                   help='what the lr is multiplied by at each of --lr-steps')
    g.add_argument('--wd', type=float,
                   help='weight decay, applied to all parameters (BN gamma/beta and biases too)')
    g.add_argument('--momentum', '--mom', dest='momentum', type=float,
                   help='momentum of the optimizer, in [0, 1)')
    g.add_argument('--seed', type=int, default=0,
                   help='seeds init, data order and augmentation (per epoch: resumable)')
    g.add_argument('--amp', nargs='?', const='auto', choices=AMP_MODES,
                   help='mixed precision with float32 master weights (mx.contrib.amp). GPUs: '
                        'float16 with dynamic loss scaling. CPUs with native bfloat16 (AVX-512 '
                        'BF16, AMX): bfloat16 where a short timed comparison of the training '
                        'step at this batch (seconds; cached per CPU model in '
                        '$DMRNET_CACHE_DIR or ~/.cache/dmrnet) finds it faster than float32, '
                        'else float32 and one line with both figures; "--amp force" trains in '
                        'bfloat16 regardless. The choice is recorded in the run folder and '
                        'kept on --resume. Refused on CPUs without bfloat16')
    g.add_argument('--max-batches', type=int,
                   help='cap on training batches per epoch (smoke runs)')
    g.add_argument('--max-val-batches', type=int,
                   help='cap on test batches per evaluation (smoke runs; errors then cover '
                        'only part of the test set)')
    o = parser.add_argument_group('output')
    o.add_argument('--save-dir',
                   help='run folder: checkpoints, log.jsonl, train.log, curves.png, '
                        'summary.json, exported best/last models (default: the --resume '
                        'folder, else runs/<dataset>-<model>-s<seed>, runs/ beside data/ as '
                        'for --data-dir)')
    o.add_argument('--resume',
                   help='a run folder (its last checkpoint) or a checkpoint .json/.params: '
                        'continue the run with its saved parameters, momentum and recorded '
                        'recipe (flags not given take the recorded values; a flag that changes '
                        'the result is refused, except more --epochs)')
    o.add_argument('--export-only', action='store_true',
                   help='with --resume: export best and last models and exit')
    o.add_argument('--checkpoint-every', '--save-period', dest='checkpoint_every', type=int,
                   default=1,
                   help='write a checkpoint every N epochs (always after the last one)')
    o.add_argument('--log-interval', '--disp-batches', dest='log_interval', type=int,
                   help='log the running loss and error every N batches (0: never)')
    o.add_argument('--tensorboard', metavar='DIR',
                   help='also write TensorBoard scalars (loss, errors, lr, images/s) to DIR '
                        '(needs tensorboardX)')
    o.add_argument('--no-progress', dest='progress', action='store_false',
                   help='no progress bar on a terminal (where stderr is a file or a pipe '
                        'there is none, and a plain progress line is logged every %d s '
                        'instead)' % PLAIN_PROGRESS_SECONDS)
    return g


def _three_numbers(text):
    try:
        values = tuple(float(v) for v in text.split(','))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError('expected three numbers "R,G,B", got %r' % text)
    return values


def _epoch_list(text):
    try:
        return tuple(sorted(int(s) for s in text.split(',') if s.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError('expected comma-separated epochs such as 200,300,350, '
                                         'got %r' % text) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The recipe's values shown as "(default: X)", but not where that would mislead: a default
    of None (the help says what happens), an on/off flag ("(default: True)" on --no-progress
    reads as "off by default"), or a help text that already names its default."""

    def _get_help_string(self, action):
        text = action.help or ''
        if action.default in (None, '') or isinstance(action.default, bool) or \
                'default' in text or action.nargs == 0:
            return text
        return super()._get_help_string(action)


class OneLineErrors(argparse.ArgumentParser):
    """A flag argparse cannot parse is one line too (argparse would print its whole usage
    first), in the same form as every other bad input: PROG: error: ... ; exit status 2."""

    def error(self, message):
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


def make_parser(description, datasets, **defaults):
    """The parser of a training script for `datasets`: its defaults are the recipe's
    (train/recipes.py; --help shows them), `defaults` override them (e.g. the demo's data
    folder)."""
    # allow_abbrev=False: a prefix such as GluonCV's --mode must not pass for --model.
    # The docstring's first paragraph: argparse rewraps it, so it must be whole sentences.
    parser = OneLineErrors(
        description=description.strip().split('\n\n')[0], formatter_class=HelpFormatter,
        allow_abbrev=False)
    add_model_args(parser)
    add_data_args(parser, datasets)
    add_fit_args(parser)
    # The recipe's settings that have flags (family_defaults is not a flag: it completes a
    # bare family inside TrainConfig.for_dataset).
    recipe = recipe_for(datasets[0]).settings()
    recipe.pop('family_defaults')
    parser.set_defaults(**recipe)
    parser.set_defaults(**defaults)
    return parser


def config_from_args(args):
    """The TrainConfig of parsed arguments: the dataset's recipe with every flag on top
    (argparse leaves the optional ones None)."""
    given = {k: v for k, v in vars(args).items() if v is not None}
    num_gpus = given.pop('num_gpus', None)
    if num_gpus is not None:
        if num_gpus < 0:
            raise ConfigError('--num-gpus %d: must be >= 0' % num_gpus)
        if given.get('gpus'):
            raise ConfigError('--num-gpus and --gpus name the same thing: give one of them')
        given['gpus'] = '0-%d' % (num_gpus - 1) if num_gpus else ''
    return TrainConfig.for_dataset(given.pop('dataset'), **given)


def parse_config(parser, argv=None):
    """The TrainConfig of a command line; with --resume, every run-defining flag it does not
    give takes the resumed run's recorded value (train/resume.py)."""
    try:
        config = config_from_args(parser.parse_args(argv))
    except ConfigError as e:
        parser.error(str(e))
    if config.resume:
        from dmrnet.train import rundir
        from dmrnet.train.resume import inherit
        try:
            recorded = rundir.locate(config.resume)[0].get('args') or {}
        except rundir.CheckpointError:
            return config  # the run says why, in one line
        config = inherit(config, recorded, given_fields(parser, argv))
    return config


def given_fields(parser, argv=None):
    """The config fields set on the command line (by any of their flag names, `--flag value`
    or `--flag=value`), as opposed to those left at the recipe's default."""
    argv = sys.argv[1:] if argv is None else argv
    dests = {option: action.dest for action in parser._actions
             for option in action.option_strings}
    given = set()
    for arg in argv:
        if arg == '--':
            break
        name = arg.split('=', 1)[0]
        if name in dests:
            given.add('gpus' if dests[name] == 'num_gpus' else dests[name])
    return given


def main(parser, argv=None):
    """Entry point of every training script: parse, fit, turn known failures into one line +
    status."""
    from dmrnet.data import DataError
    from dmrnet.train.errors import RunStopped, UserError
    from dmrnet.train.loop import fit
    from dmrnet.train.plan import make_plan
    config = parse_config(parser, argv)
    plan = None
    try:
        with sigterm_as_interrupt(), command_line():  # messages name flags here, fields in Python
            plan = make_plan(config)
            summary = fit(plan).summary
    except (UserError, DataError) as e:
        _fail(parser.prog, e, 2)
    except RunStopped as e:
        _fail(parser.prog, e, 3)
    except FileNotFoundError as e:  # dmrnet.data.DatasetMissingError names the pack command
        _fail(parser.prog, e, 2)
    except KeyboardInterrupt as e:
        from dmrnet.train import rundir
        from dmrnet.train.plan import run_folder
        folder = plan.save_dir if plan is not None else run_folder(config)
        how, status = ('terminated', Terminated.status) if isinstance(e, Terminated) else \
            ('interrupted', 130)
        with command_line():
            _fail(parser.prog, interrupted(how, folder, rundir.has_checkpoint(folder)), status)
    if summary is not None:  # rank 0
        print(result_line(summary), flush=True)
    return summary


def _start_engine_before_the_error():
    """With MXNET_ENGINE_TYPE set, MXNet logs the engine when it starts; a run refused before
    its first operator would have it start while exiting, and that line would follow the error.
    Starting it now keeps the error the last line."""
    if 'mxnet' in sys.modules and os.environ.get('MXNET_ENGINE_TYPE'):
        from dmrnet.utils.runtime import start_engine
        start_engine()  # nothing where the run had started it


def result_line(summary):
    """The run's outcome in one line; the best figure is what train/evaluate.py reports for
    SAVE_DIR/best."""
    from dmrnet.train import rundir
    from dmrnet.train.loop import format_error
    save_dir = summary['args']['save_dir']

    def top5(key):
        return (', top-5 %s%%' % format_error(summary[key])) if summary.get(key) is not None \
            else ''
    return ('%s test error: %s%%%s (best, epoch %d of %d, exported as %s); last epoch %s%%%s'
            % (summary['dataset'], format_error(summary['best_test_error']),
               top5('best_test_top5_error'), summary['best_epoch'], summary['epochs'],
               rundir.export_prefix(save_dir, rundir.BEST_EXPORT), format_error(summary['final_test_error']),
               top5('final_test_top5_error')))


def _fail(prog, msg, status):
    logging.shutdown()
    _start_engine_before_the_error()
    print('%s: error: %s' % (prog, msg), file=sys.stderr)
    sys.exit(status)

