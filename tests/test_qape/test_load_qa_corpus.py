"""LoadQACorpus: padded per-class text features from a text-feature cache,
alone and inside a real VOC training pipeline."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.datasets.labels_file import load_labels_file
from qaclims_mm.datasets.transforms.qa_corpus import LoadQACorpus
from qaclims_mm.qape.corpus import build_corpus
from qaclims_mm.qape.questions import build_question_set
from qaclims_mm.qape.text_cache import build_text_cache
from qaclims_mm.utils.io import read_split

init_default_scope('mmseg')

TINY_CFG = {
    'embed_dim': 8,
    'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 16,
                   'head_width': 16, 'patch_size': 16},
    'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 16,
                 'heads': 2, 'layers': 1},
}
AERO, PERSON, TRAIN = (VOC_CLASSES.index(c)
                       for c in ('aeroplane', 'person', 'train'))


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    from open_clip.model import CLIP
    from safetensors.torch import save_file
    folder = tmp_path_factory.mktemp('tiny_clip_qa')
    torch.manual_seed(1)
    model = CLIP(**TINY_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / 'open_clip_model.safetensors'))
    (folder / 'open_clip_config.json').write_text(
        json.dumps({'model_cfg': TINY_CFG}))
    return f'local-dir:{folder}'


@pytest.fixture(scope='module')
def cache(tmp_path_factory, tiny_clip):
    records = [
        dict(img_id='img_a', class_name='aeroplane',
             fg=['jet', 'airliner', 'jet', 'plane', 'jet', 'jet'],
             bg=['sky', 'sky', 'runway', 'cloud', 'sky', 'sky', 'sky', 'sky',
                 'sky', 'aeroplane']),
        dict(img_id='img_a', class_name='person', fg=['pilot'] * 6,
             bg=['person'] * 10),  # no BG text left
        dict(img_id='img_b', class_name='train', fg=['passenger train'] * 6,
             bg=['train station'] * 10),
    ]
    corpus = build_corpus(records, build_question_set())
    prefix = str(tmp_path_factory.mktemp('qa_cache') / 'voc_text')
    index = build_text_cache(corpus, tiny_clip, None, prefix,
                             progress=False)
    from safetensors.numpy import load_file
    return prefix, index, load_file(prefix + '.safetensors')


def test_tensors_masks_padding(cache):
    prefix, index, tensors = cache
    feats, cls = tensors['features'], tensors['class_features']
    t = LoadQACorpus(cache_prefix=prefix)
    out = t(dict(img_id='img_a', img_labels=[AERO, PERSON]))['qa_feats']
    assert set(out) == {'class_feats', 'fg_feats', 'fg_mask', 'bg_feats',
                        'bg_mask'}
    assert out['class_feats'].shape == (2, 8)
    assert out['fg_feats'].shape == (2, 6, 8)
    assert out['bg_feats'].shape == (2, 10, 8)
    assert out['fg_feats'].dtype == torch.float32
    assert out['fg_mask'].dtype == torch.bool
    torch.testing.assert_close(out['class_feats'],
                               torch.from_numpy(cls[[AERO, PERSON]]))
    s = index['strings']
    fg_rows = [s.index(x) for x in ('jet aeroplane', 'airliner aeroplane',
                                    'jet aeroplane', 'plane aeroplane',
                                    'jet aeroplane', 'jet aeroplane')]
    torch.testing.assert_close(out['fg_feats'][0],
                               torch.from_numpy(feats[fg_rows]))
    assert out['fg_mask'].all()
    bg_rows = [s.index(x) for x in ('sky', 'runway', 'cloud')]
    torch.testing.assert_close(out['bg_feats'][0, :3],
                               torch.from_numpy(feats[bg_rows]))
    assert out['bg_mask'][0].tolist() == [True] * 3 + [False] * 7
    assert (out['bg_feats'][0, 3:] == 0).all()
    # the person pair has no BG text: all-False mask, zero features
    assert not out['bg_mask'][1].any() and (out['bg_feats'][1] == 0).all()
    torch.testing.assert_close(
        out['fg_feats'][1], torch.from_numpy(feats[[s.index('pilot person')]
                                                   * 6]))

    wide = LoadQACorpus(cache_prefix=prefix, max_fg=8, max_bg=12)
    out = wide(dict(img_id='img_b', img_labels=[TRAIN]))['qa_feats']
    assert out['fg_mask'][0].tolist() == [True] * 6 + [False] * 2
    assert out['bg_mask'][0].tolist() == [True] + [False] * 11
    torch.testing.assert_close(
        out['bg_feats'][0, 0],
        torch.from_numpy(feats[s.index('train station')]))
    empty = t(dict(img_id='img_b', img_labels=[]))['qa_feats']
    assert empty['fg_feats'].shape == (0, 6, 8)


def test_missing_pairs(cache):
    prefix = cache[0]
    t = LoadQACorpus(cache_prefix=prefix)
    with pytest.raises(KeyError,
                       match=r"'img_a'.*\['train'\].*voc_text\.json"):
        t(dict(img_id='img_a', img_labels=[AERO, TRAIN]))
    with pytest.raises(KeyError, match=r"'img_zzz'.*\['aeroplane'\]"):
        t(dict(img_id='img_zzz', img_labels=[AERO]))
    skip = LoadQACorpus(cache_prefix=prefix, skip_missing=True)
    out = skip(dict(img_id='img_a', img_labels=[AERO, TRAIN]))['qa_feats']
    assert out['fg_mask'][0].all() and not out['fg_mask'][1].any()
    assert not out['bg_mask'][1].any()
    assert (out['fg_feats'][1] == 0).all()
    assert out['class_feats'].shape == (2, 8)  # class feature still there
    assert skip._warned
    out = skip(dict(img_id='img_zzz', img_labels=[TRAIN]))['qa_feats']
    assert not out['fg_mask'].any()


def test_slot_and_path_errors(cache, tmp_path):
    prefix = cache[0]
    with pytest.raises(ValueError, match='max_bg=2'):
        LoadQACorpus(cache_prefix=prefix, max_bg=2)(
            dict(img_id='img_a', img_labels=[AERO]))
    with pytest.raises(FileNotFoundError, match=r'nowhere\.json'):
        LoadQACorpus(cache_prefix=str(tmp_path / 'nowhere'))(
            dict(img_id='img_a', img_labels=[AERO]))
    with pytest.raises(IndexError, match="'img_a'.*out of range"):
        LoadQACorpus(cache_prefix=prefix)(dict(img_id='img_a',
                                               img_labels=[25]))


def test_class_order_is_checked(cache):
    """A cache built for other classes must not silently pair labels with
    the wrong texts."""
    from qaclims_mm.datasets.transforms.qa_corpus import LoadQACorpus
    ok = LoadQACorpus(cache_prefix=cache[0], classes='voc')
    assert ok.cache is not None
    with pytest.raises(ValueError, match='built for the classes'):
        LoadQACorpus(cache_prefix=cache[0], classes='coco').cache


def test_lazy_and_picklable(cache):
    t = LoadQACorpus(cache_prefix=cache[0])
    assert t._cache is None  # nothing opened at build time
    t(dict(img_id='img_b', img_labels=[TRAIN]))
    assert t._cache is not None
    clone = pickle.loads(pickle.dumps(t))  # as sent to dataloader workers
    assert clone._cache is None
    out = clone(dict(img_id='img_b', img_labels=[TRAIN]))['qa_feats']
    assert out['fg_mask'].all()


def test_real_pipeline(synthetic_voc_root, tmp_path, tiny_clip):
    from mmseg.registry import DATASETS
    import qaclims_mm.datasets  # noqa: F401  (registers the dataset)
    voc = synthetic_voc_root
    ids = read_split(osp.join(voc, 'ImageSets/Segmentation/train_aug.txt'))
    labels = load_labels_file(osp.join(voc, 'cls_labels.json'), VOC_CLASSES)
    records = [
        dict(img_id=i, class_name=VOC_CLASSES[c],
             fg=[f'{VOC_CLASSES[c]} kind {k}' for k in range(6)],
             bg=['grass', 'sky', 'wall', 'sky'] + ['grass'] * 6)
        for i in ids for c in labels[i]
    ]
    corpus = build_corpus(records, build_question_set())
    prefix = str(tmp_path / 'synthetic_text')
    build_text_cache(corpus, tiny_clip, None, prefix, progress=False,
                     class_names=VOC_CLASSES)
    dataset = DATASETS.build(dict(
        type='VOC12WSSSDataset', data_root=voc,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadQACorpus', cache_prefix=prefix),
            dict(type='NormalizeImage'),
            dict(type='PackWSSSInputs'),
        ]))
    assert len(dataset) == len(ids)
    for i in (0, len(dataset) - 1):
        sample = dataset[i]['data_samples']
        k = len(sample.metainfo['img_labels'])
        assert k >= 1
        qa = sample.qa_feats
        assert qa['class_feats'].shape == (k, 8)
        assert qa['fg_feats'].shape == (k, 6, 8)
        assert qa['bg_feats'].shape == (k, 10, 8)
        assert qa['fg_mask'].all()
        assert qa['bg_mask'].sum(1).tolist() == [3] * k  # grass, sky, wall
        np.testing.assert_allclose(qa['fg_feats'].norm(dim=-1).numpy(), 1,
                                   atol=1e-5)
