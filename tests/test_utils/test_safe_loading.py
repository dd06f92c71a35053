"""Safe loading (issue 10, items 8-10): a crafted checkpoint whose payload
would create a marker file is refused by every loader after ``import
qaclims_mm``; real MMEngine checkpoints (train -> resume -> load) still load.

The crafted file is refused by plain ``torch.load(weights_only=True)``; it only
runs when ``builtins.getattr`` is allow-listed, as ``qaclims_mm`` used to do:
``getattr`` reaches ``eval`` through a function's ``__builtins__`` and torch's
own ``_rebuild_from_type_v2`` (which calls any function it is given).
"""
import io
import json
import os
import os.path as osp
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile

import pytest
import torch

import qaclims_mm  # noqa: F401  (applies the process-wide settings)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# --------------------------------------------------------------------------
# the crafted file
# --------------------------------------------------------------------------


def _global(module: str, name: str) -> bytes:
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def _text(text: str) -> bytes:
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


def crafted_pickle(marker: str) -> bytes:
    """Protocol-2 pickle that writes ``marker`` when ``getattr`` is allowed.

    bd = getattr(torch._utils._rebuild_tensor, '__builtins__');
    get = getattr(bd, '__getitem__'); kind = getattr(get, '__class__');
    ev = _rebuild_from_type_v2(get, kind, ('eval',), None);
    _rebuild_from_type_v2(ev, None, (code,), None).
    """
    code = f"__import__('pathlib').Path({marker!r}).write_text('pwned')"
    p = b'\x80\x02'
    p += _global('builtins', 'getattr') + b'q\x00'
    p += _global('torch._tensor', '_rebuild_from_type_v2') + b'q\x01'
    p += (b'h\x00' + _global('torch._utils', '_rebuild_tensor') +
          _text('__builtins__') + b'\x86R' + b'q\x02')
    p += b'h\x00h\x02' + _text('__getitem__') + b'\x86R' + b'q\x03'
    p += b'h\x00h\x03' + _text('__class__') + b'\x86R' + b'q\x04'
    p += b'h\x01(h\x03h\x04' + _text('eval') + b'\x85NtR' + b'q\x05'
    p += b'h\x01(h\x05N' + _text(code) + b'\x85NtR'
    return p + b'.'


def write_torch_file(path: str, pkl: bytes) -> str:
    """A ``torch.save`` zip archive whose ``data.pkl`` is ``pkl``."""
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as src, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                data = pkl
            dst.writestr(info, data)
    return path


@pytest.fixture
def crafted(tmp_path):
    """``(crafted file, marker path)``; the marker must never appear."""
    marker = str(tmp_path / 'marker')
    path = write_torch_file(str(tmp_path / 'crafted.pth'),
                            crafted_pickle(marker))
    yield path, marker
    assert not osp.exists(marker), 'the crafted payload ran'


def test_payload_runs_under_full_unpickling(tmp_path):
    """The payload is real: full unpickling creates the marker."""
    marker = str(tmp_path / 'marker')
    with pytest.raises(AttributeError):  # after the payload ran
        pickle.loads(crafted_pickle(marker))
    assert osp.exists(marker)


def test_getattr_not_allow_listed():
    allowed = torch.serialization.get_safe_globals()
    assert getattr not in allowed
    assert all(not (isinstance(g, tuple) and g[0] is getattr)
               for g in allowed)


def test_narrow_getattr_resolves_only_history_buffer_stats():
    from mmengine.logging.history_buffer import HistoryBuffer

    from qaclims_mm.utils.env import _history_buffer_getattr
    for name in ('min', 'max', 'current', 'mean'):
        assert _history_buffer_getattr(HistoryBuffer, name) is \
            getattr(HistoryBuffer, name)
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                      (torch._utils._rebuild_tensor, '__builtins__'),
                      (HistoryBuffer, '__class__'), (int, 'mean')):
        with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
            _history_buffer_getattr(obj, name)


def test_torch_load_refuses(crafted):
    path, _ = crafted
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(path)


def test_mmengine_loaders_refuse(crafted):
    """load_from, --resume and tools/test.py CHECKPOINT all read through
    ``CheckpointLoader`` (``Runner.load_checkpoint`` -> ``_load_checkpoint``),
    ``load_checkpoint`` is what make_sem_seg_labels / IRN inference call."""
    from mmengine.runner import CheckpointLoader, load_checkpoint
    from mmengine.runner.checkpoint import _load_checkpoint
    path, _ = crafted
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        _load_checkpoint(path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        load_checkpoint(torch.nn.Linear(2, 2), path, map_location='cpu')


@pytest.mark.parametrize('tool', [
    'official_cam_to_mmseg.py', 'deeplabv1_resnet101_to_mmseg.py'
])
def test_model_converters_refuse(crafted, tmp_path, tool):
    path, _ = crafted
    out = str(tmp_path / 'out.pth')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'model_converters', tool),
         path, out], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'refused by the safe loader' in proc.stderr
    assert path in proc.stderr
    assert not osp.exists(out)


