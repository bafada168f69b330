"""fedseg command line: the `fedseg` command and its sub-commands, progress view, terminal output."""
