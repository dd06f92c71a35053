"""The pipeline report: summary.json, visualizer scalars, report.md, PNGs."""
import json
import os.path as osp
import re

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from qaclims_mm.pipeline.report import (build_pipeline_visualizer,
                                        finish_report, record_stage,
                                        validate_report_cfg)
from qaclims_mm.pipeline.report.grid import EMPTY_TILE, GAP, HEADER_HEIGHT
from qaclims_mm.utils.cam_file import save_cam
from qaclims_mm.utils.label_io import (IGNORE_COLOR, label_colormap,
                                       label_png_palette, write_label_png)

CONTEXT = ('aeroplane', 'boat', 'cow', 'sheep', 'train', 'sofa')


def eval_cams_record(name: str, base: float) -> dict:
    """An EvalCAMsStage record whose every number is distinct."""
    per_class = {c: base + 10 + i for i, c in enumerate(CONTEXT)}
    per_class['bird'] = base + 30
    thresholds = [round(0.05 * i, 2) for i in range(1, 11)]
    curve = [base - abs(t - 0.25) * 20 for t in thresholds]
    return dict(stage=name, type='EvalCAMsStage', status='ran',
                wall_time_s=base / 10,
                metrics=dict(mIoU=base + 0.11, best_threshold=0.25,
                             best_mIoU=base + 1.22,
                             fg_false_activation=base + 4.33,
                             fg_false_activation_per_class=per_class,
                             sweep=dict(thresholds=thresholds, mIoU=curve)))


def run_records() -> list:
    return [
        dict(stage='cam', type='TrainStage', status='skipped',
             wall_time_s=125.0, metrics=dict(loss=0.123456)),
        eval_cams_record('eval_base', 40.0),
        eval_cams_record('eval_qa', 50.0),
        dict(stage='eval_rw_base', type='EvalPseudoMasksStage',
             status='resumed', wall_time_s=3.0, metrics=dict(mIoU=61.17)),
        dict(stage='eval_rw_qa', type='EvalPseudoMasksStage', status='ran',
             wall_time_s=3.5, metrics=dict(mIoU=63.29)),
        dict(stage='test_base', type='TestStage', status='ran',
             wall_time_s=4000.0, metrics=dict(mIoU=55.41, mIoU_crf=57.52)),
        dict(stage='test_qa', type='TestStage', status='ran',
             wall_time_s=7.0, metrics=dict(mIoU=58.63, mIoU_crf=59.74)),
    ]


VARIANTS = [
    dict(name='Baseline CAM', cams='eval_base', pseudo='eval_rw_base',
         test='test_base'),
    dict(name='QA-CLIMS', cams='eval_qa', pseudo='eval_rw_qa',
         test='test_qa'),
]


@pytest.fixture()
def tiny_outputs(tmp_path):
    """images/, cams/, labels/ for ids a (all files), b (no CAM), c (no
    image, a corrupt CAM)."""
    rng = np.random.default_rng(0)
    (tmp_path / 'images').mkdir()
    for img_id in ('a', 'b'):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(
            tmp_path / 'images' / f'{img_id}.jpg')
    cam = np.zeros((2, 30, 40), np.float32)
    cam[0, :15], cam[1, 15:, :20] = 0.9, 0.6
    save_cam(str(tmp_path / 'cams' / 'a.npz'), np.array([3, 9]),
             cam[:, ::4, ::4], cam)
    (tmp_path / 'cams' / 'c.npz').write_bytes(b'not a zip')
    palette = label_png_palette(label_colormap(21))
    label = np.zeros((30, 40), np.uint8)
    label[:10] = 4  # boat
    label[10:20] = 255  # ignore
    for img_id in ('a', 'b', 'c'):
        write_label_png(str(tmp_path / 'labels' / f'{img_id}.png'), label,
                        palette)
    (tmp_path / 'split.txt').write_text('a\nb\nc\nd\n')
    return tmp_path


