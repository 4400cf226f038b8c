"""Every entry point's --help: each option explained, descriptions whole sentences, defaults
shown once and truly, the program named as the user runs it (issue 28, item 6)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (how the user runs it, argv after the interpreter)
ENTRY_POINTS = [
    ('cifar.py', ['train/cifar.py']),
    ('svhn.py', ['train/svhn.py']),
    ('imagenet.py', ['train/imagenet.py']),
    ('digits.py', ['train/digits.py']),
    ('fashion.py', ['train/fashion.py']),
    ('evaluate.py', ['train/evaluate.py']),
    ('export.py', ['tools/export.py']),
    ('quantize.py', ['tools/quantize.py']),
    ('launch.py', ['tools/launch.py']),
    ('python tools/gpu_check.py', ['tools/gpu_check.py']),
    ('python -m dmrnet.tools.experiments', ['-m', 'dmrnet.tools.experiments']),
    ('python -m dmrnet.tools.experiments.report', ['-m', 'dmrnet.tools.experiments.report']),
    ('python -m dmrnet.tools.bench', ['-m', 'dmrnet.tools.bench']),
]

# An option line of argparse's help: two spaces, then the option strings.
OPTION = re.compile(r'^  (-{1,2}[A-Za-z0-9][^\s,]*)')


def run_help(argv):
    env = dict(os.environ, COLUMNS='100')
    out = subprocess.run([sys.executable] + argv + ['--help'], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def options(text):
    """{first option string: its help text ('' when none)} of a --help output."""
    found, current, lines = {}, None, text.splitlines()
    for line in lines:
        m = OPTION.match(line)
        if m:
            current = m.group(1)
            parts = re.split(r'\s{2,}', line.strip(), maxsplit=1)
            found[current] = parts[1] if len(parts) > 1 else ''
        elif current and line.startswith('      ') and line.strip():
            found[current] = (found[current] + ' ' + line.strip()).strip()
        else:
            current = None
    return found


def description(text):
    """The paragraph(s) between the usage and the first section."""
    body = text.split('\n\n', 1)[1]
    head = re.split(r'\n(?:options|optional arguments|positional arguments|[a-z ]+):\n', body)[0]
    return ' '.join(head.split())


@pytest.fixture(scope='module', params=ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def entry(request):
    name, argv = request.param
    return name, run_help(argv)


def test_program_named_as_run(entry):
    name, text = entry
    usage = text.split('\n', 1)[0]
    assert usage.startswith('usage: %s ' % name), usage
    assert '__main__' not in text


def test_every_option_has_help(entry):
    name, text = entry
    found = options(text)
    assert found, 'no options parsed from %s --help' % name
    missing = sorted(o for o, h in found.items() if not h and o not in ('-h',))
    assert not missing, '%s: options without help: %s' % (name, missing)


def test_description_is_whole(entry):
    name, text = entry
    desc = description(text)
    assert desc, '%s has no description' % name
    assert desc[-1] in '.!?)', '%s: description cut short: ...%r' % (name, desc[-60:])
    assert desc.count('(') == desc.count(')'), '%s: unbalanced parenthesis: %r' % (name, desc)


def test_defaults_said_once_and_truly(entry):
    name, text = entry
    for option, help_text in options(text).items():
        assert '(default: None)' not in help_text, (name, option, help_text)
        assert help_text.lower().count('default') <= 1, (name, option, help_text)
        # A flag that takes no value: "(default: True)" on --no-progress reads as "off".
        assert not re.search(r'\(default: (True|False)\)', help_text), (name, option, help_text)
        assert not re.match(r'None:', help_text) and '; None:' not in help_text, \
            (name, option, help_text)


def test_recipe_flags_explained():
    found = options(run_help(['train/fashion.py']))
    for flag in ('--epochs', '--lr-factor', '--momentum'):
        assert found[flag], flag
    assert '(default: 8)' in found['--epochs']


def test_the_onnx_extra_pins_what_the_tests_run_with():
    """pip install -e .[onnx] must not bring a newer onnx (numpy 2, which mxnet cannot import):
    its pins are the ones requirements-test.txt tests with."""
    import runpy
    import setuptools
    captured = {}
    real = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        runpy.run_path(os.path.join(ROOT, 'setup.py'))
    finally:
        setuptools.setup = real
    with open(os.path.join(ROOT, 'requirements-test.txt')) as f:
        tested = {line.split('#')[0].strip() for line in f if line.split('#')[0].strip()}
    extra = captured['extras_require']['onnx']
    assert extra and set(extra) <= tested, (extra, tested)
    assert any(pin.startswith('onnx==') for pin in extra)
