"""VQA engines: batched BLIP equals the official one-question path, loading
errors, preprocessing, and the image-text-to-text engine on a tiny LLaVA."""
import numpy as np
import pytest
import torch
from PIL import Image

from qaclims_mm.qape.engines.base import (VQAEngine, build_vqa_engine,
                                          resolve_dtype)
from qaclims_mm.qape.engines.blip import (CLIP_MEAN, CLIP_STD, BlipVQAEngine,
                                          pil_to_blip_tensor)
from qaclims_mm.qape.engines.vlm import (ImageTextToTextVQAEngine,
                                         normalize_answer)
from qaclims_mm.qape.questions import QuestionSet
from qaclims_mm.testing import build_tiny_blip_vqa


@pytest.fixture(autouse=True, scope='module')
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy shared CPU, thread
    contention makes them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_blip(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('tiny_blip'))
    return build_tiny_blip_vqa(path, image_size=64, hidden_size=32,
                               vision_layers=2)


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in ((70, 90), (96, 64), (50, 50))
    ]


def questions_for(classes):
    qs = QuestionSet()
    return [qs.format('fg', c)[:3] + qs.format('bg', c)[4:7] for c in classes]


def test_batched_answers_equal_naive(tiny_blip, images):
    engine = BlipVQAEngine(tiny_blip, device='cpu', image_size=None,
                           batch_size=4, image_batch_size=2)
    # class names of different token lengths -> questions of many lengths
    questions = questions_for(['dining table', 'cat', 'potted plant'])
    lengths = {len(ids) for qs in questions for ids in engine._tokenize(qs)}
    assert len(lengths) >= 3
    batched = engine.answer(images, questions)
    naive = [[engine.answer_naive(img, q) for q in qs]
             for img, qs in zip(images, questions)]
    assert batched == naive
    assert [len(a) for a in batched] == [len(q) for q in questions]
    flat = [a for ans in batched for a in ans]
    assert len(set(flat)) > 1  # the random model does not answer constantly


def test_interpolated_resolution_matches_naive(tiny_blip, images):
    engine = BlipVQAEngine(tiny_blip, device='cpu', image_size=96)
    assert engine.interpolate_pos_encoding
    questions = [['what is above the cat?', 'what kind of dog is in the '
                  'photo?']]
    assert engine.answer(images[:1], questions) == [[
        engine.answer_naive(images[0], q) for q in questions[0]]]
    assert engine.answer_settings()['image_size'] == 96


def test_questions_reach_the_model_formatted(tiny_blip, images):
    engine = BlipVQAEngine(tiny_blip, device='cpu', image_size=None)
    seen = []
    tokenize = engine._tokenize

    def spy(questions):
        seen.extend(questions)
        return tokenize(questions)

    engine._tokenize = spy
    questions = QuestionSet().format('fg', 'dining table')
    engine.answer(images[:1], [questions])
    assert sorted(seen) == sorted(questions)
    assert 'What kind of dining table is in the photo?' in seen
    # the official truncation: 35 tokens including [CLS] and [SEP]
    assert len(tokenize(['what ' * 60])[0]) == 35


def test_questions_start_with_the_enc_token(tiny_blip):
    """Original BLIP VQA replaces [CLS] by [ENC]; the HF port does not."""
    from qaclims_mm.qape.engines.blip import BlipVQAEngine
    engine = BlipVQAEngine(tiny_blip, device='cpu', dtype='fp32')
    plain = BlipVQAEngine(tiny_blip, device='cpu', dtype='fp32',
                          enc_token_first=False)
    tokenizer = engine.processor.tokenizer
    vocab = engine.model.config.text_config.vocab_size
    assert engine.enc_token_id == vocab - 1  # the tiny vocab has no [ENC]
    ids = engine._tokenize(['what is this cat?', 'what is behind the cat?'])
    ref = plain._tokenize(['what is this cat?', 'what is behind the cat?'])
    for q, r in zip(ids, ref):
        assert r[0] == tokenizer.cls_token_id
        assert q == [vocab - 1] + r[1:]
    assert engine.answer_settings()['enc_token_id'] == vocab - 1


