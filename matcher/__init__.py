"""matcher: job matching for employment poverty alleviation in Rizhao, Shandong."""

__version__ = "0.1.0"

from matcher.errors import MatcherError, SchemaError, PolicyError  # noqa: E402

__all__ = ["__version__", "MatcherError", "SchemaError", "PolicyError"]
