from .cam_classifier import CAMClassifier, multi_hot_labels

__all__ = ['CAMClassifier', 'multi_hot_labels']
