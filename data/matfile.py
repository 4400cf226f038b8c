"""Streaming the image array of a MATLAB v5 .mat file (as SVHN ships) chunk by chunk.

scipy.io.loadmat would hold the whole array in memory: 1.6 GB for SVHN's extra_32x32.mat. A
HxWxCxN array is stored column-major, so each image is one contiguous run of H*W*C bytes; the
variable is read through a streaming zlib decompressor (or straight from the file when stored
uncompressed) and handed out N images at a time.
"""
import struct
import zlib

import numpy as np

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
MX_UINT8_CLASS = 9


class FormatError(ValueError):
    pass


class _Stream:
    """Byte reader over a raw file region or a zlib-compressed one."""

    def __init__(self, f, nbytes, compressed, block=1 << 20):
        self.f, self.left, self.block = f, nbytes, block
        self.z = zlib.decompressobj() if compressed else None
        self.buf = b''

    def read(self, n):
        parts, have = [self.buf], len(self.buf)
        while have < n:
            if self.z is not None and self.z.unconsumed_tail:
                more = self.z.decompress(self.z.unconsumed_tail, max(n - have, self.block))
            elif self.left > 0:
                raw = self.f.read(min(self.block, self.left))
                if not raw:
                    raise FormatError('file ends early (truncated)')
                self.left -= len(raw)
                more = raw if self.z is None else self.z.decompress(raw,
                                                                     max(n - have, self.block))
            else:
                more = self.z.flush() if self.z is not None else b''
                if not more:
                    raise FormatError('variable ends early (truncated)')
            parts.append(more)
            have += len(more)
        data = b''.join(parts)
        self.buf = data[n:]
        return data[:n]


def _tag(read, endian):
    head = read(8)
    first, second = struct.unpack(endian + 'II', head)
    if first >> 16:   # "small data element": type and size in 4 bytes, data in the other 4
        return first & 0xFFFF, first >> 16, head[4:4 + (first >> 16)]
    return first, second, None


def _padded(read, nbytes):
    data = read(nbytes)
    read((-nbytes) % 8)
    return data


def iter_uint8_array(path, name, chunk):
    """Yield uint8 arrays of shape (n <= chunk, d1, d2, ...) along the last axis of variable
    `name` (a d1 x d2 x ... x N uint8 array), in order. Raises FormatError if the file is not
    MATLAB v5 or the variable is missing, of another type, or truncated."""
    with open(path, 'rb') as f:
        header = f.read(128)
        if len(header) < 128 or header[126:128] not in (b'IM', b'MI'):
            raise FormatError('not a MATLAB v5 .mat file')
        endian = '<' if header[126:128] == b'IM' else '>'
        while True:
            tag = f.read(8)
            if len(tag) < 8:
                raise FormatError('no variable %r' % name)
            mtype, nbytes = struct.unpack(endian + 'II', tag)
            start = f.tell()
            if mtype not in (MI_MATRIX, MI_COMPRESSED):
                f.seek(start + nbytes + (-nbytes) % 8)
                continue
            stream = _Stream(f, nbytes, compressed=mtype == MI_COMPRESSED)
            read = stream.read
            if mtype == MI_COMPRESSED:
                inner, _, _ = _tag(read, endian)
                if inner != MI_MATRIX:
                    raise FormatError('unexpected element type %d' % inner)
            _, n, small = _tag(read, endian)                       # array flags
            flags = small if small is not None else _padded(read, n)
            cls = struct.unpack(endian + 'I', flags[:4])[0] & 0xFF
            _, n, small = _tag(read, endian)                       # dimensions
            dims = struct.unpack(endian + '%di' % (n // 4),
                                 small if small is not None else _padded(read, n))
            _, n, small = _tag(read, endian)                       # name
            var = (small if small is not None else _padded(read, n)).decode('latin-1')
            if var != name:
                f.seek(start + nbytes + (0 if mtype == MI_COMPRESSED else (-nbytes) % 8))
                continue
            dtype, n, small = _tag(read, endian)                   # real part
            if cls != MX_UINT8_CLASS or dtype != MI_UINT8 or small is not None:
                raise FormatError('%s is not stored as uint8' % name)
            shape = tuple(dims[:-1])
            per = int(np.prod(shape))
            if n != per * dims[-1]:
                raise FormatError('%s: %d bytes for shape %s' % (name, n, dims))
            for first in range(0, dims[-1], chunk):
                k = min(chunk, dims[-1] - first)
                flat = np.frombuffer(read(k * per), dtype=np.uint8)
                # Column-major d1 x d2 x ... per image -> C order (k, d1, d2, ...).
                yield flat.reshape((k,) + shape[::-1]).transpose(
                    (0,) + tuple(range(len(shape), 0, -1)))
            return