def _tiny_wordpiece(clean_up):
    """A tiny BERT tokenizer whose saved default is ``clean_up``."""
    from transformers import BertTokenizer
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]', "'", '?',
             'man', 's', 'don', 't', 'it', 'a', 'cat']
    return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)},
                         bos_token='[DEC]',
                         clean_up_tokenization_spaces=clean_up)


def test_answers_decode_with_the_original_space_clean_up(tiny_blip):
    """The original BLIP decoded under transformers' old default (spaces
    cleaned), so "man's" must not come out as "man ' s", whatever the
    tokenizer config or the installed transformers default to."""
    from qaclims_mm.qape.engines.blip import decode_answers
    tokenizer = _tiny_wordpiece(clean_up=False)
    words = [['[DEC]', 'man', "'", 's', '[SEP]'],
             ['[DEC]', 'don', "'", 't', '[SEP]'],
             ['[DEC]', 'it', "'", 's', 'a', 'cat', '[SEP]', '[PAD]']]
    width = max(map(len, words))
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(
        w + ['[PAD]'] * (width - len(w))) for w in words])
    expected = ["man's", "don't", "it's a cat"]
    engine = BlipVQAEngine(tiny_blip, device='cpu', dtype='fp32',
                           image_size=None)
    engine.processor.tokenizer = tokenizer
    assert engine._decode(ids) == expected
    assert engine.answer_settings()['clean_up_tokenization_spaces'] is True
    # the flag, not the tokenizer's saved default, decides
    assert decode_answers(_tiny_wordpiece(clean_up=True), ids,
                          clean_up_tokenization_spaces=False) == [
                              "man ' s", "don ' t", "it ' s a cat"]
    assert decode_answers(tokenizer, ids) == expected


def test_preprocessing_is_official(tiny_blip):
    img = Image.new('RGB', (40, 30), (255, 0, 128))
    x = pil_to_blip_tensor(img, 48)
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32
    expected = (np.array([255, 0, 128]) / 255.0 - np.array(CLIP_MEAN)) / \
        np.array(CLIP_STD)
    np.testing.assert_allclose(x[:, 10, 20].numpy(), expected, rtol=1e-5)
    engine = BlipVQAEngine(tiny_blip, device='cpu')  # default: 480 px
    assert engine.preprocess(img).shape == (3, 480, 480)
    assert engine.generate_kwargs == dict(num_beams=3, max_length=10,
                                          min_length=1)


def test_missing_model_errors(tmp_path):
    missing = str(tmp_path / 'no_such_model')
    with pytest.raises(FileNotFoundError) as err:
        BlipVQAEngine(missing, device='cpu')
    msg = str(err.value)
    assert missing in msg
    assert 'huggingface-cli download Salesforce/blip-vqa-capfilt-large' in msg
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='empty'):
        BlipVQAEngine(str(empty), device='cpu')
    with pytest.raises(FileNotFoundError, match='no_such_model'):
        build_vqa_engine(dict(type='vlm', model_path=missing, device='cpu'))


def test_registry_and_dtype(tiny_blip):
    engine = build_vqa_engine(dict(type='blip', model_path=tiny_blip,
                                   device='cpu', image_size=None))
    assert isinstance(engine, BlipVQAEngine) and isinstance(engine, VQAEngine)
    assert resolve_dtype('auto', torch.device('cpu')) == torch.float32
    assert resolve_dtype('bf16', torch.device('cuda')) == torch.bfloat16
    with pytest.raises(ValueError, match='fp32 on the CPU'):
        resolve_dtype('fp16', torch.device('cpu'))
    with pytest.raises(ValueError, match='unknown dtype'):
        resolve_dtype('int8', torch.device('cpu'))


# ----------------------------------------------------------------------------
# image-text-to-text engine on a tiny random LLaVA
# ----------------------------------------------------------------------------
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} "
    "{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}")


