"""fedseg client."""
