"""The QAPE stage: images + labels + a local VQA model -> the QA corpus.

A thin wrapper over :func:`~qaclims_mm.qape.stage.make_qa_corpus` in its
files mode (``img_dir`` + ``labels_file`` [+ ``split_file``]), the library
behind ``tools/qape.py``: resumable (one atomic shard per image chunk; a
restarted run asks only the pairs that are missing) and sharded over the
ranks of the process group the pipeline runner created (image ``i`` to rank
``i % W``; rank 0 merges), which it leaves alone.
"""
import os.path as osp
from typing import Any, Dict, Optional

from ...datasets.class_names import get_classes
from ..base import PIPELINE_STAGES, StageContext, StageInputError
from .common import FunctionStage, read_split_ids

#: The corpus file inside the ``corpus`` output folder.
CORPUS_FILE = 'corpus.json'


@PIPELINE_STAGES.register_module()
class QAPEStage(FunctionStage):
    """Ask the VQA questions for every (image, labelled class) pair.

    Inputs: ``images`` (JPEG folder), ``labels`` (``cls_labels.json``),
    ``model`` (local VQA model folder, e.g. BLIP's ``save_pretrained``
    layout), ``split`` (optional id file; without it every image of the
    labels file is asked, as the official tool does). Output: ``corpus``
    (a folder: ``corpus.json``, ``shards/``, ``settings.json``).

    Metrics: ``num_images``, ``num_pairs`` ((image, class) pairs) and
    ``num_answers`` (pairs x questions).

    Args:
        engine (str): ``'blip'`` or ``'vlm'``. Defaults to ``'blip'``.
        batch_size (int): Questions per forward pass. Defaults to 64.
        image_size (int, optional): Model input size; None keeps the
            checkpoint's native size. Defaults to None.
        chunk_images (int): Images per engine call and shard. Defaults to 32.
        classes (str): ``'voc'`` or ``'coco'``: the names of the label
            indices. Defaults to ``'voc'``.
        questions (str, optional): A question-set file; None asks the
            official 6 FG and 10 BG questions (spec §2.2).
        dtype (str): Engine dtype. Defaults to ``'auto'``.
        num_workers (int): Image-loading workers per rank. Defaults to 2.
        img_suffix (str): Defaults to ``'.jpg'``.
        device (str, optional): Defaults to this rank's GPU, else the CPU
            (not part of the fingerprint).
    """

    run_on = 'all'
    required_inputs = ('images', 'labels', 'model')
    required_outputs = ('corpus', )
    # where the model runs and how images are loaded do not decide the
    # answers; batch_size and dtype may (padding, precision)
    runtime_params = ('device', 'num_workers')

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 engine: str = 'blip', batch_size: int = 64,
                 image_size: Optional[int] = None, chunk_images: int = 32,
                 classes: str = 'voc', questions: Optional[str] = None,
                 dtype: str = 'auto', num_workers: int = 2,
                 img_suffix: str = '.jpg', device: Optional[str] = None,
                 **params) -> None:
        super().__init__(name, inputs, outputs, engine=engine,
                         batch_size=batch_size, image_size=image_size,
                         chunk_images=chunk_images, classes=classes,
                         questions=questions, dtype=dtype,
                         num_workers=num_workers, img_suffix=img_suffix,
                         device=device, **params)

    def num_classes(self) -> Optional[int]:
        return len(get_classes(self.params['classes']))

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        from ...qape.runner import items_from_files
        split = self.inputs.get('split')
        if split is not None:
            read_split_ids(self.name, 'split', split)
        try:
            items_from_files(split, self.inputs['images'],
                             self.inputs['labels'], self.params['classes'],
                             self.params['img_suffix'])
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise StageInputError(
                f'stage {self.name!r}: inputs images '
                f'({self.inputs["images"]}) / labels '
                f'({self.inputs["labels"]}): {e}') from e

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...qape.corpus import load_corpus
        from ...qape.stage import make_qa_corpus
        p = self.params
        path = make_qa_corpus(
            self.outputs['corpus'], self.inputs['model'], engine=p['engine'],
            split_file=self.inputs.get('split'),
            img_dir=self.inputs['images'], labels_file=self.inputs['labels'],
            classes=p['classes'], img_suffix=p['img_suffix'],
            device=p['device'], dtype=p['dtype'], batch_size=p['batch_size'],
            image_size=p['image_size'], questions=p['questions'],
            chunk_images=p['chunk_images'], num_workers=p['num_workers'],
            progress=ctx.progress)
        if path is None:  # not rank 0: rank 0 reports
            return {}
        corpus = load_corpus(path)
        per_pair = len(corpus.questions.fg) + len(corpus.questions.bg)
        return dict(num_images=len(corpus.entries), num_pairs=len(corpus),
                    num_answers=len(corpus) * per_pair)


def corpus_file(path: str) -> str:
    """The corpus JSON of a ``corpus`` path (a QAPE folder or the file)."""
    return osp.join(path, CORPUS_FILE) if osp.isdir(path) else path
