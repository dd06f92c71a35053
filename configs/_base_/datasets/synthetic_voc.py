# The bundled synthetic VOC-format dataset (tools/dataset_converters/
# make_synthetic_voc.py --preset demo, then voc12_wsss.py). Same layout and
# pipelines as VOC, at a smaller image size.
_base_ = ['./voc12_wsss.py']
data_root = 'data/synthetic_voc/VOC2012'
crop_size = 160
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='RandomLongSideResize', long_range=(128, 224)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(num_workers=2, dataset=dict(data_root=data_root))
