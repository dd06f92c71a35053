"""IR labels (spec §6.3): CRF effect, threshold bands, files, parallelism."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from qaclims_mm.structures.crf import crf_from_labels
from qaclims_mm.refine.ir_label import crf_threshold_label, make_ir_label
from qaclims_mm.refine.stages import make_ir_labels
from qaclims_mm.utils.label_io import IGNORE_COLOR, label_png_palette
from qaclims_mm.utils.cam_file import save_cam

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def square_image(size=64, lo=16, hi=48):
    """A bright square on a dark background, and its true mask."""
    truth = np.zeros((size, size), bool)
    truth[lo:hi, lo:hi] = True
    image = np.where(truth[..., None], 230, 20).astype(np.uint8)
    return np.repeat(image, 3, axis=2), truth


def test_crf_snaps_dilated_labels_to_the_square_edges():
    image, truth = square_image()
    blurred = np.zeros_like(truth)
    blurred[10:54, 10:54] = True  # the square dilated by 6 pixels
    refined = crf_from_labels(image, blurred.astype(np.int64), 2) == 1
    assert iou(refined, truth) > iou(blurred, truth) + 0.1
    assert iou(refined, truth) > 0.95


def test_crf_threshold_label_maps_channels_through_keys():
    image, truth = square_image()
    cam = np.where(truth, 0.8, 0.0).astype(np.float32)[None]
    label = crf_threshold_label(image, cam, np.array([14]), threshold=0.15)
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, np.where(truth, 15, 0))


def hand_made_cam(h=48, w=60):
    """One class whose CAM has three bands: >0.30, (0.10, 0.30], <=0.10."""
    cam = np.zeros((h, w), np.float32)
    cam[:, :20] = 0.8   # confident foreground
    cam[:, 20:40] = 0.2  # uncertain band
    cam[:, 40:] = 0.05  # confident background
    cam[0, 0] = 0.30  # exactly fg_thr: not above, so uncertain (tie -> bg)
    cam[0, 41] = 0.10  # exactly bg_thr: background
    return cam


def test_ir_label_bands_on_a_flat_image():
    """On a flat image the CRF keeps the unary decision: pure thresholds."""
    cam = hand_made_cam()
    image = np.full(cam.shape + (3, ), 128, np.uint8)
    # a weak pairwise term leaves the unary decision everywhere
    label = make_ir_label(image, cam[None], np.array([6]), 0.30, 0.10,
                          crf_cfg=dict(gauss_compat=0.1, bilateral_compat=0.1))
    expected = np.where(cam > 0.30, 7, np.where(cam > 0.10, 255, 0))
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, expected)
    # the same reference without any CRF
    plain = make_ir_label(None, cam[None], np.array([6]), use_crf=False)
    np.testing.assert_array_equal(plain, expected)
    # the official CRF on an image whose colour bands match the CAM bands:
    # the decision follows the image, so it is the same reference
    banded = np.zeros_like(image)
    banded[:, :20], banded[:, 20:40], banded[:, 40:] = 200, 120, 40
    official = make_ir_label(banded, cam[None], np.array([6]))
    expected[0, 0], expected[0, 41] = 7, 0  # single pixels join their band
    np.testing.assert_array_equal(official, expected)


def test_ir_label_two_classes_and_no_class():
    h, w = 20, 30
    cams = np.zeros((2, h, w), np.float32)
    cams[0, :, :10] = 0.9
    cams[1, :, 10:20] = 0.5
    cams[1, :, 20:] = 0.2
    label = make_ir_label(None, cams, np.array([2, 17]), use_crf=False)
    assert (label[:, :10] == 3).all() and (label[:, 10:20] == 18).all()
    assert (label[:, 20:] == 255).all()
    empty = make_ir_label(None, np.zeros((0, h, w), np.float32),
                          np.zeros(0, np.int64))
    assert empty.shape == (h, w) and not empty.any()
    with pytest.raises(ValueError, match='bg_thr'):
        make_ir_label(None, cams, np.array([2, 17]), 0.1, 0.3, use_crf=False)


def test_label_palette():
    from qaclims_mm.datasets.class_names import VOC_PALETTE, coco_palette
    voc = label_png_palette(VOC_PALETTE)
    assert len(voc) == 256 and voc[1] == [128, 0, 0]
    assert voc[255] == list(IGNORE_COLOR) and voc[0] == [0, 0, 0]
    coco = label_png_palette(coco_palette(81))
    assert len(coco) == 256 and coco[81] == [0, 0, 0]
    assert len({tuple(c) for c in coco[:81]}) == 81


@pytest.fixture
def cam_folder(tmp_path):
    """Six images with square objects and matching high_res CAMs."""
    rng = np.random.default_rng(0)
    img_dir, cam_dir = tmp_path / 'img', tmp_path / 'cam'
    img_dir.mkdir()
    ids = [f'img{i}' for i in range(6)]
    for i, img_id in enumerate(ids):
        h, w = 40 + 2 * i, 50
        image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)  # texture
        image[8:30, 10:35] += 150
        Image.fromarray(image).save(img_dir / f'{img_id}.png')
        cam = np.zeros((1, h, w), np.float32)
        cam[0, 6:32, 8:37] = 0.2
        cam[0, 10:28, 12:33] = 0.7
        save_cam(str(cam_dir / f'{img_id}.npz'), np.array([i % 20]), None,
                 cam)
    return str(img_dir), str(cam_dir), ids


def read_png(path):
    with Image.open(path) as img:
        return img.mode, img.getpalette(), np.asarray(img)


def test_make_ir_labels_files_parallel_equals_serial(cam_folder, tmp_path):
    img_dir, cam_dir, ids = cam_folder
    serial, parallel = str(tmp_path / 's'), str(tmp_path / 'p')
    assert make_ir_labels(cam_dir, img_dir, ids, serial, progress=False,
                          img_suffix='.png') == len(ids)
    assert make_ir_labels(cam_dir, img_dir, ids, parallel, num_workers=2,
                          progress=False, img_suffix='.png') == len(ids)
    assert sorted(os.listdir(serial)) == sorted(
        [f'{i}.png' for i in ids] + ['settings.json'])
    for i, img_id in enumerate(ids):
        mode, palette, a = read_png(osp.join(serial, f'{img_id}.png'))
        _, _, b = read_png(osp.join(parallel, f'{img_id}.png'))
        np.testing.assert_array_equal(a, b)
        assert mode == 'P' and palette[3 * 255:3 * 256] == list(IGNORE_COLOR)
        assert set(np.unique(a)) <= {0, i % 20 + 1, 255}
        # the CRF snaps the object to the bright box [8:30, 10:35]; the
        # texture leaves a few uncertain pixels
        assert (a[8:30, 10:35] == i % 20 + 1).mean() > 0.9
        assert (a[:8] == 0).all() and (a[30:] == 0).all()
        assert (a[:, :10] == 0).all() and (a[:, 35:] == 0).all()


def test_make_ir_labels_resumes(cam_folder, tmp_path):
    img_dir, cam_dir, ids = cam_folder
    out = str(tmp_path / 'out')
    assert make_ir_labels(cam_dir, img_dir, ids[:2], out, progress=False,
                          img_suffix='.png') == 2
    first = osp.join(out, f'{ids[0]}.png')
    os.utime(first, (1, 1))
    assert make_ir_labels(cam_dir, img_dir, ids, out, progress=False,
                          img_suffix='.png') == len(ids) - 2
    assert os.stat(first).st_mtime == 1
    assert make_ir_labels(cam_dir, img_dir, ids, out, progress=False,
                          img_suffix='.png', overwrite=True) == len(ids)
    assert os.stat(first).st_mtime != 1
    assert not [f for f in os.listdir(out) if f.endswith('.tmp')]


def test_make_ir_labels_missing_inputs_name_the_id(cam_folder, tmp_path):
    img_dir, cam_dir, ids = cam_folder
    with pytest.raises(FileNotFoundError, match='ghost'):
        make_ir_labels(cam_dir, img_dir, ids + ['ghost'],
                       str(tmp_path / 'o'), progress=False, img_suffix='.png')
    os.remove(osp.join(img_dir, f'{ids[3]}.png'))
    with pytest.raises(FileNotFoundError, match=ids[3]):
        make_ir_labels(cam_dir, img_dir, ids, str(tmp_path / 'o'),
                       progress=False, img_suffix='.png')
    assert not osp.isdir(str(tmp_path / 'o')) or not os.listdir(
        str(tmp_path / 'o'))


def test_tool_make_ir_labels(cam_folder, tmp_path):
    img_dir, cam_dir, ids = cam_folder
    split = tmp_path / 'split.txt'
    split.write_text('\n'.join(ids) + '\n')
    out = str(tmp_path / 'tool')
    proc = subprocess.run(
        [sys.executable, 'tools/make_ir_labels.py', '--cam-dir', cam_dir,
         '--img-dir', img_dir, '--split-file', str(split), '--out-dir', out,
         '--img-suffix', '.png', '--fg-thr', '0.5', '--bg-thr', '0.1',
         '--nproc', '2'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'{len(ids)} IR label(s) written' in proc.stdout
    reference = str(tmp_path / 'ref')
    make_ir_labels(cam_dir, img_dir, ids, reference, fg_thr=0.5, bg_thr=0.1,
                   progress=False, img_suffix='.png')
    for img_id in ids:
        np.testing.assert_array_equal(
            read_png(osp.join(out, f'{img_id}.png'))[2],
            read_png(osp.join(reference, f'{img_id}.png'))[2])
