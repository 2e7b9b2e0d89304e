"""Loaders that build tensors over memory provenance has already verified (issue 11).

Private: each module turns the bytes of one verified file, held in memory the
library owns, into a framework's objects without reading the file again.
"""
