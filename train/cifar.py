"""Train on CIFAR-10 or CIFAR-100 with the paper's recipe (Section 4.1; train/recipes.py):
pad-4 crop + mirror, 400 epochs, total batch 64.

    python train/cifar.py --dataset cifar10 --model dmrnet56 --gpus 0,1
    python train/cifar.py --dataset cifar100 --model dmrnet --L 30 --width 4 --gpus 0-3
"""
from dmrnet.train.cli import main, make_parser


def parser():
    return make_parser(__doc__, datasets=['cifar10', 'cifar100'])


if __name__ == '__main__':
    main(parser())