def test_clip_loaders_refuse_without_fallback(crafted):
    from qaclims_mm.models.clip.loaders import (load_openai_weights,
                                                load_ovseg_checkpoint)
    path, _ = crafted
    for loader in (load_openai_weights, load_ovseg_checkpoint):
        with pytest.raises(pickle.UnpicklingError,
                           match='refused by the safe loader') as info:
            loader(None, path)  # refused before the model is touched
        assert path in str(info.value)


class _Payload:
    """Unpickles into a call that creates ``marker`` (full unpickling only)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({self.marker!r})"
                       ".write_text('pwned')", ))


def test_clip_loader_never_falls_back_to_full_unpickling(tmp_path):
    """A file that only full unpickling reads is refused, naming it; the
    old loader retried with ``weights_only=False`` and ran its payload."""
    from qaclims_mm.models.clip.loaders import load_ovseg_checkpoint
    marker = str(tmp_path / 'marker')
    path = str(tmp_path / 'needs_pickle.pth')
    torch.save({'model': {'x': _Payload(marker)}}, path)
    with pytest.raises(pickle.UnpicklingError, match='needs_pickle.pth'):
        load_ovseg_checkpoint(None, path)
    assert not osp.exists(marker)


def test_open_clip_text_encoder_refuses(crafted, tmp_path):
    pytest.importorskip('open_clip')
    from qaclims_mm.qape.text_cache import load_text_encoder
    path, _ = crafted
    cfg = {'embed_dim': 16,
           'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 32,
                          'head_width': 16, 'patch_size': 16},
           'text_cfg': {'context_length': 77, 'vocab_size': 49408,
                        'width': 32, 'heads': 2, 'layers': 1}}
    folder = tmp_path / 'clip'
    folder.mkdir()
    with open(folder / 'open_clip_config.json', 'w') as f:
        json.dump({'model_cfg': cfg}, f)
    os.link(path, folder / 'open_clip_pytorch_model.bin')
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        load_text_encoder(f'local-dir:{folder}')


def test_transformers_bin_refuses(crafted, tmp_path):
    pytest.importorskip('transformers')
    from qaclims_mm.qape.engines.blip import load_blip_vqa
    from qaclims_mm.testing import build_tiny_blip_vqa
    path, _ = crafted
    folder = build_tiny_blip_vqa(str(tmp_path / 'blip'), image_size=32,
                                 hidden_size=32, vision_layers=1,
                                 text_layers=1)
    for name in os.listdir(folder):
        if name.endswith('.safetensors'):
            os.remove(osp.join(folder, name))
    os.link(path, osp.join(folder, 'pytorch_model.bin'))
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        load_blip_vqa(folder, torch.device('cpu'), torch.float32)


# --------------------------------------------------------------------------
# real MMEngine checkpoints: train -> resume -> load
# --------------------------------------------------------------------------


def _runner(work_dir: str, max_iters: int, **kwargs):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader, TensorDataset

    class ToyModel(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, labels, mode='tensor'):
            pred = self.linear(inputs).squeeze(1)
            if mode == 'loss':
                return {'loss': ((pred - labels)**2).mean()}
            return pred

    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, generator=g)
    data = TensorDataset(x, x.sum(1))
    loader = DataLoader(
        data, batch_size=4, shuffle=False,
        collate_fn=lambda b: dict(inputs=torch.stack([i for i, _ in b]),
                                  labels=torch.stack([t for _, t in b])))
    torch.manual_seed(0)
    return Runner(
        model=ToyModel(), work_dir=work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine', **kwargs)


def _getattr_calls(ckpt: str) -> list:
    """``(class name, attribute)`` of every ``getattr`` the pickle calls."""
    with zipfile.ZipFile(ckpt) as z:
        name = next(n for n in z.namelist() if n.endswith('/data.pkl'))
        ops = [(op.name, arg) for op, arg, _ in
               pickletools.genops(z.read(name))
               if op.name not in ('BINPUT', 'LONG_BINPUT', 'MEMOIZE')]
        memo = {}
        raw = list(pickletools.genops(z.read(name)))
    for (op, arg, _), (nxt, narg, _) in zip(raw, raw[1:]):
        if op.name == 'GLOBAL' and nxt.name in ('BINPUT', 'LONG_BINPUT'):
            memo[narg] = arg

    def resolve(op_arg):
        op, arg = op_arg
        if op == 'GLOBAL':
            return arg
        return memo.get(arg, '') if op in ('BINGET', 'LONG_BINGET') else ''

    return [(resolve(owner).split(' ')[-1], attr[1])
            for fn, owner, attr in zip(ops, ops[1:], ops[2:])
            if resolve(fn).endswith(' getattr')]


def _scalars(work_dir: str) -> list:
    rows = []
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return sorted(rows, key=lambda r: r['step'])


@pytest.fixture
def own_default_scope():
    """Drop the default scopes the runners create, so later tests keep
    theirs (a Runner makes its scope the current one process-wide)."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


