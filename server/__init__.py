"""fedseg server."""
