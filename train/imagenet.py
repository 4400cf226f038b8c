"""Train on ImageNet (ILSVRC-2012) with the paper's recipe (Section 4.4, Table 4).

    python train/imagenet.py --model dmrnet44_imagenet --gpus 0-7 --data-dir data/imagenet
    python tools/launch.py -n 2 -H hosts -- python train/imagenet.py --kv-store dist_sync ...

Recipe: SGD with Nesterov momentum 0.9 (the authors'), wd 1e-4, total batch 256 (32 per GPU on
8 GPUs), lr 0.1 divided by 10 every 30 epochs, 100 epochs; top-1 and top-5 error on the single
224 centre crop of the validation set.
"""
from dmrnet.train.args import make_parser
from dmrnet.train.engine import main


def parser():
    p = make_parser(__doc__.split('\n')[0], datasets=['imagenet'])
    p.set_defaults(model='dmrnet44_imagenet', epochs=100, batch_size=256, lr=0.1, momentum=0.9,
                   wd=1e-4, optimizer='nag', lr_recipe='every30', kv_store='device',
                   log_interval=100)
    return p


if __name__ == '__main__':
    main(parser())
