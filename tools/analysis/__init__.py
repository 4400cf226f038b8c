"""dmrnet.tools.analysis: what the paper derives without training, and the networks as built.

    paths   exact path-length distributions (Section 3.2, Figure 3; Figure 6's L + 3)
    flow    the merge-and-run matrix is idempotent; gradients at initialisation (Eq. 4-5)
    draw    a network as a graphviz drawing or a per-block table
    params  every preset's parameter count beside the paper's and the authors'

Each runs as python -m dmrnet.tools.analysis.NAME or python tools/analysis/NAME.py.
"""
