"""Atomic writes give files the permissions of a plain ``open``."""
import os
import stat

import pytest

from qaclims_mm.utils.io import atomic_write_bytes, atomic_write_text


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_atomic_write_applies_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        text_path = tmp_path / 'a.txt'
        bytes_path = tmp_path / 'b.bin'
        atomic_write_text(str(text_path), 'x')
        atomic_write_bytes(str(bytes_path), b'x')
        plain = tmp_path / 'plain.txt'
        plain.write_text('x')
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for path in (text_path, bytes_path, plain):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    # no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'a.txt', 'b.bin', 'plain.txt'
    ]
