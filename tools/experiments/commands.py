"""The command line that trains a run (the train scripts' CLI, docs/CONTRACTS.md), and the check
that the finished runs of an experiment folder were trained with the recipe this command would
use."""
import importlib
import os
import sys

from dmrnet.data import dataset_info
from dmrnet.tools.experiments.collect import finished, resumable
from dmrnet.tools.experiments.layout import REPOSITORY
from dmrnet.train import rundir
from dmrnet.train.recipes import recipe_for


def script_for(dataset):
    """The recipe's train script (absolute) and the arguments that choose `dataset` in it: a
    script that trains several datasets (train/cifar.py) takes --dataset."""
    recipe = recipe_for(dataset)
    arguments = ['--dataset', dataset] if len(recipe.datasets) > 1 else []
    return os.path.join(REPOSITORY, recipe.script), arguments


def command(run, python=sys.executable, train_script=None, gpu=None, data_dir=None,
            data_root=None, extra_args=()):
    script, dataset_args = script_for(run['dataset'])
    cmd = [python, train_script or script, '--model', run['model']]
    model_args = dict(run['model_args'])
    # Pin L and width even when the preset name implies them, so that the command line alone
    # says which network a run trained (the engine refuses a flag that contradicts a preset).
    if run.get('L') is not None:
        model_args.setdefault('L', run['L'])
    if run.get('width') is not None:
        model_args.setdefault('width', run['width'])
    for key, value in sorted(model_args.items()):
        cmd += ['--%s' % key.replace('_', '-'), str(value)]
    cmd += dataset_args + ['--epochs', str(run['epochs']), '--save-dir', run['run_dir'],
                           '--seed', str(run['seed'])]
    if run['max_batches'] is not None:
        cmd += ['--max-batches', str(run['max_batches'])]
    if gpu is not None:
        cmd += ['--gpus', str(gpu)]
    if data_root and not data_dir:  # a split of another dataset's pack shares its folder
        data_dir = os.path.join(data_root, dataset_info(run['dataset'])['folder'])
    if data_dir:
        cmd += ['--data-dir', data_dir]
    if resumable(run):
        # the engine does not pick up a half-done folder by itself; without this an interrupted
        # run would start again from epoch 1
        cmd += ['--resume', run['run_dir']]
    return cmd + list(extra_args)


def recipe_clashes(runs, **command_options):
    """[(run name, differences)] of the finished runs whose recorded recipe is not the one this
    command would train (train/resume.py's fields, epochs included: the runner never extends a
    finished run, so more epochs would leave the experiment with two lengths). Runs of a train
    script other than the dataset's own (--train-script) are not ours to read."""
    from dmrnet.train.cli import parse_config
    from dmrnet.train.errors import command_line
    from dmrnet.train.resume import differences
    if command_options.get('train_script'):
        return []
    clashes = []
    for run in runs:
        if not finished(run):
            continue
        recorded = (rundir.read_summary(run['run_dir']) or {}).get('args') or {}
        module = 'dmrnet.' + recipe_for(run['dataset']).script[:-3].replace('/', '.')
        parser = importlib.import_module(module).parser()
        config = parse_config(parser, command(run, **command_options)[2:])
        with command_line():   # the differences are in the train scripts' flags
            found = differences(recorded, config, 0)
        if recorded.get('epochs') not in (None, config.epochs):
            found.append(('--epochs', recorded['epochs'], config.epochs))
        if found:
            clashes.append((run['name'], found))
    return clashes
