"""One module per chapter: its computations and readings. Only the chapters import these."""
