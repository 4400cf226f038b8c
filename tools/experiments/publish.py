"""Put a finished family comparison into the repository: its results at every depth it was run
at, its report and, for seed 0 of each family at each depth, the final model as kept weights
(GluonCV's `pretrained=`).

    python -m dmrnet.tools.experiments.publish fashion-compare --runs-dir RUNS \
        --out results/fashion [--command 'make fashion-compare RUNS=...']

Writes OUT/results.jsonl (the experiment's, as collected: every depth, with run folders beneath
OUT's parent named relative to OUT), OUT/report.md + the report's figures (the comparison table
with a row and Welch t-tests per L, the recipe every depth trained with and where it was chosen,
Figure 7-style curves per L, error against parameters and, with two depths or more, error
against L beside the paper's), OUT/weights/<model>-symbol.json + -0000.params + -meta.json
(seed 0's LAST epoch: nothing is picked on the test set; the meta file records the run and its
test error) and OUT/COMMAND.md (what made them, when, and how long the runs took, per depth).

An experiment with runs still to come is refused with one line saying what is missing: a run
started and not finished, or a depth without every family and seed another depth has.
"""
import argparse
import datetime
import json
import os
import shutil
import sys

from dmrnet import paper
from dmrnet.paper.reference import paper_numbers
from dmrnet.tools.experiments import recipe
from dmrnet.tools.experiments.figures import figure7
from dmrnet.tools.experiments.layout import RESULTS_FILE, RUNS_DIR
from dmrnet.tools.experiments.report import build
from dmrnet.tools.experiments.results import load_results
from dmrnet.train import rundir
from dmrnet.train.resume import RECIPE_FIELDS
from dmrnet.train.schedule import steps_of
from dmrnet.utils.files import write_json, write_text

# Bytes a kept params file may take in the repository: a Table 2 network up to L = 24 (0.8M
# parameters, about 3 MB in float32); deeper ones belong outside it.
WEIGHTS_LIMIT = 4 << 20


def final_export(record):
    """(metadata, params file) of a run's final export; ValueError for one too large to keep."""
    from dmrnet.symbols.deploy import export_file, meta_path, read_export_meta
    last = rundir.export_prefix(record['run_dir'], rundir.LAST_EXPORT)
    meta = read_export_meta(last)
    if meta is None:
        raise ValueError('%s is missing: the run has not exported its final model'
                         % meta_path(last))
    source = export_file(last, 'params', meta['epoch'])
    if os.path.getsize(source) > WEIGHTS_LIMIT:
        raise ValueError('%s is %d bytes, more than the %d a kept weight file may take'
                         % (source, os.path.getsize(source), WEIGHTS_LIMIT))
    return meta, source


def keep_weights(record, weights_dir):
    """Copy the final export of a run as weights_dir/<model>-*-0000 (epoch 0: the name
    get_model(pretrained=...) and train/evaluate.py look for); returns the prefix."""
    run_dir, model = record['run_dir'], record['model']
    from dmrnet.symbols.deploy import export_file, meta_path
    meta, source = final_export(record)
    prefix = os.path.join(weights_dir, model)
    os.makedirs(weights_dir, exist_ok=True)
    shutil.copyfile(export_file(rundir.export_prefix(run_dir, rundir.LAST_EXPORT), 'symbol'),
                    export_file(prefix, 'symbol'))
    shutil.copyfile(source, export_file(prefix, 'params', 0))
    write_json(meta_path(prefix), dict(meta, trained_epochs=meta['epoch'], epoch=0,
                                           run=record['name'], seed=record['seed'],
                                           test_error=record['test_error']))
    return prefix


def portable(record, out):
    """The record with its run_dir relative to `out` when the run lies beneath out's parent
    (runs kept in the repository), so the published file names its runs on any checkout;
    results.load_results resolves such paths against the file's folder."""
    run_dir = os.path.abspath(record['run_dir'])
    home = os.path.dirname(os.path.abspath(out))
    if os.path.commonpath([run_dir, home]) == home:
        record = dict(record, run_dir=os.path.relpath(run_dir, os.path.abspath(out)))
    return record


