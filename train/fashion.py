"""Train on Fashion-MNIST (Zalando's 60,000 training and 10,000 test images, 28x28 grey) with
one recipe for every family (train/recipes.py), chosen on a validation split of the training
set: `--dataset fashion_val` trains on 55,000 images and scores the 5,000 held out.

    python data/fashion.py --out data/fashion       # pack once (make data-fashion)
    python train/fashion.py --model dmrnet14
    python train/fashion.py --dataset fashion_val --model resnet26 --wd 1e-4
"""
from dmrnet.train.cli import main, make_parser


def parser():
    return make_parser(__doc__, datasets=['fashion', 'fashion_val'])


if __name__ == '__main__':
    main(parser())
