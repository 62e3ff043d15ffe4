"""Transfer Learning Studio: a strong classifier from a folder of labelled images or sounds."""

__version__ = "0.1.0"
