"""dmrnet.tools: the systems around the networks.

    experiments/   the paper's experiments: the resumable runner, the report beside the paper
    analysis/      exact analyses without training: path lengths, information flow, drawings,
                   parameter counts
    bench/         benchmarks: throughput against GluonCV and PyTorch, oneDNN breakdown, the
                   data pipeline, form selection
    export.py, quantize.py, launch.py   operations: deployable files, INT8, distributed jobs
"""
