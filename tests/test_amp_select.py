"""--amp on a CPU decides by measurement (train/ampselect.py, train/precision.py): the flag's
modes, the decision and its one line, the cache, the record in the run folder, and resume
keeping it. Nothing is timed against a threshold: which dtype wins is the machine's business
(docs/PERFORMANCE.md); here the cache is seeded to force each outcome."""
import json
import logging
import os
import subprocess
import sys

import mxnet as mx
import pytest

from dmrnet.train import ampselect, precision, rundir
from dmrnet.train.cli import make_parser, parse_config
from dmrnet.train.config import TrainConfig
from dmrnet.train.errors import ConfigError
from runs import last_checkpoint

from checkout import REPO  # noqa: E402
NO_BF16 = precision.no_bfloat16_reason()
needs_bf16 = pytest.mark.skipif(NO_BF16 is not None, reason=str(NO_BF16))
TIMEOUT = 300
SPEC = ('resnet', {'L': 3, 'classes': 10}, 'resnet', {'L': 3, 'classes': 10})


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of the test's own (the user's ~/.cache/dmrnet stays untouched)."""
    folder = tmp_path / 'cache'
    monkeypatch.setenv('DMRNET_CACHE_DIR', str(folder))
    return folder


def test_flag_modes():
    parser = make_parser('t', ['digits'])
    assert parse_config(parser, []).amp is False
    assert parse_config(parser, ['--amp']).amp == 'auto'
    assert parse_config(parser, ['--amp', 'force']).amp == 'force'
    assert parse_config(parser, ['--amp', '--epochs', '2']).epochs == 2
    with pytest.raises(SystemExit) as e:
        parse_config(parser, ['--amp', 'bfloat16'])
    assert e.value.code == 2
    with pytest.raises(ConfigError, match="amp='fp16': use amp='auto' or amp='force'"):
        TrainConfig(amp='fp16').validate()     # the Python API names the field
    assert precision.amp_mode(True) == 'auto' and precision.amp_mode(False) is None


def test_help_says_what_amp_does_where():
    text = ' '.join(make_parser('t', ['digits']).format_help().split())
    for words in ('float16 with dynamic loss scaling', 'bfloat16 where a short timed comparison',
                  '--amp force', 'Refused on CPUs without bfloat16'):
        assert words in text, words


def _never_measure(*args, **kwargs):
    raise AssertionError('measured, where a recorded or cached choice was expected')


def test_decision_without_measuring(monkeypatch, caplog):
    cpu, gpu = [mx.cpu()], [mx.gpu(0)]
    monkeypatch.setattr(ampselect, 'choose', _never_measure)
    assert precision.decide(None, cpu, SPEC, 16)['dtype'] == 'float32'
    assert precision.decide('auto', gpu, SPEC, 16)['dtype'] == 'float16'
    assert precision.decide('force', cpu, SPEC, 16) == dict(amp='force', dtype='bfloat16',
                                                            source='--amp force')
    recorded = dict(amp='auto', dtype='float32', source='measured',
                    images_per_sec={'float32': 90.0, 'bfloat16': 60.0})
    assert precision.decide('auto', cpu, SPEC, 16, recorded) == recorded
    with caplog.at_level(logging.WARNING, logger='dmrnet.train'):
        precision.decide(None, cpu, SPEC, 16, dict(recorded, dtype='bfloat16'))
    assert 'resumed without --amp' in caplog.text


@pytest.mark.parametrize('figures,dtype', [({'float32': 96.0, 'bfloat16': 67.0}, 'float32'),
                                           ({'float32': 96.0, 'bfloat16': 98.0}, 'float32'),
                                           ({'float32': 60.0, 'bfloat16': 88.0}, 'bfloat16')])
def test_decision_by_measurement_one_line(cache, monkeypatch, caplog, figures, dtype):
    measured = []
    monkeypatch.setattr(ampselect, 'measure', lambda *a: measured.append(a) or dict(figures))
    with caplog.at_level(logging.INFO, logger='dmrnet.train'):
        first = precision.decide('auto', [mx.cpu()], SPEC, 16)
        again = precision.decide('auto', [mx.cpu()], SPEC, 16)
    assert first['dtype'] == again['dtype'] == dtype and len(measured) == 1
    assert (first['source'], again['source']) == ('measured', 'cached')
    lines = [r for r in caplog.records if r.name == 'dmrnet.train']
    assert len(lines) == 2  # one line per decision
    if dtype == 'float32':
        assert all(r.levelno == logging.WARNING for r in lines)
        text = lines[0].getMessage()
        assert '%.1f' % figures['bfloat16'] in text and '%.1f' % figures['float32'] in text
        assert '--amp force' in text
    stored = json.loads((cache / ampselect.CACHE_NAME).read_text())
    key = ampselect.cache_key('resnet', {'L': 3, 'classes': 10}, 16)
    assert stored[key]['chosen'] == dtype and key.startswith('cpu:%s:' % precision.cpu_model())
    # another batch, thread count or network is another measurement
    assert ampselect.cache_key('resnet', {'L': 3, 'classes': 10}, 32) != key
    assert ampselect.cache_key('resnet', {'L': 5, 'classes': 10}, 16) != key


def test_failed_comparison_trains_float32(cache, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError('the bfloat16 training step could not be timed (exit 1): boom')
    monkeypatch.setattr(ampselect, 'measure', broken)
    with caplog.at_level(logging.WARNING, logger='dmrnet.train'):
        chosen = precision.decide('auto', [mx.cpu()], SPEC, 16)
    assert chosen['dtype'] == 'float32' and 'boom' in caplog.text
    assert not (cache / ampselect.CACHE_NAME).exists()  # nothing cached: measured next time


def test_cli_bad_input_is_one_line(cache):
    for argv in (['--batch-size', '0'], ['--model-kwargs', '{L: 3}'],
                 ['--model', 'nosuchnet']):
        r = subprocess.run([sys.executable, '-m', 'dmrnet.train.ampselect'] + argv, cwd=REPO,
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert 'Traceback' not in r.stderr


@needs_bf16
def test_measurement_in_children(cache):
    """Both dtypes time in child processes (amp.init changes a process for good) and come back
    with positive figures; the choice is one of them and cached."""
    r = subprocess.run([sys.executable, '-m', 'dmrnet.train.ampselect', '--model', 'resnet',
                        '--model-kwargs', '{"L": 3}', '--batch-size', '8'], cwd=REPO,
                       capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, DMRNET_CACHE_DIR=str(cache)))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['source'] == 'measured' and out['chosen'] in ampselect.DTYPES
    assert all(out['images_per_sec'][d] > 0 for d in ampselect.DTYPES)
    assert len(json.loads((cache / ampselect.CACHE_NAME).read_text())) == 1


def _seed_cache(cache, chosen, tiny_run):
    """The cache's one entry, for the tiny run's network and batch, chose `chosen`."""
    tiny = tiny_run.TINY
    key = ampselect.cache_key(tiny['model'], {'L': tiny['L'], 'classes': 10}, tiny['batch_size'])
    cache.mkdir(exist_ok=True)
    (cache / ampselect.CACHE_NAME).write_text(json.dumps({key: dict(
        chosen=chosen, images_per_sec={'float32': 100.0, 'bfloat16': 70.0 if chosen ==
                                       'float32' else 140.0}, date='2026-12-06 00:00:00')}))


AMP = ['--amp', '--lr-steps', 100]


def _cached(cache):
    """The children's environment: the test's cache, and this process's OpenMP threads (the
    tiny run's one thread is not forced): the cache key, made here, holds the thread count."""
    return dict(os.environ, DMRNET_CACHE_DIR=str(cache))