def test_real_mmengine_checkpoints_train_resume_load(tmp_path, crafted,
                                                     own_default_scope):
    from mmengine.runner import load_checkpoint
    work = str(tmp_path / 'work')
    runner = _runner(work, max_iters=4)
    runner.train()
    ckpt = osp.join(work, 'iter_4.pth')
    # the checkpoint needs the narrow getattr (HistoryBuffer statistics)
    assert _getattr_calls(ckpt) == [('HistoryBuffer', n)
                                    for n in ('min', 'max', 'current', 'mean')]
    saved = torch.load(ckpt)  # weights_only=True (torch default)
    hub = saved['message_hub']
    assert hub['log_scalars']['train/loss'].data[0].size == 4

    resumed = _runner(work, max_iters=6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    steps = [r['step'] for r in _scalars(work) if 'loss' in r]
    assert steps.count(5) == 1 and steps.count(6) == 1
    # the restored history holds the 4 losses logged before the resume
    loss_hist = resumed.message_hub.get_scalar('train/loss').data[0]
    assert loss_hist.size == 6

    model = _runner(str(tmp_path / 'test'), max_iters=1).model
    load_checkpoint(model, osp.join(work, 'iter_6.pth'), map_location='cpu',
                    strict=True)
    final = torch.load(osp.join(work, 'iter_6.pth'))['state_dict']
    assert torch.equal(model.linear.weight, final['linear.weight'])
    # the same runner code path refuses the crafted file
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        resumed.load_checkpoint(crafted[0])


# --------------------------------------------------------------------------
# TorchScript archives (OpenAI's CLIP release): tensors only, no TorchScript
# --------------------------------------------------------------------------


class _Block(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(8)
        self.attn = torch.nn.MultiheadAttention(8, 2)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                       torch.nn.Linear(16, 8))

    def forward(self, x):
        y = self.ln_1(x)
        return x + self.attn(y, y, y, need_weights=False)[0] + self.mlp(x)


class _Tower(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 4, 4, bias=False)
        self.class_embedding = torch.nn.Parameter(torch.randn(8))
        self.resblocks = torch.nn.Sequential(_Block(), _Block())
        self.register_buffer('stat', torch.arange(3))

    def forward(self, x):
        t = self.conv1(x).flatten(2).permute(2, 0, 1) + self.class_embedding
        return self.resblocks(t)


class _Outer(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.visual = _Tower()

    def forward(self, x):
        return self.visual(x)


@pytest.mark.parametrize('mode', ['trace', 'script'])
def test_torchscript_tensors_equal_jit_state_dict(tmp_path, mode):
    import warnings

    from qaclims_mm.utils.safe_load import load_torchscript_tensors
    torch.manual_seed(0)
    model = _Outer().eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scripted = (torch.jit.trace(model, torch.randn(1, 3, 8, 8))
                    if mode == 'trace' else torch.jit.script(model))
    path = str(tmp_path / 'm.pt')
    torch.jit.save(scripted, path)
    ref = model.state_dict()
    got = load_torchscript_tensors(path)
    assert sorted(got) == sorted(ref)
    for key, value in ref.items():
        assert got[key].dtype == value.dtype
        assert torch.equal(got[key], value), key


def test_torchscript_reader_refuses_other_globals(tmp_path):
    from qaclims_mm.utils.safe_load import load_torchscript_tensors
    marker = str(tmp_path / 'marker')
    path = str(tmp_path / 'fake.pt')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('fake/data.pkl', pickle.dumps(_Payload(marker),
                                                 protocol=2))
        z.writestr('fake/constants.pkl', pickle.dumps(()))
    with pytest.raises(pickle.UnpicklingError,
                       match=r'fake\.pt: unsupported global .*\.eval'):
        load_torchscript_tensors(path)
    assert not osp.exists(marker)
    with pytest.raises(ValueError, match='not a TorchScript archive'):
        load_torchscript_tensors(write_torch_file(
            str(tmp_path / 'plain.pth'), pickle.dumps({}, protocol=2)))


def test_text_encoder_reads_openai_torchscript(tmp_path):
    """OpenAI's ``ViT-L-14.pt`` is a TorchScript archive: the text encoder
    reads its tensors (open_clip's ``torch.load(weights_only=True)`` refuses
    TorchScript, and ``torch.jit.load`` would run it)."""
    import warnings

    import open_clip
    from open_clip.model import CLIP

    from qaclims_mm.qape.text_cache import load_text_encoder
    cfg = {'embed_dim': 16,
           'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 32,
                          'head_width': 16, 'patch_size': 16},
           'text_cfg': {'context_length': 77, 'vocab_size': 49408,
                        'width': 32, 'heads': 2, 'layers': 1}}
    cfg_path = tmp_path / 'qaclims-tiny-jit.json'
    cfg_path.write_text(json.dumps(cfg))
    open_clip.add_model_config(str(cfg_path))
    torch.manual_seed(0)
    model = CLIP(**cfg).eval()
    text = open_clip.get_tokenizer('qaclims-tiny-jit')(['a photo of a cat.'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(model, (torch.randn(1, 3, 32, 32), text),
                                 check_trace=False)
    path = str(tmp_path / 'ViT-tiny.pt')
    torch.jit.save(traced, path)
    loaded, tokenizer = load_text_encoder('qaclims-tiny-jit', pretrained=path)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_text(tokenizer(
            ['a photo of a cat.'])), model.encode_text(text))
