"""Environment variables MXNet reads are checked once, when dmrnet is imported: a value it
cannot use is one line and exit status 2 in every script, --help included."""
import os
import subprocess
import sys

import pytest

from dmrnet.utils import runtime

from checkout import REPO  # noqa: E402


@pytest.mark.parametrize('value', ['abc', '', '1.5', '0', '-3', '100000', '3'])
def test_thread_counts_mxnet_cannot_use(value):
    problem = runtime.environment_problem({'OMP_NUM_THREADS': value}, cpus=2)
    assert problem.startswith('OMP_NUM_THREADS=%r: must be a whole number from 1 to 2' % value)


@pytest.mark.parametrize('environ', [{}, {'OMP_NUM_THREADS': '1'}, {'OMP_NUM_THREADS': ' 2 '},
                                     {'MXNET_ENGINE_TYPE': 'NaiveEngine'},
                                     {'MXNET_ENGINE_TYPE': 'ThreadedEnginePerDevice'}])
def test_usable_settings_pass(environ):
    assert runtime.environment_problem(environ, cpus=2) is None


def test_an_engine_mxnet_does_not_have():
    problem = runtime.environment_problem({'MXNET_ENGINE_TYPE': 'Bogus'}, cpus=2)
    assert problem.startswith("MXNET_ENGINE_TYPE='Bogus': MXNet 1.9 has NaiveEngine")


@pytest.mark.parametrize('script, variable, value', [
    ('train/digits.py', 'OMP_NUM_THREADS', 'abc'),
    ('tools/export.py', 'OMP_NUM_THREADS', '100000'),
    ('train/evaluate.py', 'MXNET_ENGINE_TYPE', 'Bogus')])
def test_every_script_says_it_in_one_line(script, variable, value):
    env = dict(os.environ, **{variable: value})
    result = subprocess.run([sys.executable, script, '--help'], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith('%s: error: %s=%r' % (os.path.basename(script), variable, value))