def publish(experiment, runs_dir, out, command=None, dataset=None, at_a_time=None):
    """The files above; returns the records published. at_a_time: how many runs trained side
    by side, for the wall-clock estimate in COMMAND.md. ValueError, before anything is written,
    for an unfinished experiment or runs that did not all train with one recipe."""
    results = os.path.join(runs_dir, experiment, RESULTS_FILE)
    records = load_results([results], missing_ok=False)
    if not records:
        raise ValueError('%s lists no finished run' % results)
    missing = unfinished(records, os.path.join(runs_dir, experiment))
    if missing:
        raise ValueError('%s is not finished: %s; finish it first (the command that made the '
                         'runs resumes them), then publish' % (experiment, missing))
    dataset = dataset or records[0]['dataset']
    recipe_text = recipe_paragraph(records, runs_dir, dataset)
    kept = [record for record in records if record['seed'] == 0]
    for record in kept:
        final_export(record)
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, RESULTS_FILE), ''.join(
        json.dumps(portable(record, out), sort_keys=True) + '\n' for record in records))
    table, = build([dataset], records, paper_numbers(), out)
    write_text(os.path.join(out, 'report.md'), table.markdown() + '\n' + recipe_text)
    figure7(records, out, datasets=(dataset,))
    for record in kept:
        keep_weights(record, os.path.join(out, 'weights'))
    write_text(os.path.join(out, 'COMMAND.md'), command_markdown(
        records, command or 'python -m dmrnet.tools.experiments %s --runs-dir %s'
        % (experiment, runs_dir), results, at_a_time))
    return records


def depths(records):
    return sorted({record.get('L') for record in records}, key=_L_order)


def _L_order(L):
    return (L is None, L or 0)


def unfinished(records, experiment_dir):
    """What keeps a family comparison from being finished, as a phrase, or None: runs started
    and not finished (a run.json without a summary.json beside it: running, interrupted or
    failed), and depths without every (family, seed) that the finished runs have at any depth
    (runs not started yet: the runner starts a depth's seeds in order)."""
    from dmrnet.tools.experiments.collect import RUN_FILE
    from dmrnet.train import rundir
    started = {}
    for name in sorted(os.listdir(experiment_dir)):
        run_dir = os.path.join(experiment_dir, name)
        if os.path.exists(os.path.join(run_dir, RUN_FILE)) and not rundir.is_finished(run_dir):
            with open(os.path.join(run_dir, RUN_FILE)) as f:
                started[name] = json.load(f).get('L')
    grid = {(record['family'], record.get('seed')) for record in records}
    gaps = []
    for L in sorted(set(depths(records)) | set(started.values()), key=_L_order):
        have = grid & {(record['family'], record.get('seed')) for record in records
                       if record.get('L') == L}
        if len(have) < len(grid):
            gaps.append('L = %s has %d of %d runs' % (L, len(have), len(grid)))
    if started:
        gaps.append('started and not finished: %s' % ', '.join(started))
    return '; '.join(gaps) or None


def recipe_args(run_dir):
    """The recipe a finished run trained with, from its summary.json."""
    args = (rundir.read_summary(run_dir) or {}).get('args') or {}
    return {key: args.get(key) for key in RECIPE_FIELDS}


def describe_recipe(args):
    """A recipe in words, for the report; arguments a run did not record are left out."""
    parts = []
    if args['epochs'] is not None:
        parts.append('%d epochs' % args['epochs'])
    if args['batch_size'] is not None:
        parts.append('batch %d' % args['batch_size'])
    if args['lr'] is not None:
        parts.append('%s lr %g' % ('Nesterov SGD' if args['optimizer'] == 'nag'
                                   else args['optimizer'], args['lr']))
    if args['lr_schedule'] is not None and args['epochs'] is not None:
        parts.append('lr x %g after epochs %s' % (args['lr_factor'],
                                                  ', '.join(map(str, steps_of(args)))))
    if args['wd'] is not None:
        parts.append('weight decay %g' % args['wd'])
    return ', '.join(parts) or 'the train script\'s defaults'


def recipe_choice(runs_dir, dataset):
    """(validation split, its depths, chosen (option, value), candidates) of the choice that
    `make <dataset>-recipe` leaves in RUNS/<dataset>-recipe, or None where there is none."""
    root = os.path.join(runs_dir, '%s-recipe' % dataset)
    found = recipe.candidates(root) if os.path.isdir(root) else {}
    if not found:
        return None
    split = sorted({record['dataset'] for runs in found.values() for record in runs})[0]
    _, _, chosen, _ = recipe.choose(found, split)
    chosen_at = depths([record for runs in found.values() for record in runs])
    return split, chosen_at, chosen, sorted(found, key=lambda key: float(key[1]))


