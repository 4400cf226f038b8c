"""Model registry: families registered with a decorator, presets as small argument dicts.

    get_model('dmrnet', L=54)      # a family with its arguments
    get_model('dmrnet56')          # a preset: a family plus fixed arguments
    get_model('dmrnet56', classes=100, fused=True)   # presets accept further keyword arguments
    get_model_list('dmrnet*')      # preset names, fnmatch pattern
"""
import fnmatch
import glob
import inspect
import os

_FAMILIES = {}
_PRESETS = {}


def register_model(fn):
    """Register a family: a function returning a network from keyword arguments."""
    _FAMILIES[fn.__name__] = fn
    return fn


def register_preset(name, family, description='', **kwargs):
    if family not in _FAMILIES:
        raise KeyError('preset %r refers to unknown family %r' % (name, family))
    _PRESETS[name] = dict(family=family, kwargs=kwargs, description=description)


def get_family_list():
    return sorted(_FAMILIES)


def get_model_list(pattern=None):
    """Every preset name (each a concrete network), optionally filtered by an fnmatch pattern."""
    names = sorted(_PRESETS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def preset(name):
    """The family and arguments behind a preset name."""
    return _PRESETS[name]


def resolve(name, **kwargs):
    """Turn a model name and keyword arguments into (family, full keyword arguments)."""
    if name in _PRESETS:
        entry = _PRESETS[name]
        return entry['family'], dict(entry['kwargs'], **kwargs)
    if name in _FAMILIES:
        return name, dict(kwargs)
    raise ValueError('unknown model %r.\n  families: %s\n  presets: %s'
                     % (name, ', '.join(get_family_list()), ', '.join(get_model_list())))


# Trained weights kept in the repository (GluonCV's `pretrained=`): results/<dataset>/weights/
# <preset>-symbol.json + -0000.params + -meta.json, exported by the run that trained them.
# They are not package data: an installed copy finds them in the checkout it was installed
# from in editable mode (make venv), or where $DMRNET_WEIGHTS_ROOT points.
WEIGHTS_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'results')
WEIGHTS_ROOT_ENV = 'DMRNET_WEIGHTS_ROOT'


def _weights_root():
    return os.environ.get(WEIGHTS_ROOT_ENV) or WEIGHTS_ROOT


def kept_weights(name=None):
    """[(preset, dataset)] of every kept export (of `name` only, when given), sorted."""
    pattern = os.path.join(_weights_root(), '*', 'weights', '%s-0000.params' % (name or '*'))
    return sorted((os.path.basename(f)[:-len('-0000.params')], f.split(os.sep)[-3])
                  for f in glob.glob(pattern))


def pretrained_prefix(name, dataset):
    """The export prefix of `name`'s weights trained on `dataset` (True: the one data set
    `name` has weights for); ValueError naming what exists when that is not one export."""
    root = _weights_root()
    if dataset is True:
        datasets = [d for _, d in kept_weights(name)]
        if len(datasets) != 1:
            raise ValueError('pretrained=True: %s; name the data set, e.g. pretrained=%r'
                             % ('%s has weights trained on %s' % (name, ', '.join(datasets))
                                if datasets else 'no kept weights of %s' % name,
                                datasets[0] if datasets else 'fashion'))
        dataset = datasets[0]
    prefix = os.path.join(root, dataset, 'weights', name)
    if not os.path.exists(prefix + '-0000.params'):
        available = ', '.join('%s (%s)' % kept for kept in kept_weights())
        hint = '' if available else (
            '; looked in %s: the weights are in the repository\'s results/ folder, found '
            'from a checkout installed with pip install -e, or set %s to that folder'
            % (root, WEIGHTS_ROOT_ENV))
        raise ValueError('no %s weights trained on %s (available: %s%s)'
                         % (name, dataset, available or 'none', hint))
    return prefix


def get_model(name, pretrained=None, ctx=None, **kwargs):
    """Build a network by family or preset name. Unknown names and arguments raise a ValueError
    that lists what is valid. `pretrained='fashion'` loads the weights the repository keeps for
    that preset and dataset (the network is then initialized, on `ctx`); `pretrained=True`
    (GluonCV's form) those of the one data set that has weights for it. The network takes
    normalised images, (x - mean) / std of 0-255 RGB pixels, as the kept export's -meta.json
    records them, also where that export normalises in its own graph."""
    if pretrained:
        from dmrnet.symbols.deploy import read_export_meta
        prefix = pretrained_prefix(name, pretrained)
        meta = read_export_meta(prefix) or {}
        if meta.get('model') != name:
            raise ValueError('%s-meta.json describes %s, not %s' % (prefix, meta.get('model'),
                                                                    name))
        net = get_model(name, **dict(meta.get('model_kwargs') or {}, **kwargs))
        import mxnet as mx
        # a raw-input export's graph holds its normalisation as two more constants
        in_graph = bool((meta.get('input') or {}).get('normalized_in_graph'))
        net.collect_params().load(prefix + '-0000.params', ctx=ctx or mx.cpu(),
                                  ignore_extra=in_graph)
        return net
    family, kwargs = resolve(name, **kwargs)
    fn = _FAMILIES[family]
    accepted = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError('model %r does not take %s; it takes: %s'
                         % (name, ', '.join(unknown), ', '.join(accepted)))
    return fn(**kwargs)
