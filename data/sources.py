"""Where the packers' inputs come from: the official downloads, and the checksums that verify
them (and the packs).

DMRNET_NO_DOWNLOAD=1 turns any download into an error, so that tests (and offline users) can be
sure nothing touches the network.
"""
import hashlib
import logging
import os

from dmrnet.data.errors import DataError
from dmrnet.utils.files import atomic_path

log = logging.getLogger(__name__)


def file_digest(path, algorithm='md5', chunk=1 << 20):
    """Hex digest of a file read in chunks (the packs' manifests use it too, with sha1)."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def check_md5(path, md5, fix):
    got = file_digest(path)
    if got != md5:
        raise DataError(path, 'md5 %s, expected %s (corrupt or truncated download?)' % (got, md5),
                        fix)


def _remove_empty_folders(folder, root):
    """Remove `folder` and its parents up to `root` (included) while they are empty."""
    folder, root = os.path.abspath(folder), os.path.abspath(root)
    while folder == root or folder.startswith(root + os.sep):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def download(url, dest, md5, fix):
    """Fetch `url` to `dest` (atomically) and verify its md5; a verified `dest` is kept."""
    if os.environ.get('DMRNET_NO_DOWNLOAD'):
        raise DataError(dest, 'a download of %s was attempted with DMRNET_NO_DOWNLOAD set' % url,
                        fix)
    if os.path.exists(dest) and file_digest(dest) == md5:
        log.info('%s already downloaded and verified', dest)
        return dest
    import urllib.request
    from tqdm import tqdm
    log.info('downloading %s -> %s', url, dest)
    # The folders this download creates (data/<name>/, data/ itself on a first run): a failed
    # download removes them again, so that no empty pack folder looks like a started one.
    created = os.path.dirname(os.path.abspath(dest))
    while not os.path.isdir(os.path.dirname(created)):
        created = os.path.dirname(created)
    if os.path.isdir(created):
        created = None
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=60) as resp, \
                open(tmp, 'wb') as out:
            total = int(resp.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, unit='B', unit_scale=True, desc=os.path.basename(dest)) as bar:
                for block in iter(lambda: resp.read(1 << 20), b''):
                    out.write(block)
                    bar.update(len(block))
            out.flush()
            check_md5(tmp, md5, fix)
    except BaseException as e:
        if created is not None:
            _remove_empty_folders(os.path.dirname(os.path.abspath(dest)), created)
        if not isinstance(e, OSError):
            raise
        # Retrying the same command rarely helps offline: say how to bring the file in by hand.
        raise DataError(url, 'download failed (%s)' % e,
                        'fetch it on a machine with access, copy it to %s (it is verified by '
                        'md5) and run the same command again; or give the local copy with '
                        '--src' % dest) from None
    return dest
