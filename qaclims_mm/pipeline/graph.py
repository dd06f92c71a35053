"""Paths and the stage graph of a pipeline config, checked before any run.

:func:`build_graph` turns the ``files`` and ``stages`` blocks of a pipeline
config into built stages with absolute paths, and refuses a config with
problems, all of them listed in one :class:`PipelineConfigError`:

* stage names unique and ``[a-z0-9_]+``; a registered ``type``;
* every input path is a provided file (or inside one) or equal to / inside
  an output of an *earlier* stage;
* no two stages declare the same (or nested) output paths; no output holds
  the work dir or a provided file; no output (and no provided file) lies in
  another stage's folder ``<work_dir>/<name>`` (a fresh run wipes it);
* the class count of a stage agrees with the producers of its inputs.

Path rules: ``{name}`` is the (absolute) path of ``files[name]`` and may be
followed by a sub-path (``'{data_root}/JPEGImages'``); other relative paths
are relative to the pipeline work dir; absolute paths stay. A stage's
``config`` (sub-config file) is relative to the pipeline config's folder,
then to the current directory.
"""
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .base import PIPELINE_STAGES, BaseStage

#: Valid stage names (also their folder under the work dir).
NAME_PATTERN = re.compile(r'^[a-z0-9_]+$')
_PLACEHOLDER = re.compile(r'\{([^{}]*)\}')
#: Keys of a stage entry that are not the stage type's own params.
_ENTRY_KEYS = ('name', 'type', 'inputs', 'outputs', 'params')


class PipelineConfigError(ValueError):
    """A pipeline config that cannot run; lists every problem found.

    Args:
        problems (Sequence[str]): One message per problem.
        title (str): The first line of the message.
    """

    def __init__(self, problems: Sequence[str],
                 title: str = 'invalid pipeline config') -> None:
        self.problems = list(problems)
        lines = '\n'.join(f'  - {p}' for p in self.problems)
        super().__init__(f'{title} ({len(self.problems)} problem'
                         f'{"s" if len(self.problems) != 1 else ""}):\n'
                         f'{lines}')


@dataclass
class ProvidedFile:
    """One entry of the ``files`` block.

    Args:
        name (str): The entry's name (``{name}`` in paths).
        path (str): Absolute path.
        help (str): Where the docs say how to get it.
    """
    name: str
    path: str
    help: str = ''


@dataclass
class Source:
    """Where a stage input comes from.

    Args:
        kind (str): ``'stage'`` or ``'file'``.
        name (str): The producing stage or the ``files`` entry.
        output (str, optional): The producer's output name (stages only).
    """
    kind: str
    name: str
    output: Optional[str] = None


@dataclass
class StageNode:
    """A stage of the graph: its resolved entry and the built stage.

    Args:
        index (int): Position in the config's ``stages`` list.
        name (str): Stage name.
        type (str): Stage type name.
        inputs (dict): ``input name -> absolute path``.
        outputs (dict): ``output name -> absolute path``.
        params (dict): The stage type's params (paths resolved).
        stage (BaseStage, optional): The built stage.
        sources (dict): ``input name -> Source``.
    """
    index: int
    name: str
    type: str
    inputs: Dict[str, str]
    outputs: Dict[str, str]
    params: Dict[str, Any]
    stage: Optional[BaseStage] = None
    sources: Dict[str, Source] = field(default_factory=dict)


@dataclass
class PipelineGraph:
    """The validated pipeline: provided files and stages in order.

    Args:
        work_dir (str): Absolute pipeline work dir.
        files (dict): ``name -> ProvidedFile``.
        nodes (list[StageNode]): The stages in config order.
    """
    work_dir: str
    files: Dict[str, ProvidedFile]
    nodes: List[StageNode]

    def node(self, name: str) -> StageNode:
        """The stage called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f'no stage named {name!r}; the pipeline has '
                       f'{[n.name for n in self.nodes]}')

    def files_read_by(self, names: Iterable[str]) -> List[str]:
        """Names of the provided files the given stages read (config
        order)."""
        wanted = set(names)
        used = {src.name for node in self.nodes if node.name in wanted
                for src in node.sources.values() if src.kind == 'file'}
        return [name for name in self.files if name in used]


def is_within(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or inside it (both absolute)."""
    path, root = osp.normpath(path), osp.normpath(root)
    return path == root or path.startswith(root.rstrip(osp.sep) + osp.sep)