def report_cfg(root, **kwargs) -> Config:
    columns = dict(image=dict(kind='image', path=str(root / 'images')),
                   CAM=dict(kind='cam', path=str(root / 'cams')),
                   labels=dict(kind='label', path=str(root / 'labels')))
    report = dict(variants=VARIANTS, num_images=3,
                  split_file=str(root / 'split.txt'), columns=columns,
                  tile_size=64)
    report.update(kwargs)
    return Config(dict(report=report))


def md_table(text: str, first_header: str) -> dict:
    """``first cell -> {header: cell}`` of the table whose first header is
    ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(f'| {first_header} |'))
    headers = [c.strip() for c in lines[start].strip('|').split('|')]
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        cells = [c.strip().strip('*') for c in line.strip('|').split('|')]
        table[cells[0]] = dict(zip(headers, cells))
    return table


def test_summary_json_replaces_a_rerun_stage(tmp_path):
    work_dir = str(tmp_path)
    records = run_records()
    for record in records[:3]:
        record_stage(work_dir, record)
    rerun = dict(records[1], status='resumed', wall_time_s=1.5,
                 metrics=dict(mIoU=float('nan'), best_mIoU=np.float32(12.5)))
    record_stage(work_dir, rerun)
    with open(osp.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    assert [r['stage'] for r in summary['stages']] == ['cam', 'eval_base',
                                                     'eval_qa']
    assert summary['stages'][1]['status'] == 'resumed'
    assert summary['stages'][1]['wall_time_s'] == 1.5
    # NaN is written as null (strict JSON), numpy scalars as numbers
    assert summary['stages'][1]['metrics'] == dict(mIoU=None, best_mIoU=12.5)
    assert summary['stages'][2]['metrics']['fg_false_activation'] == 54.33
    assert re.match(r'\d{4}-\d\d-\d\dT', summary['updated'])
    # records with an index are kept in pipeline order
    record_stage(work_dir, dict(records[3], index=3))
    record_stage(work_dir, dict(records[0], index=0))
    with pytest.raises(ValueError, match="stage 'cam'.*'done'"):
        record_stage(work_dir, dict(records[0], status='done'))
    with pytest.raises(ValueError, match="stage 'cam'.*metrics"):
        record_stage(work_dir, {
            k: v
            for k, v in records[0].items() if k != 'metrics'
        })


def test_record_stage_logs_scalars_to_the_visualizer(tmp_path):
    work_dir, other = str(tmp_path / 'run'), str(tmp_path / 'other')
    cfg = Config(dict(vis_backends=[dict(type='LocalVisBackend')]))
    build_pipeline_visualizer(cfg, work_dir)
    build_pipeline_visualizer(cfg, other)  # the latest instance
    for record in run_records()[:3]:
        record_stage(work_dir, record)
    path = osp.join(work_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    by_step = {line['step']: line for line in lines}
    assert sorted(by_step) == [0, 1, 2]
    assert by_step[0] == {'cam/loss': 0.123456, 'cam/wall_time_s': 125.0,
                          'step': 0}
    assert by_step[2]['eval_qa/mIoU'] == 50.11
    assert by_step[2]['eval_qa/best_threshold'] == 0.25
    assert by_step[2]['eval_qa/fg_false_activation_per_class/boat'] == 61.0
    assert not any('sweep' in k for k in by_step[2])
    # the other pipeline's visualizer got nothing
    assert not osp.exists(osp.join(other, 'vis_data', 'scalars.json'))


def test_added_vis_backends_receive_the_scalars(tmp_path):
    """A backend added to the top-level vis_backends gets the scalars, also
    when the inherited visualizer dict still lists the old backends."""
    from mmengine.registry import VISBACKENDS
    from mmengine.visualization.vis_backend import BaseVisBackend

    received = []

    @VISBACKENDS.register_module(name='_ReportTestVisBackend', force=True)
    class _Recording(BaseVisBackend):

        @property
        def experiment(self):
            return self

        def _init_env(self):
            pass

        def add_scalars(self, scalar_dict, step=0, file_path=None, **kwargs):
            received.append((dict(scalar_dict), step))

    cfg = Config(dict(
        vis_backends=[dict(type='LocalVisBackend'),
                      dict(type='_ReportTestVisBackend')],
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')])))
    work_dir = str(tmp_path)
    build_pipeline_visualizer(cfg, work_dir)
    record_stage(work_dir, dict(run_records()[3], index=5))
    assert received == [({'eval_rw_base/mIoU': 61.17,
                          'eval_rw_base/wall_time_s': 3.0}, 5)]


def test_report_tables_pick_each_variants_numbers(tmp_path, tiny_outputs):
    work_dir = str(tmp_path / 'work')
    records = run_records()
    text = finish_report(work_dir, report_cfg(tiny_outputs), records)
    with open(osp.join(work_dir, 'report.md')) as f:
        md = f.read()
    assert 'Report config problems' not in md
    table = md_table(md, 'variant')
    assert list(table) == ['Baseline CAM', 'QA-CLIMS']
    for name, base, pseudo, val, crf in (('Baseline CAM', 40, '61.17',
                                         '55.41', '57.52'),
                                        ('QA-CLIMS', 50, '63.29', '58.63',
                                         '59.74')):
        row = table[name]
        assert row['mIoU@0.15'] == f'{base + 0.11:.2f}'
        assert row['best thr'] == '0.25'
        assert row['best mIoU'] == f'{base + 1.22:.2f}'
        assert row['FA all'] == f'{base + 4.33:.2f}'
        for i, cls in enumerate(CONTEXT):
            assert row[f'FA {cls}'] == f'{base + 10 + i:.2f}'
        assert (row['pseudo mIoU'], row['val mIoU'],
                row['val mIoU+CRF']) == (pseudo, val, crf)
    # best of each column in bold: QA-CLIMS mIoU, baseline false activation
    assert '| QA-CLIMS | **50.11** |' in md
    assert '| **44.33** |' in md
    change = md_table(md, 'change vs Baseline CAM')
    assert list(change) == ['QA-CLIMS']
    assert 'best thr' not in change['QA-CLIMS']
    assert change['QA-CLIMS']['mIoU@0.15'] == '+10.00'
    assert change['QA-CLIMS']['FA boat'] == '+10.00'
    assert (change['QA-CLIMS']['pseudo mIoU'], change['QA-CLIMS']['val mIoU'],
            change['QA-CLIMS']['val mIoU+CRF']) == ('+2.12', '+3.22', '+2.22')
    stages = md_table(md, 'stage')
    assert stages['eval_base']['metrics'] == (
        'mIoU=40.11, best_threshold=0.25, best_mIoU=41.22, '
        'fg_false_activation=44.33')
    assert stages['test_base']['metrics'] == 'mIoU=55.41, mIoU_crf=57.52'
    assert stages['test_base']['wall time'] == '1h 06m'
    assert stages['cam']['wall time'] == '2m 05s'
    assert stages['cam']['metrics'] == 'loss=0.1235'
    assert stages['eval_rw_base']['status'] == 'resumed'
    assert stages['total']['status'] == '5 ran, 1 resumed, 1 skipped'
    # the terminal text: same numbers, fixed width
    for value in ('41.22', '63.29', '59.74', 'QA-CLIMS', 'eval_rw_qa'):
        assert value in text
    table_lines = [line for line in text.splitlines() if line[:1] in '|+']
    assert len({len(line) for line in table_lines}) == 3  # three tables
    # another baseline: the changes flip sign
    finish_report(work_dir, report_cfg(tiny_outputs, baseline='QA-CLIMS'),
                  records)
    with open(osp.join(work_dir, 'report.md')) as f:
        change = md_table(f.read(), 'change vs QA-CLIMS')
    assert list(change) == ['Baseline CAM']
    assert change['Baseline CAM']['val mIoU'] == '-3.22'


def test_report_pngs_exist_with_their_layout(tmp_path, tiny_outputs):
    work_dir = str(tmp_path / 'work')
    finish_report(work_dir, report_cfg(tiny_outputs), run_records())
    with open(osp.join(work_dir, 'report.md')) as f:
        md = f.read()
    links = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', md)
    assert links == ['report-files/threshold_sweep.png',
                     'report-files/image_grid.png']
    with Image.open(osp.join(work_dir, links[0])) as sweep:
        assert sweep.size == (640, 400)
    with Image.open(osp.join(work_dir, links[1])) as grid:
        grid = np.asarray(grid.convert('RGB'))
    tile, cols, rows = 64, 3, 3
    height, width = grid.shape[:2]
    assert height == HEADER_HEIGHT + rows * (tile + GAP)
    strip = width - cols * (tile + GAP)
    assert 0 < strip < 100

    def tile_at(row: int, col: int) -> np.ndarray:
        top, left = HEADER_HEIGHT + row * (tile + GAP), strip + col * (tile +
                                                                       GAP)
        return grid[top:top + tile, left:left + tile]

    def share(pixels: np.ndarray, colour) -> float:
        return float((pixels == np.asarray(colour)).all(-1).mean())

    # b has no CAM, c no image and a corrupt CAM: grey text tiles
    for row, col in ((1, 1), (2, 0), (2, 1)):
        assert share(tile_at(row, col), EMPTY_TILE) > 0.9
    # a's CAM: a coloured overlay, not an empty tile
    assert share(tile_at(0, 1), EMPTY_TILE) < 0.1
    assert tile_at(0, 1).std() > 10
    # labels: boat colour on top, the ignore label in light grey
    label = tile_at(0, 2)
    boat = label_colormap(21)[4]
    assert share(label, boat) > 0.2 and share(label, IGNORE_COLOR) > 0.2


def test_report_without_variants_lists_eval_cams(tmp_path, tiny_outputs):
    records = run_records()
    cfg = Config(dict(report=dict(
        columns=dict(img=dict(kind='image', path='../images')),
        num_images=1)))
    work_dir = str(tiny_outputs / 'work')  # relative column path
    text = finish_report(work_dir, cfg, records)
    with open(osp.join(work_dir, 'report.md')) as f:
        md = f.read()
    table = md_table(md, 'variant')
    assert list(table) == ['eval_base', 'eval_qa']
    assert 'pseudo mIoU' not in table['eval_base']
    assert table['eval_qa']['FA sofa'] == '65.00'
    assert 'eval_base' in text
    with Image.open(osp.join(work_dir, 'report-files',
                             'image_grid.png')) as grid:
        assert grid.size[1] == HEADER_HEIGHT + 160 + GAP  # one row


def test_report_config_problems_are_listed_not_fatal(tmp_path):
    records = run_records()
    stage_types = {r['stage']: r['type'] for r in records}
    report = dict(variants=[dict(name='X', cams='eval_typo'),
                            dict(name='Y', cams='test_qa', sweep=1)],
                  columns=dict(gt=dict(kind='png', path='x')),
                  baseline='Nope')
    problems = validate_report_cfg(report, stage_types)
    assert len(problems) == 5, problems
    assert "cams='eval_typo' is not a stage" in problems[0]
    assert "'test_qa' is a TestStage, not a EvalCAMsStage" in problems[1]
    assert "unknown key 'sweep'" in problems[2]
    assert "report.baseline='Nope' is not one of the variants" in problems[3]
    assert 'report.columns.gt' in problems[4]
    work_dir = str(tmp_path)
    finish_report(work_dir, Config(dict(report=report)), records)
    with open(osp.join(work_dir, 'report.md')) as f:
        md = f.read()
    assert 'eval_typo' in md and 'Report config problems' in md
    assert md_table(md, 'variant')['X']['mIoU@0.15'] == '-'


def test_report_of_a_run_without_evaluations(tmp_path):
    """No report block, no EvalCAMs stage, a plain dict config: the stage
    table alone, no pictures."""
    records = run_records()[:1]
    text = finish_report(str(tmp_path), dict(), records)
    assert 'CAM variants' not in text and '| cam ' in text
    with open(osp.join(str(tmp_path), 'report.md')) as f:
        md = f.read()
    assert md_table(md, 'stage')['total']['wall time'] == '2m 05s'
    assert '![' not in md and 'No EvalCAMs stage recorded a sweep' in md
    assert not osp.exists(osp.join(str(tmp_path), 'report-files'))
