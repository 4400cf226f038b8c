"""Start a distributed MXNet job (parameter server): scheduler, servers and workers.

    python tools/launch.py -n 2 -s 1 -- python train/cifar.py --kv-store dist_sync ...
    python tools/launch.py -n 4 -s 2 -H hosts --launcher ssh -- python train/imagenet.py ...

Every process gets the DMLC_* environment (DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT,
DMLC_NUM_SERVER, DMLC_NUM_WORKER); scheduler and servers run `python -c "import mxnet"`, which
serves until the workers finish; workers run the command. Output lines are tagged with the role
and the launch order ("[worker 0]" is the first worker process started); a training's own lines
also carry its MXNet rank ("[rank 1]"), which the scheduler assigns in the order the workers
connect, so the two numbers of a worker can differ. The first worker that fails stops the job (its exit status is returned); every child
is killed on exit, on failure, on Ctrl-C/SIGTERM and after --timeout, and by the kernel when
the launcher itself is killed (dmrnet.utils.process).

local: everything on this machine, over 127.0.0.1 (tests, or several workers on one host).
ssh:   workers and servers spread round-robin over the hosts of the hostfile (one host per
       line, optional ":port" for ssh); the scheduler runs here. The command runs in the same
       directory on every host (shared filesystem, or the same checkout everywhere).
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from dmrnet.utils.process import end_with_parent


def free_port(host='127.0.0.1'):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def local_ip():
    """The address other hosts reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(('10.255.255.255', 1))
            return s.getsockname()[0]
        except OSError:
            return '127.0.0.1'


def read_hostfile(path):
    hosts = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                hosts.append(line.split()[0])
    if not hosts:
        raise ValueError('%s lists no hosts' % path)
    return hosts


def plan(args, command):
    """The processes to start: a list of (tag, host or None, env dict, argv)."""
    uri = args.root_uri or ('127.0.0.1' if args.launcher == 'local' else local_ip())
    port = args.port or free_port('127.0.0.1' if args.launcher == 'local' else '')
    base = {'DMLC_PS_ROOT_URI': uri, 'DMLC_PS_ROOT_PORT': str(port),
            'DMLC_NUM_SERVER': str(args.num_servers), 'DMLC_NUM_WORKER': str(args.num_workers)}
    for pair in args.env:
        k, _, v = pair.partition('=')
        base[k] = v
    hosts = read_hostfile(args.hostfile) if args.launcher == 'ssh' else [None]
    serve = [args.python, '-c', 'import mxnet']
    procs = [('scheduler', None, dict(base, DMLC_ROLE='scheduler'), serve)]
    for i in range(args.num_servers):
        procs.append(('server %d' % i, hosts[i % len(hosts)], dict(base, DMLC_ROLE='server'),
                      serve))
    for i in range(args.num_workers):
        procs.append(('worker %d' % i, hosts[i % len(hosts)], dict(base, DMLC_ROLE='worker'),
                      list(command)))
    if args.launcher == 'local':
        for _, _, env, _ in procs:
            # ps-lite would otherwise advertise the first non-loopback interface.
            env.setdefault('DMLC_NODE_HOST', '127.0.0.1')
    return procs


