from .cam_metric import CAMIoUMetric

__all__ = ['CAMIoUMetric']
