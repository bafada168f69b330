"""fedseg simulations."""
