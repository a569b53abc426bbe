"""CD4ML: a sales-forecasting service delivered the Continuous Delivery for Machine Learning way."""

__version__ = "0.1.0"
