"""fedseg test suite (a package, so its helpers import whatever else is installed)."""
