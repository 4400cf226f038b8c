"""The exported-file format: what an export's files are called, what its meta file says about
feeding the model, and how a set of them is written and read back whole.

An export `PREFIX` is MXNet's static format, `PREFIX-symbol.json` + `PREFIX-NNNN.params` (it
loads with `gluon.SymbolBlock.imports(PREFIX-symbol.json, ['data'], params)` and with the Module
API, `mx.model.load_checkpoint(PREFIX, NNNN)`; the single input is named `data`), and, where
this project wrote it, `PREFIX-meta.json`: the model, its arguments and data set, and `input`,
how to feed it (shape, NCHW, RGB, 0-255, mean/std, normalised in the graph or not).
"""
import errno
import glob
import json
import os

import mxnet as mx

from dmrnet.utils.files import remove_stale_partials, write_json

_NAMES = {'symbol': '{0}-symbol.json', 'params': '{0}-{1:04d}.params', 'meta': '{0}-meta.json'}


def export_file(prefix, kind, epoch=0):
    """The file of `kind` ('symbol', 'params' or 'meta') of the export `prefix`."""
    return _NAMES[kind].format(prefix, epoch)


def meta_path(prefix):
    return export_file(prefix, 'meta')


def exported_epochs(prefix):
    """The epochs NNNN of the `prefix-NNNN.params` files that exist, oldest first (an export
    has one; a folder may hold an older one until its replacement is complete)."""
    found = glob.glob(glob.escape(prefix) + '-[0-9][0-9][0-9][0-9].params')
    return sorted(int(path[-len('0000.params'):-len('.params')]) for path in found)


def pending_path(prefix):
    """The list of renames of an export being moved into place."""
    directory, name = os.path.split(os.path.abspath(prefix))
    return os.path.join(directory, '.%s.export-pending' % name)


_ABSENT = object()


