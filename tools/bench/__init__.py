"""dmrnet.tools.bench: how fast the networks train and run, against GluonCV and PyTorch.

    python -m dmrnet.tools.bench --model dmrnet56 --batch-size 64    (or tools/bench/benchmark.py)

    benchmark      the plan of jobs and the command line
    jobs           the job runner (each job in its own process), the GEMM peak and trace jobs
    mx_jobs        MXNet jobs: training step, exported fp32 inference, INT8
    torch_jobs     PyTorch jobs: the same DMRNet in eager mode, training and inference
    frameworks     MXNet's environment defaults; GluonCV and PyTorch side by side
    timing         timed calls, medians, peak memory
    flops          FLOPs per image, from MXNet's symbol graph and from a PyTorch module
    onednn_trace   oneDNN's verbose log: where the time goes
    summary        the report: figures per implementation, ratios, targets, the table
    formselect     branch or fused merge-and-run form, chosen by measurement and cached
    step_parts     the float32 training step taken apart: fused BatchNorm+ReLU, the update alone
    torch_dmrnet   the paper's CIFAR DMRNet in PyTorch, weights copied from ours
    data_pipeline  how fast the CIFAR training iterator feeds a training step

The graph passes that make exported models fast (merge-scale folding, oneDNN rewrites, INT8)
belong to deployment: dmrnet.symbols.deploy.
"""
