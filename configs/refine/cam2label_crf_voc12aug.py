# Pseudo labels of VOC 2012 train_aug from a trained CAM model, in one test
# run: multi-scale + flip CAMs (spec §6.1), a background plane at 0.15,
# argmax, then the dense CRF of spec §6.3 on the image (CAMToPseudoLabelHook
# with a CRFRefiner), written to <work_dir>/pseudo_labels/crf/<id>.png (0 background,
# 1..20 classes, VOC palette). Re-running skips the PNGs that exist.
#
#   python tools/test.py configs/refine/cam2label_crf_voc12aug.py CKPT \
#       --work-dir work_dirs/cam2label_crf
#
# For IR labels (IRNet's training seeds, 0.30 / 0.10 with the 255 band) use
# refiner=dict(type='IRLabelRefiner'); for random-walk masks
# refiner=dict(type='RandomWalkRefiner', irn=dict(config=..., checkpoint=...))
# or save the CAMs and run tools/make_sem_seg_labels.py. train_aug has no masks, so the CAM metric only
# warns that nothing was scored.
_base_ = ['../cam/cam_r50-os16_1xb16-5e_voc12aug-512x512.py']
test_dataloader = dict(
    dataset=dict(
        ann_file='ImageSets/Segmentation/train_aug.txt',
        with_seg_map=False))
test_evaluator = dict(split='train_aug')
custom_hooks = [
    dict(
        type='CAMToPseudoLabelHook',
        out_dir='pseudo_labels/crf',
        refiner=dict(type='CRFRefiner', threshold=0.15),
        # the CRF dominates the run time: compute it in 8 CPU processes
        num_workers=8)
]