def _plain(obj: Any) -> Any:
    """Config dicts and lists turned into plain dicts and lists."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def resolve_files(files: Optional[dict],
                  problems: List[str]) -> Dict[str, ProvidedFile]:
    """Resolve the ``files`` block (paths relative to the current directory).

    Args:
        files (dict, optional): ``name -> dict(path=..., help=...)`` (a
            bare path string is accepted too).
        problems (list[str]): Problems are appended here.

    Returns:
        dict: ``name -> ProvidedFile``.
    """
    resolved = {}
    for name, entry in (files or {}).items():
        if isinstance(entry, str):
            entry = dict(path=entry)
        if not isinstance(entry, dict) or not isinstance(
                entry.get('path'), str):
            problems.append(f'files.{name} must be dict(path=..., help=...), '
                            f'got {entry!r}')
            continue
        path = osp.abspath(osp.expanduser(entry['path']))
        resolved[name] = ProvidedFile(name, path, str(entry.get('help', '')))
    return resolved


def resolve_path(value: str, files: Dict[str, ProvidedFile], work_dir: str,
                 where: str, problems: List[str]) -> Optional[str]:
    """Absolute path of a stage's input or output path.

    Args:
        value (str): ``'{name}/sub'``, a path relative to the work dir, or
            an absolute path.
        files (dict): Resolved provided files.
        work_dir (str): Absolute pipeline work dir.
        where (str): What the path is, for messages.
        problems (list[str]): Problems are appended here.

    Returns:
        str | None: The absolute path, None on a problem.
    """
    if not isinstance(value, str) or not value:
        problems.append(f'{where} must be a non-empty path string, got '
                        f'{value!r}')
        return None
    unknown = [m for m in _PLACEHOLDER.findall(value) if m not in files]
    if unknown:
        problems.append(f'{where} ({value}) names {unknown}, which the '
                        f'files block lacks (it has {sorted(files)})')
        return None
    value = _PLACEHOLDER.sub(lambda m: files[m.group(1)].path, value)
    value = osp.expanduser(value)
    return osp.normpath(value if osp.isabs(value) else osp.join(
        work_dir, value))


def resolve_config_path(value: str, config_dir: Optional[str]) -> str:
    """A sub-config path: relative to ``config_dir``, then to the cwd.

    Returns the first candidate that exists, else the ``config_dir`` one
    (which the stage will report as missing).
    """
    value = osp.expanduser(value)
    if osp.isabs(value):
        return value
    candidates = ([osp.join(config_dir, value)] if config_dir else [])
    candidates.append(osp.abspath(value))
    for candidate in candidates:
        if osp.exists(candidate):
            return osp.normpath(osp.abspath(candidate))
    return osp.normpath(osp.abspath(candidates[0]))


def _resolve_paths(entry: dict, kind: str, label: str,
                   files: Dict[str, ProvidedFile], work_dir: str,
                   problems: List[str]) -> Dict[str, str]:
    paths = entry.get(kind) or {}
    if not isinstance(paths, dict):
        problems.append(f'{label}: {kind} must be a dict name -> path, got '
                        f'{paths!r}')
        return {}
    resolved = {}
    for key, value in paths.items():
        if value is None:  # an optional input left out
            continue
        path = resolve_path(value, files, work_dir,
                            f'{label} {kind[:-1]} {key!r}', problems)
        if path is not None:
            resolved[key] = path
    return resolved


def _params(entry: dict, label: str, config_dir: Optional[str],
            problems: List[str]) -> Dict[str, Any]:
    params = {k: _plain(v) for k, v in entry.items() if k not in _ENTRY_KEYS}
    nested = _plain(entry.get('params') or {})
    if not isinstance(nested, dict):
        problems.append(f'{label}: params must be a dict, got {nested!r}')
        nested = {}
    both = sorted(set(params) & set(nested))
    if both:
        problems.append(f'{label}: {both} given both in params and at the '
                        'top level of the stage entry')
    params.update(nested)
    config = params.get('config')
    if isinstance(config, str):
        params['config'] = resolve_config_path(config, config_dir)
        if not osp.isfile(params['config']):
            problems.append(f'{label}: sub-config {config} not found (looked '
                            f'in {config_dir or "-"} and the current '
                            'directory)')
    return params


def _resolve_nodes(stages: Sequence[dict], files: Dict[str, ProvidedFile],
                   work_dir: str, config_dir: Optional[str],
                   problems: List[str]) -> List[StageNode]:
    nodes, seen = [], set()
    for index, entry in enumerate(stages or []):
        if not isinstance(entry, dict):
            problems.append(f'stages[{index}] must be a dict, got {entry!r}')
            continue
        name, type_name = entry.get('name'), entry.get('type')
        label = f'stage {name!r}' if name else f'stages[{index}]'
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.append(f'stages[{index}]: name {name!r} must match '
                            '[a-z0-9_]+')
        elif name in seen:
            problems.append(f'stage name {name!r} is used twice')
        seen.add(name)
        if not isinstance(type_name, str) or not type_name:
            problems.append(f'{label}: no type given')
        nodes.append(StageNode(
            index, str(name), str(type_name),
            _resolve_paths(entry, 'inputs', label, files, work_dir, problems),
            _resolve_paths(entry, 'outputs', label, files, work_dir,
                           problems),
            _params(entry, label, config_dir, problems)))
    if not nodes and not problems:
        problems.append('the pipeline config has no stages')
    return nodes


def _check_outputs(nodes: List[StageNode], files: Dict[str, ProvidedFile],
                   work_dir: str, problems: List[str]) -> None:
    declared: List[Tuple[str, str, str]] = []
    for node in nodes:
        for key, path in node.outputs.items():
            if is_within(work_dir, path):
                problems.append(f'stage {node.name!r} output {key!r} ({path}) '
                                f'holds the work dir {work_dir}')
            for file in files.values():
                if is_within(file.path, path):
                    problems.append(
                        f'stage {node.name!r} output {key!r} ({path}) holds '
                        f'the provided file {file.name!r} ({file.path})')
            for other, other_key, other_path in declared:
                if other == node.name:
                    continue
                if path == other_path:
                    problems.append(
                        f'stages {other!r} and {node.name!r} both declare '
                        f'the output {path} ({other_key!r} / {key!r})')
                elif is_within(path, other_path) or is_within(
                        other_path, path):
                    problems.append(
                        f'output {key!r} of stage {node.name!r} ({path}) '
                        f'and output {other_key!r} of stage {other!r} '
                        f'({other_path}) overlap')
            for other in nodes:
                folder = osp.join(work_dir, other.name)
                if other.name == node.name:
                    continue
                if is_within(path, folder) or is_within(folder, path):
                    problems.append(
                        f'stage {node.name!r} output {key!r} ({path}) '
                        f'overlaps the folder of stage {other.name!r} '
                        f'({folder}), which that stage wipes and re-creates')
            declared.append((node.name, key, path))
    for file in files.values():
        for node in nodes:
            if is_within(file.path, osp.join(work_dir, node.name)):
                problems.append(
                    f'provided file {file.name!r} ({file.path}) lies in the '
                    f'folder of stage {node.name!r}, which that stage wipes')


def _find_sources(nodes: List[StageNode], files: Dict[str, ProvidedFile],
                  problems: List[str]) -> None:
    for i, node in enumerate(nodes):
        for key, path in node.inputs.items():
            source = None
            for producer in reversed(nodes[:i]):  # the latest earlier one
                for out_key, out_path in producer.outputs.items():
                    if is_within(path, out_path):
                        source = Source('stage', producer.name, out_key)
                        break
                if source:
                    break
            if source is None:
                for file in files.values():
                    if is_within(path, file.path):
                        source = Source('file', file.name)
                        break
            if source is not None:
                node.sources[key] = source
                continue
            later = [n.name for n in nodes[i:]
                     if any(is_within(path, p) for p in n.outputs.values())]
            hint = (f' (stage {later[0]!r} writes it, but stages run in '
                    'config order)' if later else '')
            problems.append(f'stage {node.name!r} input {key!r} ({path}) is '
                            'produced by no earlier stage and is not in '
                            f'files{hint}')


def _build_stages(nodes: List[StageNode], problems: List[str]) -> None:
    for node in nodes:
        if not node.type or node.type == 'None':
            continue
        cls = PIPELINE_STAGES.get(node.type)
        if cls is None:
            problems.append(f'stage {node.name!r}: type {node.type!r} is not '
                            'a registered pipeline stage type '
                            f'({sorted(PIPELINE_STAGES.module_dict)})')
            continue
        try:
            node.stage = cls(name=node.name, inputs=dict(node.inputs),
                             outputs=dict(node.outputs), **node.params)
        except (KeyError, TypeError, ValueError, OSError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            problems.append(f'stage {node.name!r} ({node.type}): {msg}')


def _check_class_counts(nodes: List[StageNode], problems: List[str]) -> None:
    by_name = {n.name: n for n in nodes}
    for node in nodes:
        mine = node.stage.num_classes() if node.stage else None
        if mine is None:
            continue
        for key, src in node.sources.items():
            producer = by_name[src.name] if src.kind == 'stage' else None
            theirs = (producer.stage.num_classes()
                      if producer and producer.stage else None)
            if theirs is not None and theirs != mine:
                problems.append(
                    f'class count mismatch: stage {node.name!r} works with '
                    f'{mine} classes but its input {key!r} comes from stage '
                    f'{src.name!r} with {theirs} classes')


def build_graph(files: Optional[dict], stages: Sequence[dict], work_dir: str,
                config_dir: Optional[str] = None) -> PipelineGraph:
    """Resolve, build and validate a pipeline (nothing runs, nothing is
    written).

    Args:
        files (dict, optional): The config's ``files`` block.
        stages (Sequence[dict]): The config's ``stages`` list.
        work_dir (str): The pipeline work dir (made absolute).
        config_dir (str, optional): Folder of the pipeline config (for
            sub-config paths).

    Returns:
        PipelineGraph: The stages, built, with the source of every input.

    Raises:
        PipelineConfigError: listing every problem found.
    """
    problems: List[str] = []
    work_dir = osp.normpath(osp.abspath(work_dir))
    resolved = resolve_files(files, problems)
    nodes = _resolve_nodes(stages, resolved, work_dir, config_dir, problems)
    _check_outputs(nodes, resolved, work_dir, problems)
    _find_sources(nodes, resolved, problems)
    _build_stages(nodes, problems)
    _check_class_counts(nodes, problems)
    if problems:
        raise PipelineConfigError(problems)
    return PipelineGraph(work_dir, resolved, nodes)


def check_provided_files(graph: PipelineGraph, names: Iterable[str]) -> None:
    """Refuse missing provided files, listing every one with its help.

    Args:
        graph (PipelineGraph): The pipeline.
        names (Iterable[str]): The stages about to run (only the files they
            read are checked).

    Raises:
        PipelineConfigError: naming each missing file, its path and where
            the docs say how to get it.
    """
    missing = []
    for name in graph.files_read_by(names):
        file = graph.files[name]
        if not osp.exists(file.path):
            see = f' (see {file.help})' if file.help else ''
            missing.append(f'files.{name}: {file.path} not found{see}')
    if missing:
        raise PipelineConfigError(
            missing, title='missing input files, nothing was run')
