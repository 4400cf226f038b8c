"""Everything a training run says to its user when it cannot go on: the exception types, how a
message names a setting, MXNet's reason for a failure, and where to resume from.

The types map onto the command line's exit statuses (train/cli.py): UserError and its kinds
are bad input (2), RunStopped is a run that cannot go on (3). Python callers of fit(config)
catch the same types; each message is one line that says what was wrong and how to fix it.

A message names a setting the way its reader wrote it: the training scripts' users know flags
(--save-dir), a caller of fit(config) knows TrainConfig fields (save_dir=...). The command line
enters `command_line()`; the choice lives in a context variable, so it follows the code that
entered it and not every thread of the process.
"""
import contextlib
import contextvars


class UserError(Exception):
    """Bad input: exit status 2, one line."""


class ConfigError(UserError, ValueError):
    """A configuration that cannot be trained; the message names the field and a fix."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used (missing, unreadable, another model's)."""


class FolderInUse(CheckpointError):
    """Another live process holds the run folder."""


class RunStopped(Exception):
    """The run cannot go on (divergence, disk): exit status 3, one line."""


_on_command_line = contextvars.ContextVar('dmrnet_on_command_line', default=False)


@contextlib.contextmanager
def command_line():
    """Within it, messages name flags, as the training scripts take them; outside (the Python
    API), TrainConfig fields."""
    token = _on_command_line.set(True)
    try:
        yield
    finally:
        _on_command_line.reset(token)


def on_command_line():
    return _on_command_line.get()


# Fields whose flag is not named after them.
FLAG_NAMES = {'mean': '--rgb-mean', 'std': '--rgb-std'}


def flag(field):
    """How a message names the setting `field`: --save-dir on the command line, save_dir in
    Python."""
    if not on_command_line():
        return field
    return FLAG_NAMES.get(field, '--' + field.replace('_', '-'))


def setting(field, value, form='%s'):
    """`field` set to `value` as the user wrote it: "--save-dir runs/x" or "save_dir='runs/x'"."""
    if on_command_line():
        return '%s %s' % (flag(field), form % (value,))
    return '%s=%r' % (field, value)


def mxnet_reason(error):
    """The line of an MXNetError that says what went wrong (its text starts with a C++ stack
    that reads like a Python traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if 'Check failed' in line or 'Error' in line or 'error' in line:
            return line.split('] ', 1)[-1]
    return lines[-1] if lines else type(error).__name__


def resume_hint(epoch, folder):
    """What is kept when a run stops: the newest complete checkpoint (`epoch` of `folder`), and
    how to continue from it."""
    if epoch == 0:
        return 'no checkpoint had been written to %s yet, so there is nothing to resume' % folder
    return ('the last good checkpoint (epoch %d) is intact in %s: continue with %s'
            % (epoch, folder, setting('resume', folder)))


def interrupted(how, folder, has_checkpoint):
    """The line for a run ended by Ctrl-C or SIGTERM (`how`) that writes `folder`."""
    if has_checkpoint:
        return '%s; resume with %s' % (how, setting('resume', folder))
    return '%s before the first checkpoint; nothing to resume, start again' % how
