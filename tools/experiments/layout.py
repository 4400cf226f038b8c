"""Where the experiments keep their runs: RUNS/EXPERIMENT/RUN/ holds one training run and
RUNS/EXPERIMENT/results.jsonl one record per finished run. The runner writes them and the report
reads them."""
import os

from dmrnet.utils.places import default_path

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# runs/ by the rule of every default folder (dmrnet.utils.places): the current folder when it is
# a project folder, else the checkout. Absolute, because the runs' processes start in the
# checkout.
RUNS_DIR = os.path.abspath(default_path('runs'))
RESULTS_FILE = 'results.jsonl'
EXPERIMENTS = ('table2', 'table3', 'table5', 'figure6', 'imagenet-compare', 'digits-compare',
               'fashion-compare')