@pytest.fixture(scope='module')
def tiny_llava(tmp_path_factory) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor,
                              PreTrainedTokenizerFast)
    path = str(tmp_path_factory.mktemp('tiny_llava'))
    words = ('<pad> <unk> <s> </s> <image> user assistant : ? . what is the '
             'a of in photo above under cat dog kind type answer with short '
             'phrase car sky grass road tree').split()
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token='<unk>'))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token='<unk>', pad_token='<pad>',
        bos_token='<s>', eos_token='</s>',
        extra_special_tokens={'image_token': '<image>'})
    LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={'shortest_edge': 32},
            crop_size={'height': 32, 'width': 32}),
        tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy='default',
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE).save_pretrained(path)
    config = LlavaConfig(
        vision_config=dict(model_type='clip_vision_model', hidden_size=32,
                           intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8,
                           projection_dim=32),
        text_config=dict(model_type='llama', vocab_size=len(words),
                         hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3),
        image_token_index=vocab['<image>'], image_seq_length=16,
        vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    return path


def test_vlm_engine_answers_every_question(tiny_llava, images):
    engine = build_vqa_engine(dict(type='vlm', model_path=tiny_llava,
                                   device='cpu', batch_size=2,
                                   max_new_tokens=4))
    assert isinstance(engine, ImageTextToTextVQAEngine)
    assert engine.use_chat_template
    prompt = engine.build_prompt('what is above the cat?')
    assert 'what is above the cat? Answer with a short phrase.' in prompt
    assert '<image>' in prompt and prompt.endswith('assistant :')
    questions = [['what is above the cat?', 'what kind of dog is in the '
                  'photo?'], ['what is the sky?'], []]
    answers = engine.answer(images, questions)
    assert [len(a) for a in answers] == [2, 1, 0]
    assert all(isinstance(a, str) and a == a.lower().strip()
               for ans in answers for a in ans)
    # beam search is a setting; sampling is refused
    assert engine.answer_settings()['num_beams'] == 1
    with pytest.raises(ValueError, match='do_sample'):
        ImageTextToTextVQAEngine(tiny_llava, device='cpu',
                                 generate_kwargs=dict(do_sample=True))


def test_normalize_answer():
    assert normalize_answer(' A Red car.\n') == 'a red car'
    assert normalize_answer('Dining table!') == 'dining table'


def test_settings_keys_stay_stable(tiny_blip, tiny_llava):
    """The runner compares stored settings on resume: the shared base
    (LocalModelVQAEngine) must keep every key, value and the order."""
    blip = BlipVQAEngine(tiny_blip, device='cpu', dtype='float32',
                         batch_size=3, image_batch_size=2)
    settings = blip.answer_settings()
    assert list(settings) == [
        'type', 'model_path', 'dtype', 'image_size',
        'interpolate_pos_encoding', 'mean', 'std', 'max_question_tokens',
        'enc_token_id', 'clean_up_tokenization_spaces', 'num_beams',
        'max_length', 'min_length']
    assert settings['type'] == 'BlipVQAEngine'
    assert settings['dtype'] == 'fp32'
    assert blip.runtime_settings() == dict(device='cpu', batch_size=3,
                                           image_batch_size=2)
    vlm = ImageTextToTextVQAEngine(tiny_llava, device='cpu',
                                   dtype='float32', batch_size=2)
    settings = vlm.answer_settings()
    assert list(settings) == [
        'type', 'model_path', 'dtype', 'prompt', 'use_chat_template',
        'normalize', 'max_new_tokens', 'num_beams', 'do_sample']
    assert settings['type'] == 'ImageTextToTextVQAEngine'
    assert settings['dtype'] == 'fp32'
    assert vlm.runtime_settings() == dict(device='cpu', batch_size=2)


def test_question_lists_must_match_images(tiny_blip, images):
    from qaclims_mm.qape.engines.base import check_question_lists
    with pytest.raises(ValueError, match='2 images but 1 question lists'):
        check_question_lists([0, 1], [['q']])
    engine = BlipVQAEngine(tiny_blip, device='cpu')
    with pytest.raises(ValueError, match='3 images but 1 question lists'):
        engine.answer(images, [['what is above the cat?']])
    with pytest.raises(ValueError, match='1 images but 2 question lists'):
        engine.answer_preprocessed([engine.preprocess(images[0])],
                                   [['a?'], ['b?']])