def recipe_paragraph(records, runs_dir, dataset):
    """The report's words on the recipe: the one every depth trained with and, where the choice
    is kept beside the runs, the split and depth it was chosen at, and that deeper runs use it
    unchanged. ValueError where runs trained differently or not with the chosen setting."""
    recipes = {}
    for record in records:
        args = recipe_args(record['run_dir'])
        recipes.setdefault(json.dumps(args, sort_keys=True), (args, set()))[1].add(
            record.get('L'))
    if len(recipes) > 1:
        raise ValueError('the runs did not all train with one recipe: %s' % '; '.join(
            'L = %s: %s' % (', '.join(map(str, sorted(Ls, key=_L_order))), describe_recipe(args))
            for args, Ls in recipes.values()))
    (args, _), = recipes.values()
    measured = depths(records)
    text = 'Recipe: every run%s trained with one recipe: %s.' % (
        ' (L = %s)' % ', '.join(map(str, measured)) if len(measured) > 1 else '',
        describe_recipe(args))
    choice = recipe_choice(runs_dir, dataset)
    if choice:
        split, chosen_at, (option, value), candidates = choice
        if option in args and args[option] is not None and float(args[option]) != float(value):
            raise ValueError('the runs trained with %s %g, not the %s %s chosen on %s'
                             % (option, args[option], option, value, split))
        text += (' It was chosen on the validation split (%s) at L = %s, one seed per family: '
                 '%s %s, of the candidates %s.' % (split, ', '.join(map(str, chosen_at)), option,
                                                   value, ', '.join(v for _, v in candidates)))
        later = [L for L in measured if L not in chosen_at]
        if later:
            text += (' The L = %s runs use the L = %s recipe unchanged: it was not chosen again '
                     'for them, on the validation split or on the test set.'
                     % (', '.join(map(str, later)), ', '.join(map(str, chosen_at))))
    return text + '\n'


def depth_command(command, L):
    """The command that made a depth's runs: `command` itself at the runner's default L."""
    from dmrnet.tools.experiments.definitions import COMPARISON_L
    if L in (None, COMPARISON_L):
        return command
    return command + (' L=%d' % L if command.startswith('make ') else ' --L %d' % L)


def seed_list(seeds):
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return '%d-%d' % (seeds[0], seeds[-1])
    return ', '.join(map(str, seeds))


def command_markdown(records, command, results, at_a_time):
    """COMMAND.md: the command of each depth, then the runs and hours, in all and per depth."""
    def hours(runs):
        return sum(report_seconds(record['run_dir']) for record in runs) / 3600

    def wall(runs):
        # the logged seconds include epochs slowed by other work on the machine
        return ('; %d ran at a time, so about %.1f hours of wall-clock time'
                % (at_a_time, hours(runs) / at_a_time) if at_a_time and at_a_time > 1 else '')

    measured = depths(records)
    lines = ['# How these results were made', '']
    lines += ['    %s' % depth_command(command, L) for L in measured]
    lines += ['', 'Published %s from %s: %d finished runs, %.1f hours of training summed over '
              'the runs%s.' % (datetime.date.today().isoformat(), results, len(records),
                               hours(records), wall(records))]
    if len(measured) > 1:
        lines.append('')
        for L in measured:
            runs = [record for record in records if record.get('L') == L]
            models = [model for family in paper.FAMILIES
                      for model in sorted({record['model'] for record in runs
                                           if record['family'] == family})]
            lines.append('- L = %s (%s; seeds %s): %d runs, %.1f hours of training%s.' % (
                L, ', '.join(models), seed_list({record.get('seed') for record in runs}),
                len(runs), hours(runs), wall(runs)))
    return '\n'.join(lines) + '\n'


def report_seconds(run_dir):
    """Training and evaluation seconds a run logged."""
    from dmrnet.train import rundir
    return sum(record.get('seconds', 0) for record in rundir.read_log(run_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('experiment', help='e.g. fashion-compare')
    parser.add_argument('--runs-dir', default=RUNS_DIR)
    parser.add_argument('--out', required=True, help='e.g. results/fashion')
    parser.add_argument('--dataset', help='default: the results\' dataset')
    parser.add_argument('--command', help='the command that made the runs, for COMMAND.md')
    parser.add_argument('--at-a-time', type=int, metavar='N',
                        help='runs that trained side by side (the runner\'s --jobs), for the '
                             'wall-clock time in COMMAND.md')
    args = parser.parse_args(argv)
    try:
        records = publish(args.experiment, args.runs_dir, args.out, args.command, args.dataset,
                          args.at_a_time)
    except (OSError, ValueError) as e:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, e))
    print('published %d runs to %s' % (len(records), args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
