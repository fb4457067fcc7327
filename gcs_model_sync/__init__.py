"""Mirror a Google Cloud Storage prefix of model versions into a local model base path."""

__version__ = "0.1.0"
