"""Train on SVHN (train + extra, no augmentation) with the paper's recipe (Section 4.1).

    python train/svhn.py --model dmrnet56 --gpus 0,1

Recipe: as CIFAR (Nesterov SGD, wd 1e-4 on all parameters, total batch 64, lr 0.1 / 10 at 1/2,
3/4, 7/8) over 40 epochs.
"""
from dmrnet.train.args import make_parser
from dmrnet.train.engine import main


def parser():
    p = make_parser(__doc__.split('\n')[0], datasets=['svhn'])
    p.set_defaults(model='dmrnet56', epochs=40, batch_size=64, lr=0.1, momentum=0.9, wd=1e-4,
                   optimizer='nag', lr_recipe='fractions', kv_store='device')
    return p


if __name__ == '__main__':
    main(parser())
