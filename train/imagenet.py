"""Train on ImageNet (ILSVRC-2012) with the paper's recipe (Section 4.4, Table 4;
train/recipes.py): total batch 256 (32 per GPU on 8 GPUs), lr divided by 10 every 30 epochs,
100 epochs; top-1 and top-5 error on the single 224 centre crop of the validation set.

    python train/imagenet.py --model dmrnet44_imagenet --gpus 0-7 --data-dir data/imagenet
    python tools/launch.py -n 2 -H hosts -- python train/imagenet.py --kv-store dist_sync ...
"""
from dmrnet.train.cli import main, make_parser


def parser():
    return make_parser(__doc__, datasets=['imagenet'])


if __name__ == '__main__':
    main(parser())
