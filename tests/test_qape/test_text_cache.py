"""Text-feature cache: unique strings, rows, unit norm, equality to direct
encoding with a tiny random open_clip model saved to disk."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.qape.corpus import build_corpus, save_corpus
from qaclims_mm.qape.questions import build_question_set
from qaclims_mm.qape.text_cache import build_text_cache, load_text_encoder
from qaclims_mm.structures.text_cache_format import (TextFeatureCache,
                                                     load_text_cache_index)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = {
    'embed_dim': 16,
    'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 32,
                   'head_width': 16, 'patch_size': 16},
    'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 32,
                 'heads': 2, 'layers': 1},
}


@pytest.fixture(scope='module')
def tiny_clip_dir(tmp_path_factory):
    """A local-dir open_clip model: config + random weights (safetensors)."""
    import open_clip
    from open_clip.model import CLIP
    from safetensors.torch import save_file
    folder = tmp_path_factory.mktemp('tiny_clip')
    torch.manual_seed(0)
    model = CLIP(**TINY_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / 'open_clip_model.safetensors'))
    with open(folder / 'open_clip_config.json', 'w') as f:
        json.dump({'model_cfg': TINY_CFG}, f)
    assert open_clip  # imported for the side effect of its registry
    return str(folder)


def _corpus():
    fg_air = ['jet', 'airliner', 'jet', 'plane', 'airplane', 'jet']
    return build_corpus([
        dict(img_id='img_a', class_name='aeroplane', fg=fg_air,
             bg=['sky', 'sky', 'runway', 'aeroplane', 'cloud', 'sky', 'sky',
                 'airport', 'sky', 'sky']),
        dict(img_id='img_a', class_name='person', fg=['pilot'] * 6,
             bg=['person'] * 10),
        dict(img_id='img_b', class_name='aeroplane', fg=fg_air[::-1],
             bg=['sky'] * 10),
    ], build_question_set())


def _direct(model, tokenizer, texts):
    with torch.no_grad():
        f = model.encode_text(tokenizer([f'a photo of {t}.' for t in texts]))
    return torch.nn.functional.normalize(f.float(), dim=-1).numpy()


def test_cache_contents(tmp_path, tiny_clip_dir):
    corpus = _corpus()
    prefix = str(tmp_path / 'cache' / 'voc_text')
    index = build_text_cache(corpus, f'local-dir:{tiny_clip_dir}', None,
                             prefix, batch_size=4, progress=False)
    assert osp.isfile(prefix + '.safetensors') and osp.isfile(prefix + '.json')
    assert load_text_cache_index(prefix) == json.loads(
        json.dumps(index))  # the file holds exactly the returned index
    strings = index['strings']
    assert len(strings) == len(set(strings))  # each string encoded once
    expected = {'jet aeroplane', 'airliner aeroplane', 'plane aeroplane',
                'airplane aeroplane', 'pilot person', 'sky', 'runway',
                'cloud', 'airport'}
    assert set(strings) == expected
    assert index['class_names'] == list(VOC_CLASSES)
    pa = index['pairs']['img_a']['aeroplane']
    assert [strings[r] for r in pa['fg']] == [
        'jet aeroplane', 'airliner aeroplane', 'jet aeroplane',
        'plane aeroplane', 'airplane aeroplane', 'jet aeroplane']
    assert [strings[r] for r in pa['bg']] == ['sky', 'runway', 'cloud',
                                              'airport']
    assert index['pairs']['img_a']['person']['bg'] == []
    assert index['pairs']['img_b']['aeroplane']['bg'] == [strings.index('sky')]

    from safetensors.numpy import load_file
    tensors = load_file(prefix + '.safetensors')
    feats, cls = tensors['features'], tensors['class_features']
    assert feats.dtype == np.float32 and feats.shape == (len(strings), 16)
    assert cls.shape == (20, 16)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    model, tok = load_text_encoder(f'local-dir:{tiny_clip_dir}')
    np.testing.assert_allclose(feats, _direct(model, tok, strings),
                               atol=1e-5)
    np.testing.assert_allclose(cls, _direct(model, tok, VOC_CLASSES),
                               atol=1e-5)


def test_cache_reuse_and_named_model(tmp_path, tiny_clip_dir, monkeypatch):
    import open_clip
    cfg_path = tmp_path / 'qaclims-tiny-textcache.json'
    cfg_path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(str(cfg_path))
    weights = osp.join(tiny_clip_dir, 'open_clip_model.safetensors')
    prefix = str(tmp_path / 'named')
    idx1 = build_text_cache(_corpus(), 'qaclims-tiny-textcache', weights,
                            prefix, progress=False)
    feats1 = TextFeatureCache(prefix).features.copy()
    # a second run re-encodes nothing: every string is reused
    import qaclims_mm.qape.text_cache as tc
    seen = []
    real = tc.encode_texts

    def spy(model, tokenizer, texts, *args, **kwargs):
        seen.append(list(texts))
        return real(model, tokenizer, texts, *args, **kwargs)

    monkeypatch.setattr(tc, 'encode_texts', spy)
    idx2 = build_text_cache(_corpus(), 'qaclims-tiny-textcache', weights,
                            prefix, progress=False)
    assert seen[0] == []  # no answer string encoded again
    assert idx2['strings'] == idx1['strings']
    np.testing.assert_array_equal(TextFeatureCache(prefix).features, feats1)


def test_missing_weights_error(tmp_path):
    corpus = _corpus()
    missing = str(tmp_path / 'ViT-L-14.bin')
    with pytest.raises(FileNotFoundError,
                       match=r'ViT-L-14\.bin.*--pretrained'):
        build_text_cache(corpus, 'ViT-L-14-quickgelu', missing,
                         str(tmp_path / 'x'), progress=False)
    with pytest.raises(FileNotFoundError, match='open_clip_config.json'):
        build_text_cache(corpus, f'local-dir:{tmp_path}', None,
                         str(tmp_path / 'x'), progress=False)
    with pytest.raises(ValueError, match=r"\['aeroplane', 'person'\] are not "
                       'in class_names'):
        build_text_cache(corpus, 'ViT-L-14-quickgelu', missing,
                         str(tmp_path / 'x'), class_names=['cat'])


def test_build_text_cache_tool(tmp_path, tiny_clip_dir):
    corpus_path = str(tmp_path / 'c.json')
    save_corpus(corpus_path, _corpus())
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import build_text_cache as tool
    finally:
        sys.path.pop(0)
    out = str(tmp_path / 'tool_cache')
    assert tool.main(['--corpus', corpus_path, '--model',
                      f'local-dir:{tiny_clip_dir}', '--out', out,
                      '--classes', 'voc', '--batch-size', '3']) == 0
    index = load_text_cache_index(out)
    assert len(index['strings']) == 9 and index['dim'] == 16
    assert index['prompt'] == 'a photo of {}.'
