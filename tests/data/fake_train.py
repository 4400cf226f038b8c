"""A stand-in for train/<dataset>.py following docs/CONTRACTS.md: it parses the contract's
options (and --resume, --max-val-batches, --no-progress of the real engine), writes DIR/log.jsonl (one line per epoch) and DIR/summary.json, and records its argv.
FAKE_TRAIN_FAIL=<substring of the save dir> makes matching runs exit with code 3;
FAKE_TRAIN_SLEEP=<seconds> writes DIR/pid and sleeps before writing anything else. DIR/span.json
records when it ran and the OpenMP threads it was given."""
import argparse
import json
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument('--model', required=True)
p.add_argument('--L', type=int)
p.add_argument('--width', type=int)
p.add_argument('--blocks', type=int)
p.add_argument('--dataset')
p.add_argument('--epochs', type=int, required=True)
p.add_argument('--save-dir', required=True)
p.add_argument('--seed', type=int, required=True)
p.add_argument('--gpus')
p.add_argument('--data-dir')
p.add_argument('--max-batches', type=int)
p.add_argument('--max-val-batches', type=int)
p.add_argument('--no-progress', action='store_true')
p.add_argument('--resume')
a = p.parse_args()
if os.environ.get('FAKE_TRAIN_FAIL') and os.environ['FAKE_TRAIN_FAIL'] in a.save_dir:
    sys.exit(3)
os.makedirs(a.save_dir, exist_ok=True)
started = time.time()
if os.environ.get('FAKE_TRAIN_SLEEP'):   # a long run, for the interruption test
    with open(os.path.join(a.save_dir, 'pid'), 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(float(os.environ['FAKE_TRAIN_SLEEP']))
err = 10.0 + a.seed + len(a.model) / 10.0
with open(os.path.join(a.save_dir, 'log.jsonl'), 'w') as f:
    for e in range(1, a.epochs + 1):
        f.write(json.dumps(dict(epoch=e, lr=0.1, train_loss=1.0 / e, train_error=20.0 / e,
                                test_error=err + 1.0 / e, seconds=0.1, images_per_sec=1.0)) + '\n')
with open(os.path.join(a.save_dir, 'argv.json'), 'w') as f:
    json.dump(sys.argv[1:], f)
with open(os.path.join(a.save_dir, 'summary.json'), 'w') as f:
    json.dump(dict(model=a.model, args=vars(a), params=1000 + a.seed, epochs=a.epochs,
                   final_test_error=err + 1.0 / a.epochs, best_test_error=err,
                   final_train_loss=1.0 / a.epochs), f)
with open(os.path.join(a.save_dir, 'span.json'), 'w') as f:
    json.dump(dict(start=started, end=time.time(), omp=os.environ.get('OMP_NUM_THREADS')), f)
