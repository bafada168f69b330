"""Known-answer vectors checked into the repository, and the scripts that made them."""
