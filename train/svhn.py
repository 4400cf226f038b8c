"""Train on SVHN (train + extra, no augmentation) with the paper's recipe (Section 4.1;
train/recipes.py): the CIFAR recipe over 40 epochs.

    python train/svhn.py --model dmrnet56 --gpus 0,1
"""
from dmrnet.train.cli import main, make_parser


def parser():
    return make_parser(__doc__, datasets=['svhn'])


if __name__ == '__main__':
    main(parser())
