"""Small vision-language models of the synthetic world (issue 13).

Trained here on CPU from a generated *pretraining world* (a
``make_synthetic_voc(describe=True)`` folder at a seed disjoint from the
pipeline data, with its side file of descriptions), so that the QA-CLIMS
pipeline runs on the synthetic dataset without downloads:

* :mod:`.vqa`: a tiny transformers ``BlipForQuestionAnswering`` answering the
  QAPE questions (``train_world_vqa``, ``evaluate_world_vqa``);
* :mod:`.clip`: a tiny open_clip CLIP, mask-prompt tuned
  (``train_world_clip``, ``evaluate_world_clip``);
* :mod:`.cache`: one cache folder per generator version and seed
  (``build_world_models``, ``load_world_models``, ``check_world_models``),
  built by ``tools/synthetic/train_world_models.py`` and the pipeline's
  ``WorldModelsStage``.

Import the submodules directly (``from qaclims_mm.synthetic.world.cache
import load_world_models``); nothing heavy is imported here.
"""
