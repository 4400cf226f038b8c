"""How fast the CIFAR training iterator (pad, random crop, mirror, normalisation) feeds batches,
and how that compares with what a training step consumes.

    python -m dmrnet.tools.bench.data_pipeline [--images 10000] [--batches 150] [--threads N]
        [--model dmrnet56] [--model-batches 6] [--no-model] [--data-dir DIR] [--json]

Without --data-dir it packs random CIFAR-format images (PNG, as data/cifar.py does) into a
temporary folder. The model measurement times training steps (dmrnet.train.step: forward,
backward and the Trainer's update) on random data; the first step, which includes
initialisation, is not counted.
"""
import argparse
import json
import logging
import os
import shutil
import tempfile
import time

from dmrnet.data import get_train_iter, png, records  # first: OMP threads before mxnet loads
import mxnet as mx
import numpy as np

from dmrnet.tools.bench.timing import time_calls


def make_cifar_pack(out, images, seed=0):
    """`images` random 32x32 RGB images with CIFAR-10 labels as cifar10_train."""
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 256, size=(images, 32, 32, 3)).astype(np.uint8)
    records.write_records(out, 'cifar10_train',
                          ((i % 10, png.encode(im)) for i, im in enumerate(x)), total=images)


def bench_iterator(data_dir, batch_size, batches, threads, warmup=5):
    it = get_train_iter('cifar10', data_dir, batch_size, epoch=0, seed=0, num_threads=threads)
    done, start = 0, None
    while done < batches + warmup:
        try:
            b = it.next()
        except StopIteration:
            it.reset()
            continue
        b.data[0].wait_to_read()
        done += 1
        if done == warmup:
            start = time.time()
    seconds = time.time() - start
    return batches * batch_size / seconds


def bench_model(name, batch_size, batches):
    """Images/s of `batches` training steps of model `name` on the CPU."""
    from dmrnet.symbols import get_model
    from dmrnet.train.step import synthetic_step
    net = get_model(name)
    net.initialize(ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    step = synthetic_step(net, mx.cpu(), (batch_size, 3, 32, 32), optimizer='nag',
                          opt_params={'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-4})
    return batches * batch_size / sum(time_calls(step, 1, batches))


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--data-dir', help='folder holding cifar10_train.rec/.idx (default: '
                   'generate random CIFAR-format data)')
    p.add_argument('--images', type=int, default=10000, help='images to generate')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--batches', type=int, default=150, help='batches to time')
    p.add_argument('--threads', type=int, default=None, help='decoding threads '
                   '(default: usable cores)')
    p.add_argument('--model', default='dmrnet56', help='model whose training step to time')
    p.add_argument('--model-batches', type=int, default=6)
    p.add_argument('--no-model', action='store_true', help='time the iterator only')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO,
                        format='%(asctime)s %(levelname)s %(message)s')
    tmp = None
    try:
        data_dir = args.data_dir
        if data_dir is None:
            tmp = data_dir = tempfile.mkdtemp(prefix='bench_data_')
            make_cifar_pack(data_dir, args.images)
        result = {'iterator': 'cifar10 train (pad 4, random crop, mirror, normalise)',
                  'batch_size': args.batch_size, 'batches': args.batches,
                  'threads': args.threads, 'omp_threads': int(os.environ['OMP_NUM_THREADS']),
                  'iterator_images_per_sec': round(bench_iterator(
                      data_dir, args.batch_size, args.batches, args.threads), 1)}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_model:
        result['model'] = args.model
        result['model_images_per_sec'] = round(bench_model(args.model, args.batch_size,
                                                           args.model_batches), 1)
        result['ratio'] = round(result['iterator_images_per_sec']
                                / result['model_images_per_sec'], 1)
    if args.json:
        print(json.dumps(result))
    else:
        line = 'iterator: %.0f images/s' % result['iterator_images_per_sec']
        if 'ratio' in result:
            line += '; %s training step: %.0f images/s; ratio %.1fx' % (
                args.model, result['model_images_per_sec'], result['ratio'])
        print(line)
    return result


if __name__ == '__main__':
    main()
