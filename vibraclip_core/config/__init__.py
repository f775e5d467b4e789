"""Settings: the `Config` dataclass and its profiles (tiny / cpu / paper), the named choices, and
the vocabularies every layer shares (loss modes, query modes)."""
