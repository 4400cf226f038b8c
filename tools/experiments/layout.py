"""Where the experiments keep their runs: RUNS/EXPERIMENT/RUN/ holds one training run and
RUNS/EXPERIMENT/results.jsonl one record per finished run. The runner writes them and the report
reads them."""
import os

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS_DIR = os.path.join(REPOSITORY, 'runs')
RESULTS_FILE = 'results.jsonl'
EXPERIMENTS = ('table2', 'table3', 'table5', 'figure6', 'imagenet-compare', 'digits-compare',
               'fashion-compare')
