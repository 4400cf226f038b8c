"""The two errors of dmrnet.data: what the packers, the verifier and the iterators raise for
bad input, so that every surface (a packer's exit status 2, training's, evaluation's) words them
the same way."""


class DataError(Exception):
    """A problem with input or packed data: names the file, what was expected and the fix."""

    def __init__(self, path, expected, fix=None):
        self.path, self.expected, self.fix = str(path), expected, fix
        msg = '%s: %s' % (self.path, expected)
        if fix:
            msg += '; fix: %s' % fix
        super().__init__(msg)


class DatasetMissingError(DataError, FileNotFoundError):
    """A packed .rec/.idx (or a source file) that is not there."""

    def __str__(self):  # OSError would otherwise format its args as "[Errno ...]"
        return self.args[0]
