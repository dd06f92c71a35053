# QA-CLIMS with real SGD momentum 0.9 instead of the official optimiser's
# effective 1e-4 (spec §3.2): a documented deviation from parity.
_base_ = ['./qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py']
optim_wrapper = dict(optimizer=dict(momentum=0.9))
