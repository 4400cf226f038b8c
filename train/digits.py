"""The demo: a small DMRNet on scikit-learn's handwritten digits (real scans, no download), CPU.

    python data/digits.py --out data/digits        # pack once (make demo does it)
    python train/digits.py --data-dir data/digits --save-dir runs/demo

The recipe (train/recipes.py) is the paper's CIFAR one, shorter: 10 epochs of 1,437 images;
a bare family gets L=6 (one merge-and-run block per stage), a preset keeps its own L.
"""
from dmrnet.train.cli import main, make_parser


def parser():
    return make_parser(__doc__, datasets=['digits'])


if __name__ == '__main__':
    main(parser())