@needs_bf16
def test_float32_chosen_recorded_and_kept_on_resume(tiny_run, tmp_path, cache):
    """Where bfloat16 measured slower, --amp trains float32 (no AMP), says so in one line with
    both figures, records it; the resumed run keeps float32 although the cache now says
    bfloat16."""
    _seed_cache(cache, 'float32', tiny_run)
    run = tmp_path / 'run'
    r = tiny_run.subprocess(run, *AMP, env=_cached(cache), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Using AMP' not in r.stderr
    lines = [line for line in r.stderr.splitlines() if '--amp:' in line]
    assert len(lines) == 1 and '70.0' in lines[0] and '100.0' in lines[0], lines
    meta, _, _ = last_checkpoint(run)
    assert meta['precision']['dtype'] == 'float32' and meta['precision']['source'] == 'cached'
    summary = rundir.read_summary(str(run))
    assert summary['precision'] == meta['precision']
    assert '--amp: training in float32' in (run / rundir.TRAIN_LOG).read_text()

    _seed_cache(cache, 'bfloat16', tiny_run)
    r = tiny_run.subprocess(run, *AMP, '--epochs', 2, '--resume', run, env=_cached(cache),
                            timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Using AMP' not in r.stderr and 'as the run trained before it was resumed' in r.stderr
    assert rundir.read_summary(str(run))['precision'] == meta['precision']


@needs_bf16
def test_bfloat16_chosen_and_recorded(tiny_run, tmp_path, cache):
    _seed_cache(cache, 'bfloat16', tiny_run)
    r = tiny_run.subprocess(tmp_path / 'run', *AMP, env=_cached(cache), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Using AMP' in r.stderr and '--amp: bfloat16 (140.0 images/s' in r.stderr
    summary = rundir.read_summary(str(tmp_path / 'run'))
    assert summary['precision']['dtype'] == 'bfloat16'