def ssh_argv(host, env, argv, cwd):
    port = None
    if ':' in host:
        host, port = host.rsplit(':', 1)
    exports = ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    remote = 'cd %s && env %s %s' % (shlex.quote(cwd), exports,
                                     ' '.join(shlex.quote(a) for a in argv))
    return (['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'BatchMode=yes'] +
            (['-p', port] if port else []) + [host, remote])


class Job:
    def __init__(self, procs, launcher, out=sys.stdout):
        self.procs, self.launcher, self.out = procs, launcher, out
        self.children = []  # (tag, Popen)
        self.lock = threading.Lock()

    def _pump(self, tag, stream):
        for line in iter(stream.readline, b''):
            with self.lock:
                self.out.write('[%s] %s' % (tag, line.decode('utf-8', 'replace')))
                self.out.flush()
        stream.close()

    def start(self):
        cwd = os.getcwd()
        for tag, host, env, argv in self.procs:
            if host is None:
                full, penv = argv, dict(os.environ, **env)
            else:
                full, penv = ssh_argv(host, env, argv, cwd), dict(os.environ)
            p = subprocess.Popen(full, env=penv, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, preexec_fn=end_with_parent())
            self.children.append((tag, p))
            threading.Thread(target=self._pump, args=(tag, p.stdout), daemon=True).start()
        workers = [t for t, _ in self.children if t.startswith('worker')]
        if len(workers) > 1:
            self._say('"[worker N]" numbers the worker processes in launch order; the "[rank R]" '
                      'in a training\'s lines is its MXNet rank, given by the scheduler as the '
                      'workers connect: the two can differ')

    def kill(self):
        for _, p in self.children:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.time() + 5
        for _, p in self.children:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                p.wait()

    def wait(self, timeout=None, grace=30):
        """Exit status of the job: 0 when every worker succeeded, else the first failure's."""
        start, orphaned = time.time(), None
        workers = [(t, p) for t, p in self.children if t.startswith('worker')]
        others = [(t, p) for t, p in self.children if not t.startswith('worker')]
        while True:
            for tag, p in self.children:
                rc = p.poll()
                if rc not in (None, 0):
                    self._say('%s exited with status %d; stopping the job' % (tag, rc))
                    return rc if rc > 0 else 128 - rc
            if all(p.poll() == 0 for _, p in workers):
                break
            if not any(p.poll() is None for _, p in others) and any(
                    p.poll() is None for _, p in workers):
                # Finalizing workers may outlive the servers by a moment; a worker still
                # running well after them has lost its parameter server.
                orphaned = orphaned or time.time()
                if time.time() - orphaned > grace:
                    self._say('scheduler and servers are gone while workers run; stopping')
                    return 1
            if timeout and time.time() - start > timeout:
                self._say('timeout after %d s; stopping the job' % timeout)
                return 124
            time.sleep(0.2)
        # Servers and scheduler leave by themselves once the workers have finalized.
        end = time.time() + grace
        while time.time() < end and any(p.poll() is None for _, p in others):
            time.sleep(0.2)
        return 0

    def _say(self, msg):
        with self.lock:
            self.out.write('[launch] %s\n' % msg)
            self.out.flush()


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0],
                                usage='%(prog)s [options] -- command ...')
    p.add_argument('-n', '--num-workers', type=int, required=True,
                   help='worker processes, each running the command')
    p.add_argument('-s', '--num-servers', type=int, default=None,
                   help='parameter servers (default: as many as workers)')
    p.add_argument('-H', '--hostfile', default=None, help='hosts, one per line (ssh mode)')
    p.add_argument('--launcher', choices=('local', 'ssh'), default=None,
                   help='default: ssh with --hostfile, local without')
    p.add_argument('--root-uri', default=None,
                   help='scheduler address workers and servers connect to (default: 127.0.0.1 '
                        'locally, this host\'s address with ssh)')
    p.add_argument('--port', type=int, default=None, help='scheduler port (default: a free one)')
    p.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                   help='extra environment for every process (repeatable)')
    p.add_argument('--python', default=sys.executable,
                   help='interpreter for scheduler and servers')
    p.add_argument('--timeout', type=float, default=None, help='stop the job after S seconds')
    p.add_argument('--dry-run', action='store_true', help='print the processes and exit')
    p.add_argument('command', nargs=argparse.REMAINDER,
                   help='the training command every worker runs, after --')
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        p.error('no command: give it after --')
    if args.num_workers < 1:
        p.error('-n must be >= 1')
    args.num_servers = args.num_workers if args.num_servers is None else args.num_servers
    if args.num_servers < 1:
        p.error('-s must be >= 1')
    args.launcher = args.launcher or ('ssh' if args.hostfile else 'local')
    if args.launcher == 'ssh' and not args.hostfile:
        p.error('--launcher ssh needs --hostfile')
    try:
        procs = plan(args, command)
    except (OSError, ValueError) as e:
        print('%s: error: %s' % (p.prog, e), file=sys.stderr)
        return 2
    if args.dry_run:
        for tag, host, env, cmd in procs:
            full = ssh_argv(host, env, cmd, os.getcwd()) if host else cmd
            envs = '' if host else ' '.join('%s=%s' % kv for kv in sorted(env.items())) + ' '
            print('%s: %s%s' % (tag, envs, ' '.join(shlex.quote(a) for a in full)))
        return 0
    job = Job(procs, args.launcher)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        job.start()
        return job.wait(args.timeout)
    except KeyboardInterrupt:
        job._say('interrupted; stopping the job')
        return 130
    finally:
        job.kill()


if __name__ == '__main__':
    sys.exit(main())
