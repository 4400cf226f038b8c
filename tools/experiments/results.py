"""Result records: reading the results files the runner writes (and those the repository
publishes), and choosing records by their fields. A record is one finished training run; the
fields are listed in report.py's help. No MXNet: the report reads records without it."""
import glob
import json
import logging
import os

from dmrnet.tools.analysis.paths import pathnet_mean
from dmrnet.tools.experiments.layout import REPOSITORY, RESULTS_FILE

log = logging.getLogger('dmrnet.report')


def _locate_run_dir(record, results_path):
    """Where a record's run folder is now. Its run_dir as written wins when it exists (the
    runner's, absolute or relative to where it ran); otherwise, beside the results file: a
    published file names runs relative to itself (results/fashion/results.jsonl names runs/...),
    and a runner's results.jsonl sits in the folder that holds its runs, so runs kept in a
    repository are found from any working folder and in a checkout at any path."""
    run_dir = record.get('run_dir') if isinstance(record, dict) else None
    if not run_dir or os.path.isdir(run_dir):
        return
    here = os.path.dirname(os.path.abspath(results_path))
    for beside in ([] if os.path.isabs(run_dir) else [os.path.join(here, run_dir)]) \
            + [os.path.join(here, os.path.basename(os.path.normpath(run_dir)))]:
        if os.path.isdir(beside):
            record['run_dir'] = os.path.normpath(beside)
            return


def load_results(paths, missing_ok=True):
    """Records from JSON-lines or JSON-list files. Missing files are skipped when missing_ok (the
    default locations of experiments not run yet), an error otherwise (files the user named)."""
    records = []
    for path in paths:
        if not os.path.exists(path):
            if missing_ok:
                continue
            raise FileNotFoundError('results file %s does not exist' % path)
        with open(path) as f:
            text = f.read()
        try:
            if text.lstrip().startswith('['):
                found = json.loads(text)
            else:
                found = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise ValueError('%s: not JSON lines or a JSON list (%s)' % (path, e)) from None
        for record in found:
            _locate_run_dir(record, path)
        records.extend(found)
    for record in records:
        for field in ('dataset', 'family', 'test_error'):
            if field not in record:
                raise ValueError('result record without %r: %r' % (field, record))
    return records


def published_results():
    """The results files kept in the repository (results/<dataset>/results.jsonl)."""
    return sorted(glob.glob(os.path.join(REPOSITORY, 'results', '*', RESULTS_FILE)))


def with_published(records):
    """`records` and, for each experiment they have no run of, the repository's published
    results of it: the report then covers what is committed, while an experiment run under
    RUNS (the published one resumed there, or a smoke run of it) is never pooled with them."""
    present = {record.get('experiment') for record in records}
    extra = [record for record in load_results(published_results())
             if record.get('experiment') not in present]
    if extra:
        log.info('%d published results of %s (results/ of the repository)', len(extra),
                 ', '.join(sorted({record.get('experiment') for record in extra})))
    return records + extra


def matching(records, **conditions):
    """Records whose fields match; a condition value may be a tuple of accepted values. A missing
    width counts as 1 and a missing share as True (the defaults of every network)."""
    defaults = {'width': 1, 'share': True}
    selected = []
    for record in records:
        for field, wanted in conditions.items():
            got = record.get(field, defaults.get(field))
            if got is None and field in defaults:
                got = defaults[field]
            if not (got in wanted if isinstance(wanted, tuple) else got == wanted):
                break
        else:
            selected.append(record)
    return selected


def errors(records, **conditions):
    """The final test errors of the records `matching` chooses."""
    return [record['test_error'] for record in matching(records, **conditions)]


def avg_path_length(record):
    """A Figure 6 run's average path length: as recorded, else computed (L + 3)."""
    if record.get('avg_path_length') is not None:
        return float(record['avg_path_length'])
    return float(pathnet_mean(record['L'], record.get('blocks') or 3))


def pathnet_groups(records):
    """Figure 6's points: [(dataset, blocks, L, average path length, test errors)], sorted, one
    per configuration of the 'pathnet' runs among `records`."""
    pathnets = matching(records, family='pathnet')
    groups = []
    for dataset, blocks, L in sorted({(record['dataset'], record.get('blocks') or 3, record['L'])
                                      for record in pathnets}):
        selected = matching(pathnets, dataset=dataset, blocks=blocks, L=L)
        groups.append((dataset, blocks, L, avg_path_length(selected[0]),
                       [record['test_error'] for record in selected]))
    return groups
