from .multilabel_loss import MultiLabelSoftMarginLoss

__all__ = ['MultiLabelSoftMarginLoss']
