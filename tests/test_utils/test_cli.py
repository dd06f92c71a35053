"""The argument groups and error handling shared by the tools' fronts."""
import argparse

import pytest

from qaclims_mm.utils.cli import (add_class_names_args, add_label_writer_args,
                                  add_split_args, check_or_error,
                                  class_names_from_args, dataset_palette,
                                  read_split_or_exit, run_or_exit)
from qaclims_mm.utils.metainfo import DEFAULT_DATASET, dataset_metainfo


def _parser():
    p = argparse.ArgumentParser()
    add_split_args(p, input_arg='--cam-dir', input_help='CAMs')
    add_class_names_args(p)
    return p


def test_class_names_default_dataset_generic_and_named():
    p = _parser()
    base = ['--cam-dir', 'c', '--split-file', 's']
    default = class_names_from_args(p.parse_args(base))
    assert list(default) == list(dataset_metainfo(DEFAULT_DATASET)['classes'])
    generic = class_names_from_args(p.parse_args(base + ['--num-classes',
                                                         '3']))
    assert list(generic) == list(dataset_metainfo(None, 3)['classes'])
    assert len(generic) == 4
    with pytest.raises(SystemExit):  # --split-file is required
        p.parse_args(['--cam-dir', 'c'])


def test_label_writer_args_defaults_and_palette():
    p = argparse.ArgumentParser()
    add_label_writer_args(p, nproc=3)
    args = p.parse_args(['--out-dir', 'o'])
    assert (args.out_dir, args.nproc, args.overwrite,
            args.dataset) == ('o', 3, False, DEFAULT_DATASET)
    assert dataset_palette(args) == dataset_metainfo(
        DEFAULT_DATASET)['palette']


def test_check_or_error_renames_and_exits_with_usage(capsys):
    p = argparse.ArgumentParser(prog='tool')

    def bad():
        raise ValueError('fg_thr must exceed bg_thr')

    with pytest.raises(SystemExit) as e:
        check_or_error(p, bad, rename={'fg_thr': '--fg-thr',
                                       'bg_thr': '--bg-thr'})
    assert e.value.code == 2
    assert 'tool: error: --fg-thr must exceed --bg-thr' in \
        capsys.readouterr().err
    check_or_error(p, lambda: None)  # passes silently


def test_run_or_exit_and_empty_split(tmp_path):
    def stage(x, y=0):
        if x < 0:
            raise OSError(f'image {x} is missing')
        return x + y

    assert run_or_exit(stage, 1, y=2) == 3
    with pytest.raises(SystemExit, match='^error: image -1 is missing$'):
        run_or_exit(stage, -1)
    split = tmp_path / 'empty.txt'
    split.write_text('\n')
    with pytest.raises(SystemExit, match=f'split file {split} lists no'):
        read_split_or_exit(str(split))
    split.write_text('a\nb\n')
    assert read_split_or_exit(str(split)) == ['a', 'b']


def test_launcher_args_export_local_rank(monkeypatch):
    from qaclims_mm.utils.cli import add_launcher_args, parse_launcher_args
    p = argparse.ArgumentParser()
    add_launcher_args(p)
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = parse_launcher_args(p, ['--local-rank', '3', '--launcher',
                                   'pytorch', '--cfg-options', 'a.b=1'])
    assert (args.local_rank, args.launcher) == (3, 'pytorch')
    assert args.cfg_options == {'a.b': 1}
    import os
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.setenv('LOCAL_RANK', '1')  # the launcher's value wins
    parse_launcher_args(p, ['--local_rank', '5'])
    assert os.environ['LOCAL_RANK'] == '1'


def test_trust_pickle_opt_in():
    from qaclims_mm.utils.cli import add_trust_pickle_arg, require_trust_pickle
    p = argparse.ArgumentParser()
    add_trust_pickle_arg(p, 'the npy files', when='import')
    (action, ) = [a for a in p._actions if a.dest == 'trust_pickle']
    assert action.help == ('import: unpickle the npy files (unpickling can '
                           'run code from a file; only for files you trust)')
    args = p.parse_args([])
    with pytest.raises(SystemExit, match=r'^cams/: official CAM files are '
                       r'pickles, .* Pass --trust-pickle'):
        require_trust_pickle(args, 'cams/', 'official CAM files are pickles')
    require_trust_pickle(p.parse_args(['--trust-pickle']), 'cams/', 'x')
