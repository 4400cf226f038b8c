"""python -m dmrnet.tools.bench: the benchmark (see dmrnet.tools.bench.benchmark)."""
import sys

from dmrnet.tools.bench.benchmark import main

sys.exit(main(prog='python -m dmrnet.tools.bench'))
