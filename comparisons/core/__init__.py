"""The contracts every layer shares: the registry of implementations, the result type, settings, tolerances, errors."""
