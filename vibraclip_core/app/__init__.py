"""What a user runs: the command line, `identify` and its report, the shipped model and its card,
the book runner."""
