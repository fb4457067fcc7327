"""Archive formats as plug-ins: one Extractor protocol, one registry of suffixes (archives.py)."""
