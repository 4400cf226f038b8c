"""The experiments' definitions: which networks each experiment trains, on which data sets, how
many seeds, with the data set's recipe scaled; every run as a dict (the future run.json). The
paper's depths, families and Table 3 networks are dmrnet.paper's."""
import fnmatch
import math
import os

from dmrnet import paper
from dmrnet.data import dataset_info
from dmrnet.symbols import preset
from dmrnet.tools.experiments.layout import EXPERIMENTS
from dmrnet.train.recipes import recipe_for

DEFAULT_DATASETS = {
    'table2': paper.TABLE2_DATASETS, 'table3': paper.TABLE2_DATASETS,
    'table5': paper.TABLE5_DATASETS, 'figure6': ('cifar10',),
    'imagenet-compare': ('imagenet',), 'digits-compare': ('digits',),
    'fashion-compare': ('fashion',),
}
DEFAULT_SEEDS = {'table2': 5, 'digits-compare': 5, 'fashion-compare': 5}
# ResNet, DILNet and DMRNet at one L of Table 2 on data the paper did not use (--L changes it).
FAMILY_COMPARISONS = ('digits-compare', 'fashion-compare')
COMPARISON_L = 12


def _family_comparison(Ls):
    """ResNet, DILNet and DMRNet at each L: Table 2's preset (depth in the name) where Table 2
    has one, else the family with L as an argument."""
    configurations = []
    for L in Ls:
        for family in paper.FAMILIES:
            if L in paper.TABLE2_L:
                model, model_args = paper.table2_preset(family, L), {}
            else:
                model, model_args = family, {'L': L}
            configurations.append(dict(model=model, model_args=model_args, family=family, L=L,
                                       width=1))
    return configurations


def _table3():
    """Table 3's networks as their presets define them (dmrnet.symbols); RiR is one fixed
    network, without the L and width the other families take."""
    configurations = []
    for model in paper.TABLE3_MODELS.values():
        entry = preset(model)
        L = entry['kwargs'].get('L')
        width = entry['kwargs'].get('width', 1) if L is not None else None
        configurations.append(dict(model=model, model_args={}, family=entry['family'], L=L,
                                   width=width))
    return configurations


def _table5():
    """Identity mappings against merge-and-run, with and without sharing the first conv and the
    classifier; the presets are named like Table 2's (depth L + 2)."""
    configurations = []
    for share in (True, False):
        for L in paper.TABLE5_L:
            suffix = '' if share else '_noshare'
            for family in ('identity', 'dmrnet'):
                configurations.append(dict(model=paper.table2_preset(family, L) + suffix,
                                           model_args={}, family=family, L=L, width=1,
                                           share=share))
    return configurations


def _figure6():
    """The plain nets cut into 3 or 6 residual blocks; average path length L + 3 (Section
    4.3)."""
    return [dict(model='pathnet', model_args={'L': L, 'blocks': blocks}, family='pathnet', L=L,
                 blocks=blocks, avg_path_length=L + 3)
            for blocks in (3, 6) for L in paper.FIGURE6_L]


def configurations(experiment, L=None):
    """The networks of an experiment: dicts with model (preset or family), model_args (passed
    on the command line) and the descriptive fields the report groups by."""
    if experiment == 'table2':
        return _family_comparison(paper.TABLE2_L)
    if experiment in FAMILY_COMPARISONS:
        return _family_comparison((L or COMPARISON_L,))
    if experiment == 'table3':
        return _table3()
    if experiment == 'table5':
        return _table5()
    if experiment == 'figure6':
        return _figure6()
    if experiment == 'imagenet-compare':
        return [dict(model='resnet101_imagenet', model_args={}, family='resnet_imagenet'),
                dict(model='dmrnet44_imagenet', model_args={}, family='dmrnet_imagenet')]
    raise ValueError('unknown experiment %r: use one of %s' % (experiment, ', '.join(EXPERIMENTS)))


def check_L(experiment, L):
    """A family comparison builds all three families at one L: a DILNet/DMRNet has L/6
    two-branch blocks a stage, so L must be a positive multiple of 6."""
    if L is None:
        return
    if experiment not in FAMILY_COMPARISONS:
        raise ValueError('--L applies to %s only (the other experiments use the '
                         "paper's L values)" % ' and '.join(FAMILY_COMPARISONS))
    if L <= 0 or L % 6:
        raise ValueError('--L %d: must be a positive multiple of 6 (L/6 two-branch blocks per '
                         'stage for DILNet and DMRNet)' % L)


def run_name(dataset, configuration, seed):
    arguments = ''.join('-%s%s' % (key, value)
                        for key, value in sorted(configuration['model_args'].items()))
    return '%s-%s%s-s%d' % (dataset, configuration['model'], arguments, seed)


def scaled_recipe(dataset, scale=1.0, epochs=None):
    """(epochs, max_batches or None) of the dataset's recipe (dmrnet.train.recipes), scaled."""
    recipe = recipe_for(dataset)
    if epochs is None:
        epochs = max(1, int(round(recipe.epochs * scale)))
    if scale >= 1:
        return epochs, None
    batches = math.ceil(dataset_info(dataset)['num_train'] / recipe.batch_size)
    return epochs, max(1, int(math.ceil(batches * scale)))


def build_runs(experiment, datasets=None, seeds=None, scale=1.0, epochs=None, runs_dir='runs',
               L=None, pattern=None):
    """Every run of an experiment, as dicts (the future run.json)."""
    datasets = datasets or DEFAULT_DATASETS[experiment]
    # absolute: the train scripts run with the repository as their working directory
    runs_dir = os.path.abspath(runs_dir)
    seed_count = seeds if seeds is not None else DEFAULT_SEEDS.get(experiment, 1)
    runs = []
    for dataset in datasets:
        run_epochs, max_batches = scaled_recipe(dataset, scale, epochs)
        # seed-major: a partly finished experiment has every configuration's first runs
        for seed in range(seed_count):
            for configuration in configurations(experiment, L):
                name = run_name(dataset, configuration, seed)
                if pattern and not fnmatch.fnmatch(name, pattern):
                    continue
                run = dict(configuration, experiment=experiment, dataset=dataset, seed=seed,
                           name=name, epochs=run_epochs, max_batches=max_batches, scale=scale,
                           run_dir=os.path.join(runs_dir, experiment, name))
                run.setdefault('share', True if configuration['family'] in ('dmrnet', 'identity')
                               else None)
                run.setdefault('blocks', None)
                runs.append(run)
    return runs
