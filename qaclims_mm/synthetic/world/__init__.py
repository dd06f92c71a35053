"""Small vision-language models of the synthetic world (issue 13).

Trained here on CPU from a generated "pretraining world" (a
``make_synthetic_voc`` folder with its side file of descriptions), so that the
QA-CLIMS pipeline can run on the synthetic dataset without downloads. Import
the submodules directly (``from qaclims_mm.synthetic.world.clip import
train_world_clip``); nothing is imported here.
"""
