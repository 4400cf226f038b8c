from dmrnet.symbols import runtime  # noqa: F401  (sets OMP threads before mxnet is imported)

# dmrnet.train: one training engine (engine.fit) and thin per-dataset entry points:
#     python train/cifar.py --dataset cifar10 --model dmrnet56 --gpus 0,1
#     python train/digits.py --save-dir runs/demo          # the CPU demo
