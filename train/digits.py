"""The demo: a small DMRNet on scikit-learn's handwritten digits (real scans, no download), CPU.

    python data/digits.py --out data/digits        # pack once (make demo does it)
    python train/digits.py --data-dir data/digits --save-dir runs/demo

The recipe is the paper's CIFAR one scaled down: Nesterov SGD, wd 1e-4 on all parameters,
lr 0.1 divided by 10 at 1/2, 3/4 and 7/8 of training; DMRNet with L=6 (one merge-and-run block
per stage), 10 epochs of 1,437 images, batch 64.
"""
from dmrnet.train.args import make_parser
from dmrnet.train.engine import main


def parser():
    p = make_parser(__doc__.split('\n')[0], datasets=['digits'])
    # L=6 completes the bare family only; a preset (--model resnet26) keeps its own L.
    p.set_defaults(model='dmrnet', family_defaults={'L': 6}, epochs=10, batch_size=64, lr=0.1,
                   kv_store='device', lr_recipe='fractions', log_interval=0, data_dir='data/digits')
    return p


if __name__ == '__main__':
    main(parser())