def _read_json(path):
    """What the JSON file `path` holds, or _ABSENT where there is no such file (a JSON null is
    not an absent file). ValueError where it does not parse, OSError where it cannot be read."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return _ABSENT


# ------------------------------------------------------------------------------------------
# The meta file: the one reader of how to feed an exported model

def read_export_meta(prefix):
    """The `-meta.json` of the export `prefix` as a dict, or None when the export has none
    (exports made by other tools); ValueError naming the file when it cannot be read."""
    path = meta_path(prefix)
    try:
        meta = _read_json(path)
    except (OSError, ValueError) as e:
        raise ValueError('%s is not a readable meta file (%s): export the model again'
                         % (path, getattr(e, 'strerror', None) or e)) from None
    if meta is _ABSENT:
        return None
    if not isinstance(meta, dict):
        raise ValueError('%s is not a meta file (not a JSON object): export the model again'
                         % path)
    return meta


def recorded_input_shape(meta):
    """(C, H, W) of one input as `meta` records it, or None."""
    if not meta:
        return None
    shape = (meta.get('input') or {}).get('shape') or meta.get('input_shape')
    return tuple(int(v) for v in shape[1:]) if shape else None


def recorded_stats(meta):
    """The (mean, std) an input pipeline applies to 0-255 pixels before the model, as `meta`
    records it: mean 0 and std 1 (raw pixels) for a model that normalises in its own graph, the
    recorded statistics otherwise, None when the meta records none."""
    described = (meta or {}).get('input') or {}
    mean, std = described.get('mean'), described.get('std')
    if described.get('normalized_in_graph'):
        channels = len(mean or ()) or (recorded_input_shape(meta) or (3,))[0]
        return [0.0] * channels, [1.0] * channels
    if mean is None or std is None:
        return None
    return [float(v) for v in mean], [float(v) for v in std]


def input_shape_for(net, batch_size=1, meta=None):
    """(N, C, H, W) a network expects: the shape an export's `meta` records (Fashion-MNIST
    exports take 28 px), else 224 for the ImageNet stem and 32 otherwise (CIFAR's size, a guess
    for networks that know nothing of their data: every network pools globally)."""
    recorded = recorded_input_shape(meta)
    if recorded is not None:
        return (batch_size,) + recorded
    config = getattr(net, 'config', {})
    size = 224 if config.get('stem_kind') == 'imagenet' else 32
    return (batch_size, 3, size, size)


def input_description(input_shape, mean=None, std=None, raw_input=False):
    """How to feed an exported model, for its meta file: downstream code that feeds raw pixels
    to a model trained on normalised ones mispredicts without a warning."""
    described = dict(name='data', shape=list(input_shape), layout='NCHW', channels='RGB',
                     outputs='logits: unnormalised class scores (softmax gives probabilities)')
    if mean is not None:
        if raw_input:
            described.update(pixels='raw 0-255 floats; the graph subtracts mean and divides by '
                                    'std itself', normalized_in_graph=True)
        else:
            described.update(pixels='(x - mean) / std of 0-255 pixels, per channel',
                             normalized_in_graph=False)
        described.update(mean=list(mean), std=list(std), pixel_scale='0-255')
    return described


def export_meta(metadata, input_shape, epoch=0, mean=None, std=None, raw_input=False, **extra):
    """The meta file of an export: `metadata` (model, arguments, data set...) with the input
    shape, the epoch and how to feed the input (input_description); `extra` keys on top (e.g.
    compute='bfloat16'). Every writer of a meta file composes it here."""
    return dict(metadata, input_shape=list(input_shape), epoch=epoch,
                input=input_description(input_shape, mean, std, raw_input), **extra)


# ------------------------------------------------------------------------------------------
# A model's files written as a set

class ExportError(OSError):
    """An export whose files did not read back as written (a full disk, most likely): nothing
    was moved into place. An OSError (EIO), so that a training run stops as on any failed
    write, keeping its checkpoints."""

    def __init__(self, message, path):
        super().__init__(errno.EIO, message, path)


class ExportSet:
    """The files of one exported model (symbol, params, meta), written as checkpoints are.

        with ExportSet(prefix, epoch) as files:
            net.export(files.temporary_prefix, epoch)      # or write files.temporary(kind)
            files.meta(meta)                               # optional
        # here: verified and in place

    Everything is written under temporary names (`.NAME.partial-PID`) beside the targets and
    read back: the symbol must parse and the params file must hold exactly the symbol's
    parameters (a full disk truncates it silently: MXNet's writer reports nothing). Only then
    is a pending list of the renames written, the renames made and the list removed. A reader
    through import_model therefore sees the old complete set or the new one: an export killed
    between two renames is finished by the next reader or export of the prefix (the files were
    verified before the list was written), and one killed earlier leaves only temporaries, which
    the next export of the prefix removes. On failure the temporaries are removed at once."""

    KINDS = tuple(_NAMES)

    def __init__(self, prefix, epoch=0):
        self.prefix, self.epoch = prefix, epoch
        self.directory = os.path.dirname(os.path.abspath(prefix))
        self.name = os.path.basename(prefix)
        self.temporary_prefix = os.path.join(self.directory, '.%s.partial-%d'
                                             % (self.name, os.getpid()))
        self._meta = None

    def final(self, kind):
        return export_file(self.prefix, kind, self.epoch)

    def temporary(self, kind):
        return export_file(self.temporary_prefix, kind, self.epoch)

    def meta(self, meta):
        self._meta = meta

    def __enter__(self):
        os.makedirs(self.directory, exist_ok=True)
        finish_export(self.prefix)
        remove_stale_partials(self.directory, '.%s.partial-*' % glob.escape(self.name))
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            try:
                self._commit()
                return False
            except BaseException:
                if not os.path.exists(pending_path(self.prefix)):
                    self._discard()
                # else: verified and listed; the next reader or export finishes the renames
                raise
        self._discard()
        return False

    def _commit(self):
        if self._meta is not None:
            write_json(self.temporary('meta'), self._meta)
        try:
            verify_export(self.temporary('symbol'), self.temporary('params'),
                          shown=(self.final('symbol'), self.final('params')))
        except ValueError as e:
            raise ExportError('%s; nothing was written' % e, self.final('params')) from None
        renames = [(self.temporary(kind), self.final(kind)) for kind in self.KINDS
                   if os.path.exists(self.temporary(kind))]
        for tmp, _ in renames:
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
        write_json(pending_path(self.prefix), renames)
        finish_export(self.prefix)

    def _discard(self):
        for kind in self.KINDS:
            try:
                os.remove(self.temporary(kind))
            except FileNotFoundError:
                pass


def finish_export(prefix):
    """Make the renames of an export interrupted while moving its verified files into place;
    True if there was one."""
    pending = pending_path(prefix)
    try:
        renames = _read_json(pending)
    except ValueError:  # the list itself was being written: nothing was renamed yet
        os.remove(pending)
        return False
    if renames is _ABSENT:
        return False
    for tmp, final in renames:
        if os.path.exists(tmp):
            os.replace(tmp, final)
    os.remove(pending)
    return True


def verify_export(sym_file, params_file, shown=None):
    """Raise ValueError naming the file unless `sym_file` is a symbol that parses and
    `params_file` loads and holds exactly its parameters (`arg:`/`aux:` names). `shown`: the
    (symbol, params) names the message uses instead (the targets of temporary files)."""
    shown_sym, shown_params = shown or (sym_file, params_file)
    try:
        sym = mx.sym.load(sym_file)
    except (mx.base.MXNetError, ValueError, OSError) as e:
        raise ValueError('%s is not a readable MXNet symbol file (%s)'
                         % (shown_sym, _reason(e))) from None
    try:
        saved = set(mx.nd.load(params_file))
    except (mx.base.MXNetError, ValueError, OSError) as e:
        raise ValueError('%s is not a readable MXNet parameter file (%s; a full disk truncates '
                         'it)' % (shown_params, _reason(e))) from None
    expected = ({'arg:' + name for name in sym.list_arguments() if name != 'data'} |
                {'aux:' + name for name in sym.list_auxiliary_states()})
    if saved != expected:
        raise ValueError('%s does not hold the parameters of %s: %d of its %d present, %d '
                         'foreign (%s)' % (shown_params, shown_sym, len(saved & expected),
                                           len(expected), len(saved - expected),
                                           ', '.join(sorted(expected ^ saved)[:3])))


def _reason(error):
    """The last line of an MXNet error (its C++ stack trace comes before)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
