"""What a run folder of the runner says: whether the run finished or can be resumed, and its
result record; every finished run of an experiment collected into RUNS/EXPERIMENT/results.jsonl
(the file the report reads)."""
import json
import logging
import os

from dmrnet.tools.experiments.layout import RESULTS_FILE
from dmrnet.train import rundir
from dmrnet.train.resume import RECIPE_FIELDS, per_device_batch
from dmrnet.utils.files import write_jsonl

log = logging.getLogger('dmrnet.experiments')

RUN_FILE = rundir.RUNNER_RECORD   # the runner's description of a run, beside the training's files


def finished(run):
    return rundir.is_finished(run['run_dir'])


def resumable(run):
    """An unfinished run that left a checkpoint pointer."""
    return not finished(run) and rundir.has_checkpoint(run['run_dir'])


def result_record(run_dir):
    """One results.jsonl record from a finished run's run.json, summary.json and log.jsonl."""
    with open(os.path.join(run_dir, RUN_FILE)) as f:
        run = json.load(f)
    summary = rundir.read_summary(run_dir)
    last = rundir.last_record(run_dir)
    record = {key: run.get(key) for key in (
        'experiment', 'name', 'dataset', 'family', 'model', 'L', 'width', 'share', 'blocks',
        'seed', 'epochs', 'max_batches', 'scale')}
    record['branches'] = run['model_args'].get('branches', 2 if run.get('family') in (
        'dilnet', 'dmrnet', 'identity') else None)
    record.update(test_error=summary.get('final_test_error'),
                  best_test_error=summary.get('best_test_error'),
                  final_train_loss=summary.get('final_train_loss'),
                  final_train_error=last.get('train_error'),
                  top5=summary.get('top5', summary.get('final_test_top5_error')),
                  params=summary.get('params'),
                  epochs_trained=summary.get('epochs'), run_dir=run_dir,
                  batch_per_device=batch_per_device(summary.get('args') or {}),
                  recipe={field: (summary.get('args') or {}).get(field)
                          for field in RECIPE_FIELDS})
    # what the train script actually built; a script default overriding the preset (the reason
    # commands.command pins L) would show here
    trained = summary.get('model_kwargs') or {}
    if run.get('L') is not None and trained.get('L') not in (None, run['L']):
        log.warning('%s: run.json says L=%s but the network was built with L=%s', run_dir,
                    run['L'], trained['L'])
    record['trained_L'] = trained.get('L', run.get('L'))
    if 'avg_path_length' in run:
        record['avg_path_length'] = run['avg_path_length']
    return record


def batch_per_device(train_args):
    """Images BatchNorm normalised over on each device of a run (one worker), or None."""
    try:
        return per_device_batch(train_args)
    except (KeyError, TypeError, ValueError):
        return None


def collect(experiment_dir):
    """Write experiment_dir/results.jsonl from every finished run below it; returns the records
    (with their run folders' full paths)."""
    records = []
    if os.path.isdir(experiment_dir):
        for name in sorted(os.listdir(experiment_dir)):
            run_dir = os.path.join(experiment_dir, name)
            if os.path.exists(os.path.join(run_dir, RUN_FILE)) and rundir.is_finished(run_dir):
                records.append(result_record(run_dir))
    # run folders named beside the file (the report resolves them there): the same file on
    # every checkout, so a kept experiment's results stay as committed
    path = write_jsonl(os.path.join(experiment_dir, RESULTS_FILE),
                       [dict(record, run_dir=os.path.basename(record['run_dir']))
                        for record in records])
    log.info('wrote %s (%d finished runs)', path, len(records))
    return records
