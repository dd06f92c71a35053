from .pseudo_label import write_pseudo_labels

__all__ = ['write_pseudo_labels']
