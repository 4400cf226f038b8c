"""python -m dmrnet.tools.experiments EXPERIMENT ...: the experiment runner (runner.py)."""
import sys

from dmrnet.tools.experiments.runner import main

sys.exit(main())
