# Baseline CAM network on COCO 2014 (80 classes): the VOC recipe with the COCO
# data (CLIMS's step_coco/train_cam.py is the same recipe). CAMs of val2014 are
# written to <work_dir>/cams/val2014 and scored against the converted masks.
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/coco14_wsss.py',
    '../_base_/schedules/schedule_cam_5e.py', '../_base_/default_runtime.py'
]
model = dict(cam_head=dict(num_classes=80))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/val2014', vis_dir='cam_vis',
         num_vis=20)
]
