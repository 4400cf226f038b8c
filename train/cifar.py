"""Train on CIFAR-10 or CIFAR-100 with the paper's recipe (Section 4.1).

    python train/cifar.py --dataset cifar10 --model dmrnet56 --gpus 0,1
    python train/cifar.py --dataset cifar100 --model dmrnet --L 30 --width 4 --gpus 0-3

Recipe (authors' train_model.py): Nesterov SGD, momentum 0.9, wd 1e-4 on all parameters,
total batch 64, lr 0.1 divided by 10 at 1/2, 3/4 and 7/8 of 400 epochs; pad-4 crop + mirror.
"""
from dmrnet.train.args import make_parser
from dmrnet.train.engine import main


def parser():
    p = make_parser(__doc__.split('\n')[0], datasets=['cifar10', 'cifar100'])
    p.set_defaults(model='dmrnet56', epochs=400, batch_size=64, lr=0.1, momentum=0.9, wd=1e-4,
                   optimizer='nag', lr_recipe='fractions', kv_store='device')
    return p


if __name__ == '__main__':
    main(parser())
