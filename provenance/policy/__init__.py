"""Policies: one file decides whether a model may load.

Work in progress (issue 9): the parsed model is in :mod:`provenance.policy._model`.
"""

from __future__ import annotations
