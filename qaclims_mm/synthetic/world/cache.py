"""The cache of the synthetic world's models (keyed by generator version and
seed).

Layout (``<cache_root>/world-v<GENERATOR_VERSION>-seed<seed>/``)::

    world.json      generator version, seed, templates, held-out metrics and
                    the sha256 of every model file (written last: a folder
                    without it is incomplete)
    vqa/            the world VQA, a Hugging Face BLIP folder (:mod:`.vqa`)
    clip/           the world CLIP (:mod:`.clip`, when available)
    worlds/train/   the pretraining world (seed 1000 + seed, with its side
                    file)
    worlds/eval/    the held-out world (seed 2000 + seed)

A folder is built in a ``.partial-<pid>`` sibling and renamed into place when
complete, so a reader never sees half a cache. :func:`build_world_models`
reuses a complete, verified folder and rebuilds (with a warning) one whose
files are missing or whose checksums do not match. :func:`load_world_models`
only reads; it refuses a missing, incomplete, corrupt or other-version cache
with the command that builds it.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

from ...utils.io import atomic_write_text
from ..describe import DESCRIPTIONS_FILE
from ..render import GENERATOR_VERSION

__all__ = [
    'DEFAULT_CACHE_ROOT', 'WORLD_SIZES', 'world_dir_name', 'build_command',
    'build_world_models', 'load_world_models', 'check_world_models',
    'WorldModelsError'
]

#: Where the tool and the pipeline stage keep the models by default.
DEFAULT_CACHE_ROOT = 'data/pretrained/synthetic'

#: Sizes of the generated worlds (``make_synthetic_voc`` arguments). The
#: long sides span the ``test`` and ``demo`` presets of the pipeline data.
WORLD_SIZES: Dict[str, Dict[str, int]] = {
    'train': dict(num_train=400, num_val=1, num_aug=0, min_long=96,
                  max_long=224),
    'eval': dict(num_train=100, num_val=1, num_aug=0, min_long=96,
                 max_long=224),
}
#: Named sizes of the world models (:func:`preset_kwargs`): ``'full'`` is
#: the tool's (the main job's models); ``'test'`` a small world and short
#: schedules that make the pipeline's tests run, not good models.
WORLD_PRESETS = ('full', 'test')


def preset_kwargs(preset: str) -> dict:
    """``build_world_models`` keyword arguments of a named preset.

    Args:
        preset (str): One of :data:`WORLD_PRESETS`.

    Returns:
        dict: ``world_sizes``, ``vqa_cfg`` and ``clip_kwargs`` (empty for
        ``'full'``: the defaults).

    Raises:
        KeyError: an unknown preset (the message lists the known ones).
    """
    if preset == 'full':
        return {}
    if preset == 'test':  # the sizes the world-model tests use
        from .vqa import WorldVQAConfig
        return dict(
            world_sizes={
                'train': dict(num_train=80, num_val=1, num_aug=0,
                              min_long=64, max_long=96),
                'eval': dict(num_train=40, num_val=1, num_aug=0,
                             min_long=64, max_long=96)},
            vqa_cfg=WorldVQAConfig(image_size=32, vision_layers=2,
                                   epochs=55, warmup_steps=30),
            clip_kwargs=dict(steps=240, tune_steps=100))
    raise KeyError(f'unknown world-model preset {preset!r}; expected one '
                   f'of {list(WORLD_PRESETS)}')


#: Seed offsets of the worlds: disjoint from the pipeline data's seeds.
WORLD_SEED_OFFSETS = {'train': 1000, 'eval': 2000}

_MANIFEST = 'world.json'
_MODEL_DIRS = ('vqa', 'clip')


class WorldModelsError(RuntimeError):
    """The world models are missing, incomplete, corrupt or outdated."""


def world_dir_name(seed: int) -> str:
    """``world-v<GENERATOR_VERSION>-seed<seed>``."""
    return f'world-v{GENERATOR_VERSION}-seed{int(seed)}'


def build_command(cache_root: str, seed: int) -> str:
    """The command that builds the world models of ``seed`` in
    ``cache_root``."""
    return (f'python tools/synthetic/train_world_models.py --out {cache_root}'
            f' --seed {int(seed)}')


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _model_files(folder: str) -> Dict[str, str]:
    """``relative path -> sha256`` of every file under the model folders."""
    out = {}
    for sub in _MODEL_DIRS:
        root = osp.join(folder, sub)
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = osp.join(dirpath, name)
                out[osp.relpath(path, folder)] = _sha256(path)
    return out


def check_world_models(path: str, seed: Optional[int] = None,
                       command: Optional[str] = None) -> dict:
    """Verify a world-model folder; return its ``world.json``.

    Args:
        path (str): A ``world-v<version>-seed<seed>`` folder.
        seed (int, optional): The expected seed.
        command (str, optional): The build command to name in errors
            (default: built from ``path``'s parent and seed).

    Returns:
        dict: The manifest (``generator_version``, ``seed``, ``metrics``,
        ``files``, ...).

    Raises:
        WorldModelsError: When the folder or its manifest is missing, the
            manifest names another generator version or seed, or a listed
            file is missing or has another checksum. The message names the
            folder and the command that (re)builds the models.
    """
    if command is None:
        command = build_command(osp.dirname(osp.abspath(path)),
                                0 if seed is None else seed) + ' --force'
    manifest_path = osp.join(path, _MANIFEST)
    if not osp.isfile(manifest_path):
        what = ('is incomplete (no world.json)'
                if osp.isdir(path) else 'does not exist')
        raise WorldModelsError(
            f'the synthetic world models at {path} {what}; build them with: '
            f'{command}')
    try:
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
        files = dict(manifest['files'])
        version = manifest['generator_version']
    except (ValueError, KeyError, TypeError) as e:
        raise WorldModelsError(
            f'{manifest_path} is not a world-model manifest ({e}); rebuild '
            f'with: {command}') from e
    if version != GENERATOR_VERSION:
        raise WorldModelsError(
            f'the world models at {path} were trained on synthetic generator '
            f'version {version}, but this code draws version '
            f'{GENERATOR_VERSION}; build matching ones with: {command}')
    if seed is not None and manifest.get('seed') != seed:
        raise WorldModelsError(
            f'the world models at {path} are of seed {manifest.get("seed")},'
            f' not {seed}; build them with: {command}')
    problems: List[str] = []
    for rel, digest in sorted(files.items()):
        full = osp.join(path, rel)
        if not osp.isfile(full):
            problems.append(f'{rel} is missing')
        elif _sha256(full) != digest:
            problems.append(f'{rel} has another checksum')
    if not any(rel.startswith('vqa' + os.sep) for rel in files):
        problems.append('no vqa model is listed')
    if problems:
        raise WorldModelsError(
            f'the world models at {path} are corrupt ({"; ".join(problems)});'
            f' rebuild them with: {command}')
    return manifest


def _paths(folder: str, manifest: dict) -> Dict[str, object]:
    clip = osp.join(folder, 'clip')
    return dict(
        root=folder,
        vqa=osp.join(folder, 'vqa'),
        clip=clip if manifest.get('clip') is not None else None,
        manifest=osp.join(folder, _MANIFEST),
        vqa_image_size=manifest.get('vqa', {}).get('image_size'),
        metrics=manifest.get('metrics', {}),
        generator_version=manifest['generator_version'],
        seed=manifest['seed'])


def load_world_models(cache_root: str = DEFAULT_CACHE_ROOT,
                      seed: int = 0) -> Dict[str, object]:
    """Paths of the verified world models of ``seed`` (never trains).

    Args:
        cache_root (str): The cache folder. Defaults to
            :data:`DEFAULT_CACHE_ROOT`.
        seed (int): The world seed. Defaults to 0.

    Returns:
        dict: ``root``, ``vqa`` (HF folder), ``clip`` (folder, or None when
        the cache was built without CLIP), ``manifest``, ``vqa_image_size``
        (the VQA's native input size: pass it as ``--image-size``),
        ``metrics`` (held-out), ``generator_version``, ``seed``.

    Raises:
        WorldModelsError: When they are missing, incomplete, corrupt or of
            another generator version; the message holds the command that
            builds them.
    """
    folder = osp.join(cache_root, world_dir_name(seed))
    command = build_command(cache_root, seed)
    if not osp.isdir(folder):
        others = sorted(
            d for d in (os.listdir(cache_root) if osp.isdir(cache_root)
                        else []) if d.startswith('world-'))
        found = (f' (the cache holds {others}, of other generator versions '
                 f'or seeds)' if others else '')
        raise WorldModelsError(
            f'no synthetic world models for generator version '
            f'{GENERATOR_VERSION} and seed {seed} in {cache_root}{found}; '
            f'build them with: {command}')
    manifest = check_world_models(folder, seed, command + ' --force')
    return _paths(folder, manifest)


def _make_worlds(folder: str, seed: int, progress: bool,
                 sizes: Dict[str, Dict[str, int]]) -> Dict[str, str]:
    from ..writer import make_synthetic_voc
    out = {}
    for name, args in sizes.items():
        world = osp.join(folder, 'worlds', name)
        make_synthetic_voc(world, seed=WORLD_SEED_OFFSETS[name] + seed,
                           describe=True, progress=progress, **args)
        assert osp.isfile(osp.join(world, DESCRIPTIONS_FILE))
        out[name] = world
    return out


def _clip_available() -> bool:
    """Whether the world CLIP module exists in this checkout."""
    import importlib.util
    return importlib.util.find_spec(__package__ + '.clip') is not None


def _train_clip(worlds: Dict[str, str], out_dir: str, seed: int,
                progress: bool, clip_kwargs: Optional[dict]) -> Optional[dict]:
    """Train and evaluate the world CLIP, or None if it is unavailable."""
    try:
        from . import clip as world_clip
    except ImportError as e:
        warnings.warn(f'the world CLIP (qaclims_mm.synthetic.world.clip) '
                      f'is not available ({e}); the cache holds no CLIP')
        return None
    info = world_clip.train_world_clip(worlds['train'], out_dir, seed=seed,
                                       progress=progress,
                                       **(clip_kwargs or {}))
    metrics = None
    if hasattr(world_clip, 'evaluate_world_clip'):
        metrics = world_clip.evaluate_world_clip(out_dir, worlds['eval'],
                                                 progress=progress)
    return dict(train=info, metrics=metrics)


def _build(folder: str, seed: int, progress: bool,
           fg_templates: Sequence[str], bg_templates: Sequence[str],
           with_clip: bool, vqa_cfg, clip_kwargs: Optional[dict],
           sizes: Dict[str, Dict[str, int]]) -> dict:
    """Build every model in ``folder`` (a fresh partial folder)."""
    from .vqa import evaluate_world_vqa, train_world_vqa
    start = time.time()
    worlds = _make_worlds(folder, seed, progress, sizes)
    vqa_info = train_world_vqa(worlds['train'], osp.join(folder, 'vqa'),
                               fg_templates, bg_templates, seed=seed,
                               progress=progress, cfg=vqa_cfg)
    vqa_metrics = evaluate_world_vqa(osp.join(folder, 'vqa'), worlds['eval'],
                                     worlds['train'], fg_templates,
                                     bg_templates)
    clip = (_train_clip(worlds, osp.join(folder, 'clip'), seed, progress,
                        clip_kwargs) if with_clip else None)
    metrics = {f'vqa_{k}': v for k, v in vqa_metrics.items()}
    if clip is not None and clip.get('metrics'):
        metrics.update(
            {f'clip_{k}': v for k, v in clip['metrics'].items()})
    manifest = dict(
        generator_version=GENERATOR_VERSION,
        seed=seed,
        world_seeds={k: WORLD_SEED_OFFSETS[k] + seed for k in sizes},
        world_sizes=sizes,
        fg_templates=list(fg_templates),
        bg_templates=list(bg_templates),
        vqa=dict(image_size=vqa_info['config']['image_size'],
                 train=vqa_info),
        clip=clip,
        clip_note=(None if clip is not None else
                   'built without the world CLIP'),
        metrics=metrics,
        build_wall_s=round(time.time() - start, 1),
        files=_model_files(folder))
    atomic_write_text(osp.join(folder, _MANIFEST),
                      json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def build_world_models(cache_root: str = DEFAULT_CACHE_ROOT,
                       seed: int = 0,
                       progress: bool = True,
                       force: bool = False,
                       *,
                       fg_templates: Sequence[str],
                       bg_templates: Sequence[str],
                       with_clip: bool = True,
                       vqa_cfg=None,
                       clip_kwargs: Optional[dict] = None,
                       world_sizes: Optional[Dict[str, Dict[str, int]]] = None,
                       log: Callable[[str], None] = print) -> Dict[str, object]:
    """Train (or reuse) the world VQA and CLIP of ``seed``.

    A complete, verified cache folder made with the same templates is
    reused without training; a missing one is built; an incomplete or
    corrupt one (missing file, checksum mismatch) is rebuilt with a warning.

    Args:
        cache_root (str): The cache folder. Defaults to
            :data:`DEFAULT_CACHE_ROOT`.
        seed (int): World seed (>= 0): the worlds use ``1000 + seed`` and
            ``2000 + seed``, the models ``seed``. Defaults to 0.
        progress (bool): Show progress bars. Defaults to True.
        force (bool): Rebuild even a valid cache. Defaults to False.
        fg_templates (Sequence[str]): FG question templates (pass
            ``qaclims_mm.qape.questions.FG_QUESTIONS``; this layer may not
            import ``qape``).
        bg_templates (Sequence[str]): BG question templates.
        with_clip (bool): Also train the world CLIP. Defaults to True.
        vqa_cfg (WorldVQAConfig, optional): VQA size and schedule.
        clip_kwargs (dict, optional): Further ``train_world_clip`` arguments.
        world_sizes (dict, optional): ``make_synthetic_voc`` sizes of the
            ``train`` and ``eval`` worlds. Defaults to :data:`WORLD_SIZES`.
        log (callable): Receives progress messages. Defaults to print.

    Returns:
        dict: As :func:`load_world_models`, plus ``built`` (True when trained
        now, False when reused).
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
    seed = int(seed)
    if with_clip and not _clip_available():
        warnings.warn('the world CLIP (qaclims_mm.synthetic.world.clip) is '
                      'not available in this checkout; building the VQA '
                      'only')
        with_clip = False
    folder = osp.join(cache_root, world_dir_name(seed))
    if osp.isdir(folder) and not force:
        try:
            manifest = check_world_models(folder, seed)
            if (manifest.get('fg_templates') == list(fg_templates)
                    and manifest.get('bg_templates') == list(bg_templates)
                    and (manifest.get('clip') is not None or not with_clip)):
                log(f'world models: reusing {folder}')
                return dict(_paths(folder, manifest), built=False)
            reason = 'were built with other settings'
        except WorldModelsError as e:
            reason = str(e).split('; ')[0]
        warnings.warn(f'{reason}: rebuilding {folder}')
    os.makedirs(cache_root, exist_ok=True)
    partial = f'{folder}.partial-{os.getpid()}'
    if osp.isdir(partial):
        shutil.rmtree(partial)
    os.makedirs(partial)
    log(f'world models: training in {partial}')
    try:
        manifest = _build(partial, seed, progress, fg_templates,
                          bg_templates, with_clip, vqa_cfg, clip_kwargs,
                          world_sizes or WORLD_SIZES)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if osp.isdir(folder):
        shutil.rmtree(folder)
    os.rename(partial, folder)
    log(f'world models: saved {folder}')
    return dict(_paths(folder, manifest), built=True)
