"""The tests' C helpers: the stand-in libcuda.so.1 (tests/standin_libcuda.c) and small shared
libraries, compiled at test time."""
import os
import shutil
import subprocess

import pytest

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'standin_libcuda.c')


def _compiler():
    compiler = shutil.which(os.environ.get('CC', 'cc')) or shutil.which('gcc')
    if compiler is None:
        pytest.skip('no C compiler (cc or gcc) to build the test libraries')
    return compiler


def compile_c(source, target, soname=None, link=()):
    """A shared library at `target` from C `source` (text); `link`: libraries it needs, by path
    (recorded by soname, with no search path, as libmxnet.so records CUDA's)."""
    target = str(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    source_file = target + '.c'
    with open(source_file, 'w') as f:
        f.write(source + '\n')
    command = [_compiler(), '-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', target,
               source_file]
    if soname:
        command.append('-Wl,-soname,' + soname)
    command += list(link)
    subprocess.run(command, check=True)
    return target


def compile_standin(folder):
    """folder/libcuda.so.1, the stand-in driver."""
    with open(SOURCE) as f:
        return compile_c(f.read(), os.path.join(folder, 'libcuda.so.1'), soname='libcuda.so.1')
