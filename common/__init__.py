"""fedseg common."""
