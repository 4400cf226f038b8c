"""dmrnet.tools.experiments: the paper's experiments, run and reported.

    runner     one resumable command per experiment (python -m dmrnet.tools.experiments ...)
    report     our results beside the paper's (python -m dmrnet.tools.experiments.report ...)
    layout     where the runs and their results files live
    reference  the paper's numbers (paper-numbers.json)

Importing the package imports none of them: the report must stay free of MXNet, the runner is
not.
"""
