"""Where the default folders of a run live: data/<dataset> (the packs) and runs/<run> (the run
folders), when neither --data-dir nor --save-dir says.

The rule, in one place (data/registry.py and train/config.py both ask it):
  1. the current folder, when it holds a data/ or runs/ folder (a checkout does: data/ holds the
     packers), so that working from a checkout or a project folder of one's own keeps
     everything there, as the Makefile does;
  2. else the checkout this package runs from (the editable install `make venv` makes), so that
     `python /path/to/dmrnet/train/digits.py` from /tmp finds the checkout's packs instead of
     failing on a missing data/ and writing a runs/ into /tmp;
  3. else (an installed package, a bare folder) the current folder.
"""
import os

# The folders whose presence makes the current folder a project folder.
MARKERS = ('data', 'runs')


def checkout():
    """The repository folder this package runs from (an editable install), or None."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(here, 'setup.py')) and \
            os.path.isfile(os.path.join(here, 'train', 'cli.py')):
        return here
    return None


def project_root(cwd=None):
    """The folder the relative defaults hang from; '' for the current folder (paths then stay
    relative, as the user sees them)."""
    cwd = os.getcwd() if cwd is None else cwd
    if any(os.path.isdir(os.path.join(cwd, m)) for m in MARKERS):
        return ''
    repo = checkout()
    if repo is not None and not os.path.samefile(repo, cwd):
        return repo
    return ''


def default_path(*parts):
    """data/... or runs/... under project_root()."""
    return os.path.join(project_root(), *parts)
