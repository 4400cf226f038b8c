"""Running an experiment's runs: one training process per GPU slot (or several CPU runs with the
cores shared out), each in its run folder, stopped together with the runner."""
import logging
import os
import queue
import subprocess
import threading

from dmrnet import paper
from dmrnet.tools.experiments.collect import RUN_FILE, collect, finished, resumable
from dmrnet.tools.experiments.commands import command
from dmrnet.tools.experiments.layout import REPOSITORY
from dmrnet.train import rundir
from dmrnet.train.recipes import recipe_for
from dmrnet.utils import runtime
from dmrnet.utils.devices import parse_devices
from dmrnet.utils.files import write_json
from dmrnet.utils.process import end_with_parent

log = logging.getLogger('dmrnet.experiments')

# the training processes running now, so that an interrupted runner can stop them instead of
# leaving orphans that keep training (and writing into run folders) behind its back
_children = set()
_children_lock = threading.Lock()
_stopping = threading.Event()


def parse_gpus(text):
    """'0,1,3' or '0-3' (dmrnet.utils.devices) -> ['0', '1', '3'] or ['0', '1', '2', '3'];
    '' -> [] (CPU). One run per listed GPU at a time, so a GPU listed twice is refused: two
    runs would share it."""
    try:
        gpus = parse_devices(text)
    except ValueError:
        raise ValueError('--gpus %r: expected GPU numbers such as 0,1,2,3 or 0-3' % text) from None
    if len(set(gpus)) != len(gpus):
        raise ValueError('--gpus %r lists a GPU twice: two runs would share it' % text)
    return [str(gpu) for gpu in gpus]


def authors_gpus_per_run(datasets, gpu_count):
    """GPUs a run needs for BatchNorm to see the authors' images per device with the recipe's
    total batch (64 -> 2), when every dataset's recipe divides that way and the listed GPUs
    split into such groups; else 1 (the report notes runs whose BatchNorm batch differs)."""
    per_device = paper.AUTHORS_IMAGES_PER_DEVICE
    wanted = {recipe_for(dataset).batch_size // per_device for dataset in datasets
              if recipe_for(dataset).batch_size % per_device == 0}
    if len(wanted) == 1 and len(wanted & {1, 2, 4, 8}) == 1:
        per_run = wanted.pop()
        if gpu_count and gpu_count % per_run == 0:
            return per_run
    return 1


def group_gpus(gpus, per_run):
    """['0','1','2','3'], 2 -> ['0,1', '2,3']: the slots, each a --gpus value for one run."""
    if per_run < 1:
        raise ValueError('--gpus-per-run must be >= 1, got %d' % per_run)
    if per_run > 1 and (not gpus or len(gpus) % per_run):
        raise ValueError('--gpus-per-run %d needs a multiple of %d GPUs in --gpus, got %d'
                         % (per_run, per_run, len(gpus)))
    return [','.join(gpus[i:i + per_run]) for i in range(0, len(gpus), per_run)]


def cpu_threads(jobs):
    """OpenMP threads for each of `jobs` CPU runs at a time: the OMP_NUM_THREADS the user set
    (not the default that importing dmrnet put into this process's environment), else this
    machine's usable cores shared out (at least one each)."""
    if runtime.USER_OMP_THREADS:
        return int(runtime.USER_OMP_THREADS)
    return max(1, runtime.usable_cores() // jobs)


def stop_children(timeout=30):
    """SIGTERM every running training process, then SIGKILL what is still alive."""
    _stopping.set()
    with _children_lock:
        processes = list(_children)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def launch(run, slot, threads=None, **command_options):
    """Run one training subprocess to the end; returns its exit code. `slot` is the run's
    --gpus value (None: the CPU); `threads`, the OpenMP threads of a CPU run."""
    os.makedirs(run['run_dir'], exist_ok=True)
    write_json(os.path.join(run['run_dir'], RUN_FILE), run)
    cmd = command(run, gpu=slot, **command_options)
    env, shown = dict(os.environ), ''
    if slot is None and threads:
        env['OMP_NUM_THREADS'] = str(threads)
        shown = 'OMP_NUM_THREADS=%d ' % threads
    log.info('[%s] %s %s', 'cpu' if slot is None else 'gpu %s' % slot,
             'resume' if resumable(run) else 'start', run['name'])
    with open(os.path.join(run['run_dir'], rundir.OUTPUT), 'ab') as out:
        out.write(('$ %s%s\n' % (shown, ' '.join(cmd))).encode())
        out.flush()
        # a runner killed outright takes its trainings with it: an orphan would train on
        # unwatched, holding the folder a rerun of the runner resumes
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPOSITORY,
                                   env=env, preexec_fn=end_with_parent())
        with _children_lock:
            _children.add(process)
        try:
            returncode = process.wait()
        finally:
            with _children_lock:
                _children.discard(process)
    if _stopping.is_set():
        log.info('stopped %s (resumable: run the same command again)', run['name'])
        return returncode or 1
    if returncode != 0 or not finished(run):
        log.error('%s failed (exit code %d, summary.json %s); see %s', run['name'], returncode,
                  'present' if finished(run) else 'missing',
                  os.path.join(run['run_dir'], rundir.OUTPUT))
        return returncode or 1
    log.info('done %s', run['name'])
    return 0


def schedule(runs, gpus=None, results_dir=None, jobs=1, **command_options):
    """Run every unfinished run, one per GPU slot (or `jobs` at a time on the CPU, the cores
    shared between them). Returns the names of the runs that failed. With results_dir,
    results.jsonl there is rewritten after every finished run, so a long experiment can be
    reported on while it is still running."""
    # a stop of an earlier call in this process (tests call the runner many times) is over
    _stopping.clear()
    todo = [run for run in runs if not finished(run)]
    log.info('%d runs, %d finished, %d to run', len(runs), len(runs) - len(todo), len(todo))
    pending = queue.Queue()
    for run in todo:
        pending.put(run)
    failed = []
    lock = threading.Lock()

    def worker(slot):
        while not _stopping.is_set():
            try:
                run = pending.get_nowait()
            except queue.Empty:
                return
            returncode = launch(run, slot, threads=threads, **command_options)
            with lock:
                if returncode != 0:
                    failed.append(run['name'])
                elif results_dir:
                    collect(results_dir)

    # fewer runs left than jobs (the tail of a resumed experiment): the runs there are get
    # the cores the missing ones would have had
    jobs = max(1, min(jobs, len(todo)))
    threads = None if gpus else cpu_threads(jobs)
    if threads:
        log.info('%d run(s) at a time on the CPU, %d OpenMP thread(s) each', jobs, threads)
    workers = [threading.Thread(target=worker, args=(slot,), daemon=True)
               for slot in gpus or [None] * jobs]
    for thread in workers:
        thread.start()
    try:
        # join with a timeout: a plain join() would hold off KeyboardInterrupt / SIGTERM
        while any(thread.is_alive() for thread in workers):
            for thread in workers:
                thread.join(0.5)
    except KeyboardInterrupt:
        log.error('interrupted: stopping the running training processes')
        stop_children()
        for thread in workers:
            thread.join()
        raise
    return failed
